import type { IncomingMessage, Server } from 'node:http';
import { rm } from 'node:fs/promises';
import { faultsProblem, type MetadataFaults } from './emulator-faults.js';
import { treeShapeProblem } from '../metadata/shape.js';
import type { MetaTree } from '../metadata/tree.js';

/** What the control API can do to a running emulator. */
export interface ControlTarget {
  setTree(tree: MetaTree): void;
  getTree(): MetaTree;
  setFaults(faults: MetadataFaults): void;
  stats(): unknown;
}

const MAX_BODY = 16 * 1024 * 1024;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function handle(target: ControlTarget, req: IncomingMessage): Promise<[number, unknown]> {
  const route = `${req.method ?? ''} ${req.url ?? ''}`;
  if (route === 'GET /tree') return [200, target.getTree()];
  if (route === 'GET /stats') return [200, target.stats()];
  if (route !== 'PUT /tree' && route !== 'PUT /faults') return [404, { error: `no route ${route}` }];
  let body: unknown;
  try {
    body = JSON.parse(await readBody(req));
  } catch (error) {
    return [400, { error: `invalid JSON: ${(error as Error).message}` }];
  }
  const problem = route === 'PUT /tree' ? treeShapeProblem(body) : faultsProblem(body);
  if (problem !== undefined) return [400, { error: problem }];
  if (route === 'PUT /tree') target.setTree(body as MetaTree);
  else target.setFaults(body as MetadataFaults);
  return [200, { ok: true }];
}

/** Serves the JSON control API on a unix socket, replacing a stale socket file (the caller removes it after close). */
export async function startControlServer(socketPath: string, target: ControlTarget): Promise<Server> {
  await rm(socketPath, { force: true });
  const server = process.getBuiltinModule('node:http').createServer((req, res) => {
    void handle(target, req)
      .catch((error: unknown): [number, unknown] => [500, { error: String(error) }])
      .then(([status, body]) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(`${JSON.stringify(body)}\n`);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return server;
}

/** Test client of the control API (works across network namespaces: the socket is a file); throws on non-2xx. */
export async function controlEmulator(
  socketPath: string,
  method: 'GET' | 'PUT',
  path: string,
  body?: unknown,
): Promise<unknown> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = process
      .getBuiltinModule('node:http')
      .request({ socketPath, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status > 299) {
            reject(new Error(`emulator control ${method} ${path}: HTTP ${status}: ${text.trim()}`));
            return;
          }
          try {
            resolve(JSON.parse(text));
          } catch (error) {
            reject(error as Error);
          }
        });
      });
    req.on('error', reject);
    req.end(payload);
  });
}
