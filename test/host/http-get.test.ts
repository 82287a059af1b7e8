// Both HTTP clients of the host against what the metadata emulator never does: bodies without a declared length, no
// answer at all, and a caller that gives up.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { fetchGet, httpGet } from '../../src/host/http-get.js';
import { SETTINGS } from '../../src/settings.js';

let server: Server;
let base: string;
/** Bytes the server managed to write for the last `/endless` answer before the client went away. */
let endlessWritten = 0;
/** Requests the server has seen. */
let seen = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    seen += 1;
    // Never answered: the client's deadline ends it.
    if (req.url === '/hang') return;
    // No Content-Length: chunked transfer encoding, as a proxy or another service might answer.
    res.writeHead(200, { 'content-type': 'text/plain' });
    if (req.url === '/small') {
      res.write('10.0.0.2/\n');
      res.end('10.0.0.3/\n');
      return;
    }
    endlessWritten = 0;
    const chunk = Buffer.alloc(16 * 1024, 'x');
    const pump = () => {
      while (!res.destroyed && endlessWritten < 64 * 1024 * 1024) {
        endlessWritten += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe.each([
  ['node:http', httpGet],
  ['fetch', fetchGet],
] as const)('%s with a body of no declared length', (_client, get) => {
  it('reads it whole within the cap', async () => {
    const response = await get(`${base}/small`, { timeoutMs: 2000, maxBytes: 1024 });
    expect(response.status).toBe(200);
    expect(response.headers['content-length']).toBeUndefined();
    expect(new TextDecoder().decode(response.body)).toBe('10.0.0.2/\n10.0.0.3/\n');
  });

  it('gives up past the cap without reading the rest', async () => {
    await expect(get(`${base}/endless`, { timeoutMs: 5000, maxBytes: 64 * 1024 })).rejects.toMatchObject({
      code: 'ERR_TOO_LARGE',
    });
    // The server stops well short of its 64 MiB: the client closed the connection.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(endlessWritten).toBeLessThan(16 * 1024 * 1024);
  });
});

describe.each([
  ['node:http', httpGet],
  ['fetch', fetchGet],
] as const)('%s: the deadline', (_client, get) => {
  it('a server that does not answer: timed out after timeoutMs', async () => {
    await expect(get(`${base}/hang`, { timeoutMs: 150 })).rejects.toMatchObject({
      code: 'ETIMEDOUT',
      message: 'timed out after 150 ms',
    });
  });

  it("the caller's abort in the middle of the request", async () => {
    const outer = new AbortController();
    const pending = get(`${base}/hang`, { timeoutMs: 60_000, signal: outer.signal });
    setTimeout(() => outer.abort(), 50);
    await expect(pending).rejects.toMatchObject({ code: 'ABORT_ERR', message: 'aborted' });
  });

  it('a signal aborted before the call: no request is sent', async () => {
    const before = seen;
    await expect(get(`${base}/small`, { timeoutMs: 2000, signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ABORT_ERR',
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen).toBe(before);
  });
});

describe.each([
  ['node:http', httpGet],
  ['fetch', fetchGet],
] as const)('%s: what a GET leaves behind', (_client, get) => {
  afterEach(() => vi.restoreAllMocks());

  it.each([
    ['an answer', () => `${base}/small`],
    ['a refused connection', () => 'http://127.0.0.1:9/'],
  ])("after %s, its timeout timer is cleared and the caller's signal has no listener of it", async (_case, url) => {
    const armed: unknown[] = [];
    const cleared: unknown[] = [];
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      const id = realSet(fn, ms);
      if (ms === 4321) armed.push(id);
      return id;
    }) as typeof setTimeout);
    vi.spyOn(globalThis, 'clearTimeout').mockImplementation(((id?: Parameters<typeof clearTimeout>[0]) => {
      cleared.push(id);
      realClear(id);
    }) as typeof clearTimeout);
    const outer = new AbortController();
    const added = vi.spyOn(outer.signal, 'addEventListener');
    const removed = vi.spyOn(outer.signal, 'removeEventListener');
    await get(url(), { timeoutMs: 4321, signal: outer.signal, maxBytes: 1024 }).catch(() => undefined);
    expect(armed).toHaveLength(1);
    expect(cleared).toContain(armed[0]);
    expect(added).toHaveBeenCalledTimes(1);
    expect(removed).toHaveBeenCalledWith('abort', added.mock.calls[0]?.[1]);
  });
});

describe('node:http between polls', () => {
  it("keeps a poll's connections for the next one, as many as the default metadata concurrency", async () => {
    let connections = 0;
    const counting = createServer((_req, res) => res.end('ok'));
    counting.on('connection', () => (connections += 1));
    await new Promise<void>((resolve) => counting.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(counting.address() as AddressInfo).port}/`;
    const inFlight = SETTINGS.metadataConcurrency.default;
    const poll = async () => {
      await Promise.all(Array.from({ length: inFlight }, () => httpGet(url, { timeoutMs: 2000 })));
      // The daemon's next poll comes a second later; the sockets are back in the pool long before.
      await new Promise((resolve) => setTimeout(resolve, 20));
    };
    try {
      await poll();
      expect(connections).toBe(inFlight);
      await poll();
      await poll();
      expect(connections, 'connections opened by the next two polls').toBe(inFlight);
    } finally {
      counting.closeAllConnections();
      await new Promise((resolve) => counting.close(resolve));
    }
  });
});
