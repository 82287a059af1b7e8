import type { LimitFunction } from 'p-limit';
import { MetadataError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { HttpResponse } from '../host/http-get.js';

/** Timeout and retry policy of one metadata GET. */
export interface GetPolicy {
  timeoutMs: number;
  /** Further attempts after the first, for transient failures only. */
  retries: number;
  /** First backoff; doubled before each further retry. */
  backoffMs: number;
  /** Largest answer accepted for one item; a larger one is an error, never read whole. */
  maxBytes: number;
}

/** Why one attempt failed; `transient` failures are retried. */
interface Failure {
  transient: boolean;
  what: string;
  timedOut?: boolean;
}

type Outcome = { body: string | undefined } | { failure: Failure };

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** One attempt; a 404 is a successful answer with no body. Throws only when `cancel` fired. */
async function attempt(host: Host, url: string, policy: GetPolicy, cancel: AbortSignal): Promise<Outcome> {
  let response: HttpResponse;
  try {
    // The client never follows redirects: the metadata service sends none, and following one would leave the link-local address.
    response = await host.httpGet(url, { timeoutMs: policy.timeoutMs, signal: cancel, maxBytes: policy.maxBytes });
  } catch (error) {
    if (cancel.aborted) throw error;
    const code = (error as { code?: string }).code ?? 'ERR_HTTP';
    if (code === 'ERR_TOO_LARGE')
      return { failure: { transient: false, what: `answer larger than ${policy.maxBytes} bytes (metadataMaxBytes)` } };
    if (code === 'ETIMEDOUT') return { failure: { transient: true, what: 'timed out', timedOut: true } };
    // A body cut short, or shorter than its declared length: the client never hands one on.
    if (code === 'ERR_TRUNCATED')
      return { failure: { transient: true, what: `truncated body (${(error as Error).message})` } };
    // A malformed answer, as the client words it.
    if (code === 'ERR_BAD_RESPONSE') return { failure: { transient: true, what: (error as Error).message } };
    return { failure: { transient: true, what: `connection failed (${code})` } };
  }
  if (response.status === 404) return { body: undefined };
  if (response.status !== 200)
    return {
      failure: { transient: response.status >= 500 && response.status <= 599, what: `HTTP ${response.status}` },
    };
  try {
    return { body: decoder.decode(response.body) };
  } catch {
    return { failure: { transient: false, what: 'body is not valid UTF-8' } };
  }
}

function plural(n: number): string {
  return n === 1 ? '1 attempt' : `${n} attempts`;
}

function message(path: string, url: string, failure: Failure, attempts: number, policy: GetPolicy): string {
  if (failure.timedOut) return `${path}: timed out after ${policy.timeoutMs} ms (${plural(attempts)}) at ${url}`;
  if (!failure.transient) return `${path}: ${failure.what} (${url})`;
  return `${path}: ${failure.what} after ${plural(attempts)} (${url})`;
}

/** What a getter needs besides the URL: the shared concurrency bound and a counter of requests sent. */
export interface GetContext {
  host: Host;
  limit: LimitFunction;
  policy: GetPolicy;
  /** Called once per request actually sent, retries included. */
  onRequest(): void;
}

/** One attempt in a slot of `limit`, counted as a request sent. Throws only when `cancel` fired. */
function send(context: GetContext, url: string, cancel: AbortSignal): Promise<Outcome> {
  return context.limit(() => {
    cancel.throwIfAborted();
    context.onRequest();
    return attempt(context.host, url, context.policy, cancel);
  });
}

/**
 * One GET of `url` with its timeout and no retry: the body of a 200, or undefined for any other answer or failure.
 * Takes a slot of `limit` and counts the request. Throws only when `cancel` fired.
 */
export async function getOnce(context: GetContext, url: string, cancel: AbortSignal): Promise<string | undefined> {
  const outcome = await send(context, url, cancel);
  return 'body' in outcome ? outcome.body : undefined;
}

/**
 * GETs `url` (metadata `path`, for messages) with timeout and retries; undefined on 404. Each attempt takes a
 * slot of `limit` but backoff does not, so a retrying item never holds up the others.
 */
export async function getText(
  context: GetContext,
  path: string,
  url: string,
  cancel: AbortSignal,
): Promise<string | undefined> {
  const { host, policy } = context;
  for (let attempts = 1; ; attempts++) {
    const outcome = await send(context, url, cancel);
    if ('body' in outcome) return outcome.body;
    if (!outcome.failure.transient || attempts > policy.retries) {
      throw new MetadataError(message(path, url, outcome.failure, attempts, policy));
    }
    await host.sleep(policy.backoffMs * 2 ** (attempts - 1));
    cancel.throwIfAborted();
  }
}
