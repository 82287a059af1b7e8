import { SETTINGS } from '../settings.js';
import { setMaxListeners } from 'node:events';
import pLimit from 'p-limit';
import { ConfigError } from '../errors.js';
import type { Host } from '../host/host.js';
import { getOnce, getText, type GetContext } from './get-item.js';
import type { MetadataSource } from './tree.js';
import { readAgentTree, readListings, type MetaReader } from './walker.js';

/** The Tencent-style metadata endpoint inside an instance. */
export const DEFAULT_METADATA_URL = SETTINGS.metadataUrl.default;

/** Options of the HTTP metadata source; every bound has a default that suits the real service. */
export interface HttpSourceOptions {
  baseUrl: string;
  /** Most requests in flight at once, across every read of this source. */
  concurrency?: number;
  timeoutMs?: number;
  retries?: number;
  backoffMs?: number;
  /** Largest answer accepted for one item (default 64 KiB: a listing of 256 addresses is about 4 KiB). */
  maxBytes?: number;
}

/** The default cap of one metadata answer. */
export const DEFAULT_MAX_BYTES = SETTINGS.metadataMaxBytes.default;

/** A metadata source that also tells how many HTTP requests it has sent (benchmarks compare it). */
export type HttpMetadataSource = MetadataSource & { readonly requestCount: number };

function count(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min)
    throw new ConfigError(`metadata ${name}: expected an integer >= ${min}, got ${value}`);
  return value;
}

/** `heard`, when given, is told each answer as it comes: its URL and its raw text. */
function httpReader(
  base: string,
  context: GetContext,
  cancel: AbortSignal,
  heard?: (url: string, answer: string) => void,
): MetaReader {
  const url = (path: string): string => `${base}${path}`;
  const get = async (path: string): Promise<string | undefined> => {
    const at = url(path);
    const text = await getText(context, path, at, cancel);
    if (text !== undefined) heard?.(at, text);
    return text;
  };
  return {
    async list(path) {
      const text = await get(path);
      if (text === undefined) return undefined;
      // One entry per line; the final newline ends the last entry, any other empty line is kept for the walker to refuse.
      const body = text.endsWith('\n') ? text.slice(0, -1) : text;
      return body === '' ? [] : body.split('\n');
    },
    leaf: get,
    where: url,
    notFound: (path) => `not found (404) at ${url(path)}`,
  };
}

/** Runs one read with its own cancel signal: after the first error, queued requests are dropped and in-flight ones aborted. */
async function withCancel<T>(read: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const cancel = new AbortController();
  // Every request in flight listens to it: as many listeners as the concurrency bound allows.
  setMaxListeners(0, cancel.signal);
  try {
    return await read(cancel.signal);
  } finally {
    cancel.abort();
  }
}

/**
 * The listings last read in full: each request's URL and raw answer, in the order they came, and the listings made of
 * them. readListings depends on those answers alone, so the same answers make the same listings.
 */
interface HeardListings {
  urls: string[];
  answers: string[];
  listings: string;
}

/**
 * The last listings again when every one of their requests answers exactly as then: the requests go out at once (the
 * NICs' listings need not wait for the list of NICs, whose answer has to be the same as well), within the concurrency
 * bound, and nothing is parsed or validated twice. Undefined on any other answer or any failure: the full listings
 * read follows, with its retries and its messages.
 */
async function sameAsHeard(
  context: GetContext,
  heard: HeardListings,
  cancel: AbortSignal,
): Promise<string | undefined> {
  const answers = await Promise.all(heard.urls.map((url) => getOnce(context, url, cancel)));
  return answers.every((answer, i) => answer === heard.answers[i]) ? heard.listings : undefined;
}

/** Reads the instance metadata over HTTP: only the keys the agent uses, level by level, bounded and retried. */
export function httpMetadataSource(host: Host, options: HttpSourceOptions): HttpMetadataSource {
  const base = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
  let requestCount = 0;
  const context: GetContext = {
    host,
    limit: pLimit(count('concurrency', options.concurrency ?? SETTINGS.metadataConcurrency.default, 1)),
    policy: {
      timeoutMs: count('timeout', options.timeoutMs ?? SETTINGS.metadataTimeoutMs.default, 1),
      retries: count('retries', options.retries ?? SETTINGS.metadataRetries.default, 0),
      backoffMs: count('backoff', options.backoffMs ?? 100, 0),
      maxBytes: count('maxBytes', options.maxBytes ?? DEFAULT_MAX_BYTES, 1),
    },
    onRequest: () => void requestCount++,
  };
  // Kept for as long as the source: a daemon in sync asks for the same listings every poll.
  let heard: HeardListings | undefined;
  const listings = async (signal: AbortSignal): Promise<string> => {
    const same = heard === undefined ? undefined : await sameAsHeard(context, heard, signal);
    if (same !== undefined) return same;
    const urls: string[] = [];
    const answers: string[] = [];
    const read = await readListings(
      httpReader(base, context, signal, (url, answer) => {
        urls.push(url);
        answers.push(answer);
      }),
    );
    heard = { urls, answers, listings: read };
    return read;
  };
  return {
    describe: base,
    get requestCount() {
      return requestCount;
    },
    read: () => withCancel((signal) => readAgentTree(httpReader(base, context, signal))),
    listings: () => withCancel(listings),
    refresh: (previous) => withCancel((signal) => readAgentTree(httpReader(base, context, signal), previous)),
  };
}
