// The host's HTTP client on node:net against answers written byte by byte, and the same cases on a real Bun over
// Bun.connect (the release executable): the same outcome for each.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_IDLE_PER_HOST, httpClient, nodeConnect } from '../../src/host/http-get.js';
import { SETTINGS } from '../../src/settings.js';
import { HTTP_CASES, caseOutcome, startCaseServer } from './http-cases.js';

/** The Bun the release executable is built from (a development dependency). */
const BUN = join(
  dirname(createRequire(import.meta.url).resolve('@oven/bun-linux-x64-baseline/package.json')),
  'bin',
  'bun',
);

let server: Awaited<ReturnType<typeof startCaseServer>>;
beforeAll(async () => {
  server = await startCaseServer();
});
afterAll(async () => {
  await server.close();
});

describe('the HTTP client on node:net, case by case', () => {
  const get = httpClient(nodeConnect);
  const outcome = (name: string) =>
    caseOutcome(
      get,
      server.base,
      HTTP_CASES.find((c) => c.name === name)!,
    );

  it('reads a body framed by its length, by chunks, or by the end of the connection', async () => {
    const listing = { status: 200, body: '10.0.0.2/\n' };
    await expect(outcome('a declared length')).resolves.toEqual(listing);
    await expect(outcome('chunked, split anywhere, with an extension and a trailer')).resolves.toEqual({
      status: 200,
      body: '10.0.0.2/\n10.0.0.',
    });
    await expect(outcome('a body that ends with the connection')).resolves.toEqual({
      status: 200,
      body: '10.0.0.2/\n10.0.0.3/\n',
    });
    await expect(outcome('an interim 100 before the answer')).resolves.toEqual({
      status: 200,
      body: 'ok',
    });
    await expect(outcome('a 404, body and all')).resolves.toEqual({ status: 404, body: 'not found' });
  });

  it('gives up past the cap without reading the rest, declared or not', async () => {
    const tooLarge = { code: 'ERR_TOO_LARGE', message: `response larger than ${64 * 1024} bytes` };
    await expect(outcome('a declared length past the cap')).resolves.toEqual(tooLarge);
    await expect(outcome('chunked past the cap')).resolves.toEqual(tooLarge);
    // The server stops well short of its 64 MiB: the client closed the connection.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(server.counts.endlessWritten).toBeLessThan(16 * 1024 * 1024);
  });

  // Each failure named with the code the metadata client tells transient ones by.
  it.each([
    ['no answer', 'ETIMEDOUT', 'timed out after 150 ms'],
    ['a body cut short', 'ERR_TRUNCATED', 'connection closed in the middle of the body'],
    ['closed before any answer', 'ECONNRESET', 'connection closed before the answer'],
    ['a refused connection', 'ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:<port>'],
    ['a bad status line', 'ERR_BAD_RESPONSE', 'malformed HTTP answer: status line "HTTP/1.1 2000 OK"'],
    ['two different lengths', 'ERR_BAD_RESPONSE', 'malformed HTTP answer: content-length "2, 3"'],
  ])('%s: %s', async (name, code, message) => {
    await expect(outcome(name)).resolves.toEqual({ code, message });
  });

  it('sends a GET again on a new connection, once, when a kept one was closed before answering', async () => {
    const before = server.counts.connections;
    await expect(outcome('a kept connection closed by the server')).resolves.toEqual({
      status: 200,
      body: 'fresh',
    });
    // The first GET's connection, closed at the second GET; the second GET's new one.
    expect(server.counts.connections - before).toBeLessThanOrEqual(2);
  });

  it('does not keep a connection the server closes or that is out of step', async () => {
    const connections = server.counts.connections;
    const own = httpClient(nodeConnect);
    await expect(
      caseOutcome(
        own,
        server.base,
        HTTP_CASES.find((c) => c.name === 'bytes past the declared length')!,
      ),
    ).resolves.toEqual(expect.objectContaining({ status: 200, body: '10.0.0.2/\n' }));
    // /extra's connection is dropped, /length's kept for the first /closing, which closes it: the second needs a third.
    await own(`${server.base}/closing`, { timeoutMs: 2000 });
    await own(`${server.base}/closing`, { timeoutMs: 2000 });
    expect(server.counts.connections - connections).toBe(3);
  });
});

describe('the HTTP client: the deadline', () => {
  const get = httpClient(nodeConnect);
  afterEach(() => vi.restoreAllMocks());

  it("the caller's abort in the middle of the request", async () => {
    const outer = new AbortController();
    const pending = get(`${server.base}/hang`, { timeoutMs: 60_000, signal: outer.signal });
    setTimeout(() => outer.abort(), 50);
    await expect(pending).rejects.toMatchObject({ code: 'ABORT_ERR', message: 'aborted' });
  });

  it('a signal aborted before the call: no request is sent', async () => {
    const before = server.counts.requests;
    await expect(get(`${server.base}/length`, { timeoutMs: 2000, signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ABORT_ERR',
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.counts.requests).toBe(before);
  });

  it('refuses anything but http://', async () => {
    await expect(get('https://127.0.0.1/', { timeoutMs: 100 })).rejects.toMatchObject({ code: 'ERR_PROTOCOL' });
  });

  it.each([
    ['an answer', () => `${server.base}/length`],
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

describe('the HTTP client between polls', () => {
  it("keeps a poll's connections for the next one, as many as the default metadata concurrency", async () => {
    const get = httpClient(nodeConnect);
    const inFlight = SETTINGS.metadataConcurrency.default;
    expect(MAX_IDLE_PER_HOST).toBe(inFlight);
    const poll = async () => {
      await Promise.all(Array.from({ length: inFlight }, () => get(`${server.base}/length`, { timeoutMs: 2000 })));
      await new Promise((resolve) => setTimeout(resolve, 20));
    };
    const before = server.counts.connections;
    await poll();
    expect(server.counts.connections - before).toBe(inFlight);
    await poll();
    await poll();
    expect(server.counts.connections - before, 'connections opened by the next two polls').toBe(inFlight);
  });

  it('a kept connection does not keep the process alive (a command exits when its work is done)', async () => {
    const sockets = () => process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap').length;
    const get = httpClient(nodeConnect);
    const before = { sockets: sockets(), connections: server.counts.connections };
    await get(`${server.base}/length`, { timeoutMs: 2000 });
    await get(`${server.base}/length`, { timeoutMs: 2000 });
    // One connection, kept open for the next GET, and not among what holds the event loop.
    expect(server.counts.connections - before.connections).toBe(1);
    expect(sockets()).toBe(before.sockets);
  });
});

describe('the HTTP client on a real Bun, over Bun.connect', () => {
  it('gives every case the same outcome as on node:net', async () => {
    const node: Record<string, unknown> = {};
    const get = httpClient(nodeConnect);
    for (const c of HTTP_CASES) node[c.name] = await caseOutcome(get, server.base, c);
    const driver = fileURLToPath(new URL('./bun-http-driver.ts', import.meta.url));
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(BUN, [driver, server.base], { encoding: 'utf8', maxBuffer: 1 << 20 }, (error, out, err) =>
        error ? reject(new Error(`${error.message}: ${err}`)) : resolve(out),
      );
    });
    expect(JSON.parse(stdout)).toEqual(node);
    expect(Object.keys(node)).toHaveLength(HTTP_CASES.length);
  });
});
