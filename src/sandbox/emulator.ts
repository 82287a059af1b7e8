import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { startControlServer } from './emulator-control.js';
import { fireFault, type MetadataFaults } from './emulator-faults.js';
import { listingOf, lookup } from '../metadata/lookup.js';
import type { MetaTree } from '../metadata/tree.js';

export type { MetadataFaults, FaultRule } from './emulator-faults.js';
export { controlEmulator } from './emulator-control.js';

/** A running metadata server for tests and the lab. */
export interface MetadataEmulator {
  /** Base URL, ending in `/latest/meta-data/`. */
  readonly url: string;
  readonly port: number;
  setTree(tree: MetaTree): void;
  getTree(): MetaTree;
  setFaults(faults: MetadataFaults): void;
  /** Requests received, whatever their fate. */
  readonly requests: number;
  /** Paths requested, the last 10000. */
  readonly requestLog: string[];
  /** Most requests seen in flight at once: how tests check a client's concurrency bound. */
  readonly maxInFlight: number;
  close(): Promise<void>;
}

/** Where and what the emulator serves. */
export interface EmulatorOptions {
  tree: MetaTree;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Unix socket for the JSON control API, reachable from outside the emulator's network namespace. */
  controlSocket?: string;
}

const PREFIX = '/latest/meta-data/';
const LOG_LIMIT = 10_000;

function text(res: ServerResponse, status: number, body: string | Buffer, length?: number): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(length ?? bytes.length),
  });
  if (length === undefined) {
    res.end(bytes);
    return;
  }
  // A declared length the body never reaches, then a closed connection: what a server dying mid-reply looks like.
  res.write(bytes, () => res.destroy());
}

/** The answer to GET `rel` (below the prefix): a listing for a directory path ending in `/`, a leaf's text, or 404. */
function resolve(tree: MetaTree, rel: string): string | undefined {
  const dir = rel === '' || rel.endsWith('/');
  const trimmed = dir ? rel.slice(0, -1) : rel;
  let segments: string[];
  try {
    segments = trimmed === '' ? [] : trimmed.split('/').map(decodeURIComponent);
  } catch {
    return undefined;
  }
  const node = lookup(tree, segments);
  if (dir && typeof node === 'object') {
    const entries = listingOf(node);
    return entries.length === 0 ? '' : `${entries.join('\n')}\n`;
  }
  return !dir && typeof node === 'string' ? node : undefined;
}

/** Starts an HTTP server answering like the Tencent metadata service at `/latest/meta-data/`, with injectable faults. */
export async function startMetadataEmulator(options: EmulatorOptions): Promise<MetadataEmulator> {
  let tree = structuredClone(options.tree);
  let faults: MetadataFaults = {};
  let log: string[] = [];
  let requests = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const sockets = new Set<Socket>();
  const closing = new AbortController();

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    requests++;
    log.push(path);
    // Trimmed in batches so that a long benchmark does not pay a copy per request.
    if (log.length >= 2 * LOG_LIMIT) log = log.slice(-LOG_LIMIT);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on('close', () => inFlight--);
    if (faults.latencyMs) await delay(faults.latencyMs, undefined, { signal: closing.signal });
    const fault = fireFault(faults, path);
    if (fault?.kind === 'hang') return;
    if (fault?.kind === 'status') return text(res, fault.code, `fault: HTTP ${fault.code}\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'method not allowed\n');
    const body = path.startsWith(PREFIX) ? resolve(tree, path.slice(PREFIX.length)) : undefined;
    if (body === undefined) return text(res, 404, 'not found\n');
    if (fault?.kind === 'truncate') return text(res, 200, body, Buffer.byteLength(body) + 16);
    if (fault?.kind === 'body') return text(res, 200, fault.bytes);
    text(res, 200, body);
  }

  const server: Server = process.getBuiltinModule('node:http').createServer((req, res) => {
    serve(req, res).catch(() => res.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((done, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => done());
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host ?? '127.0.0.1';
  const urlHost = host.includes(':') ? `[${host}]` : host;

  const emulator: MetadataEmulator = {
    url: `http://${urlHost}:${port}${PREFIX}`,
    port,
    setTree: (next) => void (tree = structuredClone(next)),
    getTree: () => structuredClone(tree),
    // Cloned because firing a fault spends its count.
    setFaults: (next) => void (faults = structuredClone(next)),
    get requests() {
      return requests;
    },
    get requestLog() {
      return log.slice(-LOG_LIMIT);
    },
    get maxInFlight() {
      return maxInFlight;
    },
    async close() {
      closing.abort();
      const closed = new Promise<void>((done) => server.close(() => done()));
      // Hanging requests and idle keep-alive connections would otherwise hold close() forever.
      for (const socket of sockets) socket.destroy();
      await closed;
      const controlServer = control;
      if (controlServer !== undefined) {
        await new Promise<void>((done) => controlServer.close(() => done()));
        await rm(options.controlSocket as string, { force: true });
      }
    },
  };
  let control: Awaited<ReturnType<typeof startControlServer>> | undefined;
  try {
    control = options.controlSocket
      ? await startControlServer(options.controlSocket, {
          setTree: emulator.setTree,
          getTree: emulator.getTree,
          setFaults: emulator.setFaults,
          stats: () => ({ requests, inFlight, maxInFlight, log: log.slice(-100) }),
        })
      : undefined;
  } catch (error) {
    // Half an emulator (HTTP without its control API) would keep the process alive for nothing.
    await emulator.close();
    throw error;
  }
  return emulator;
}
