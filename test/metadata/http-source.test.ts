import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MetadataError } from '../../src/errors.js';
import { httpMetadataSource, type HttpSourceOptions } from '../../src/metadata/http-source.js';
import { startMetadataEmulator, type MetadataEmulator } from '../../src/sandbox/emulator.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { httpClient, nodeConnect } from '../../src/host/http-get.js';
import { createTestHost } from '../helpers/host.js';
import { IP8, MAC1, MAC2, MANUAL_REQUESTS, NIC1, edit, manualTree, manualWithExtras } from './fixture.js';

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/gu, '\\$&');
}

// Every case runs over the host's HTTP client on node:net; test/host/http-get.test.ts holds it to the same answers
// over Bun.connect (the release executable).
describe.each([['node:net', httpClient(nodeConnect)]] as const)('over %s', (_client, get) => {
  let emulator: MetadataEmulator;
  const host = createTestHost({ httpGet: get });

  beforeEach(async () => {
    emulator = await startMetadataEmulator({ tree: manualWithExtras() });
  });
  afterEach(async () => {
    await emulator.close();
  });

  function source(options: Partial<HttpSourceOptions> = {}) {
    return httpMetadataSource(host, { baseUrl: emulator.url, backoffMs: 1, ...options });
  }

  describe('httpMetadataSource: reading', () => {
    it('reads exactly the keys the agent uses, in listing order, with one request each', async () => {
      const src = source();
      const tree = await src.read();
      expect(tree).toEqual(manualTree());
      expect(Object.keys((tree.network as { interfaces: { macs: MetaTree } }).interfaces.macs)).toEqual([MAC1, MAC2]);
      expect(src.requestCount).toBe(MANUAL_REQUESTS);
      expect(emulator.requests).toBe(MANUAL_REQUESTS);
      expect(emulator.requestLog.filter((p) => /hostname|zone|other|ipv6s|extra|macs\/[^/]+\/mac$/u.test(p))).toEqual(
        [],
      );
    });

    it('refreshes: the listings, each primary IP and every EIP and mode again, the rest taken from the last complete read', async () => {
      const src = source();
      const complete = await src.read();
      let mark = emulator.requestLog.length;
      const asked = () => {
        const paths = emulator.requestLog.slice(mark).map((p) => p.replace('/latest/meta-data/', ''));
        mark = emulator.requestLog.length;
        return paths.sort();
      };
      await expect(src.refresh!(complete)).resolves.toEqual(complete);
      const ips = [
        `${NIC1}local-ipv4s/10.0.0.2/`,
        `${NIC1}local-ipv4s/10.0.0.3/`,
        `network/interfaces/macs/${MAC2}/local-ipv4s/10.0.0.7/`,
        IP8,
      ];
      const listings = [
        'mac',
        'network/interfaces/macs/',
        `${NIC1}local-ipv4s/`,
        `network/interfaces/macs/${MAC2}/local-ipv4s/`,
        `${NIC1}primary-local-ipv4`,
        `network/interfaces/macs/${MAC2}/primary-local-ipv4`,
      ];
      expect(asked()).toEqual(
        [...listings, ...ips.flatMap((ip) => [`${ip}public-ipv4`, `${ip}public-ipv4-mode`])].sort(),
      );

      // What changes while the listings stay: 10.0.0.8's EIP unbound, 10.0.0.3's in direct mode now, 10.0.0.8 primary.
      let tree = edit(
        edit(manualTree(), `${IP8}public-ipv4`, undefined),
        `network/interfaces/macs/${MAC2}/primary-local-ipv4`,
        '10.0.0.8',
      );
      tree = edit(
        edit(tree, `${IP8}public-ipv4-mode`, undefined),
        `${NIC1}local-ipv4s/10.0.0.3/public-ipv4-mode`,
        'direct',
      );
      emulator.setTree(tree);
      await expect(src.refresh!(complete)).resolves.toEqual(tree);
      asked();

      // A new address is read whole; a gateway changed under a known one waits for the next complete read.
      tree = edit(tree, `${NIC1}local-ipv4s/10.0.0.4`, { gateway: '10.0.0.1', 'subnet-mask': '255.255.255.0' });
      emulator.setTree(edit(tree, `${NIC1}local-ipv4s/10.0.0.2/gateway`, '10.0.0.254'));
      await expect(src.refresh!(complete)).resolves.toEqual(tree);
      expect(asked().filter((p) => /gateway|subnet-mask/u.test(p))).toEqual([
        `${NIC1}local-ipv4s/10.0.0.4/gateway`,
        `${NIC1}local-ipv4s/10.0.0.4/subnet-mask`,
      ]);
      await expect(src.read()).resolves.toEqual(edit(tree, `${NIC1}local-ipv4s/10.0.0.2/gateway`, '10.0.0.254'));
    });

    it('refreshes an optional key the complete read found absent as absent, without asking again', async () => {
      const tree = edit(edit(manualTree(), `${NIC1}subnet-id`, undefined), 'instance-id', undefined);
      emulator.setTree(tree);
      const src = source();
      const complete = await src.read();
      expect(complete).toEqual(tree);
      const mark = emulator.requestLog.length;
      // Present now: still taken from the complete read, which found it absent.
      emulator.setTree(manualTree());
      await expect(src.refresh!(complete)).resolves.toEqual(tree);
      expect(emulator.requestLog.slice(mark).filter((p) => /subnet-id|instance-id/u.test(p))).toEqual([]);
    });

    it('adds the trailing slash to the base URL and counts requests across reads', async () => {
      const src = source({ baseUrl: emulator.url.slice(0, -1) });
      expect(src.describe).toBe(emulator.url);
      await src.read();
      await src.read();
      expect(src.requestCount).toBe(2 * MANUAL_REQUESTS);
    });

    it('strips one trailing newline from a leaf and keeps other whitespace', async () => {
      emulator.setTree(edit(edit(manualTree(), 'instance-id', 'ins-1\n'), 'local-ipv4', ' 10.0.0.2 \n\n'));
      const tree = await source().read();
      expect(tree['instance-id']).toBe('ins-1');
      expect(tree['local-ipv4']).toBe(' 10.0.0.2 \n');
    });

    it.each([
      ['instance-id', 'instance-id'],
      ['local-ipv4', 'local-ipv4'],
      ['placement/region', 'placement'],
      [`${NIC1}vpc-id`, `${NIC1}vpc-id`],
      [`${NIC1}subnet-id`, `${NIC1}subnet-id`],
      // Without an EIP its mode is not even asked for: a stray mode is not read.
      [`${IP8}public-ipv4`, `${IP8}public-ipv4`],
      [`${IP8}public-ipv4-mode`, `${IP8}public-ipv4-mode`],
    ])('omits the optional %s when the server answers 404', async (missing, omitted) => {
      emulator.setTree(edit(manualTree(), missing, undefined));
      const expected = edit(manualTree(), omitted, undefined);
      await expect(source().read()).resolves.toEqual(
        omitted === `${IP8}public-ipv4` ? edit(expected, `${IP8}public-ipv4-mode`, undefined) : expected,
      );
    });

    it('asks for public-ipv4-mode only where an EIP is bound', async () => {
      const tree = edit(edit(manualTree(), `${IP8}public-ipv4`, undefined), `${IP8}public-ipv4-mode`, undefined);
      emulator.setTree(tree);
      const src = source();
      await expect(src.read()).resolves.toEqual(tree);
      expect(src.requestCount).toBe(MANUAL_REQUESTS - 1);
      expect(emulator.requestLog.filter((p) => p.endsWith('10.0.0.8/public-ipv4-mode'))).toEqual([]);
    });

    it('retries a 503 and then succeeds; the retry is counted', async () => {
      emulator.setFaults({ status: { code: 503, match: `${IP8}gateway`, count: 2 } });
      const src = source();
      await expect(src.read()).resolves.toEqual(manualTree());
      expect(src.requestCount).toBe(MANUAL_REQUESTS + 2);
    });

    it('retries a truncated body and a hang within the attempts', async () => {
      emulator.setFaults({
        truncate: { match: 'meta-data/mac', count: 1 },
        hang: { match: `${IP8}gateway`, count: 1 },
      });
      const src = source({ timeoutMs: 300, retries: 1 });
      await expect(src.read()).resolves.toEqual(manualTree());
      expect(src.requestCount).toBe(MANUAL_REQUESTS + 2);
    });

    it('keeps at most `concurrency` requests in flight', async () => {
      let tree = manualTree();
      for (let i = 10; i < 17; i++) {
        for (const mac of [MAC1, MAC2]) {
          tree = edit(tree, `network/interfaces/macs/${mac}/local-ipv4s/10.0.${mac === MAC1 ? 0 : 1}.${i}`, {
            gateway: '10.0.0.1',
            'subnet-mask': '255.255.0.0',
          });
        }
      }
      emulator.setTree(tree);
      emulator.setFaults({ latencyMs: 50 });
      const src = source({ concurrency: 4 });
      await expect(src.read()).resolves.toEqual(tree);
      // 5 top-level, 2 NICs x 4, 4 EIP'd addresses x 4, 14 addresses without an EIP x 3.
      expect(src.requestCount).toBe(5 + 2 * 4 + 4 * 4 + 14 * 3);
      expect(emulator.maxInFlight).toBe(4);
    });
  });

  describe('httpMetadataSource: the listings, again and again', () => {
    const LISTINGS = [
      'mac',
      'network/interfaces/macs/',
      `network/interfaces/macs/${MAC1}/local-ipv4s/`,
      `network/interfaces/macs/${MAC2}/local-ipv4s/`,
    ];
    // When each request went out and when each answer came, in order.
    function timeline(): { events: string[]; host: ReturnType<typeof createTestHost> } {
      const events: string[] = [];
      const path = (url: string) => url.replace(emulator.url, '');
      const host = createTestHost({
        httpGet: async (url, options) => {
          events.push(`ask ${path(url)}`);
          const response = await get(url, options);
          events.push(`answer ${path(url)}`);
          return response;
        },
      });
      return { events, host };
    }

    it('asks for unchanged listings at once, one request each, and gives the same listings', async () => {
      const { events, host: watched } = timeline();
      const src = httpMetadataSource(watched, { baseUrl: emulator.url, backoffMs: 1 });
      const first = await src.listings!();
      // The first read is level by level: the NICs' listings wait for the list of NICs.
      expect(events.indexOf(`ask ${LISTINGS[2]}`)).toBeGreaterThan(events.indexOf(`answer ${LISTINGS[1]}`));
      events.length = 0;
      await expect(src.listings!()).resolves.toBe(first);
      expect(events.filter((e) => e.startsWith('ask ')).sort()).toEqual(LISTINGS.map((p) => `ask ${p}`).sort());
      // Every request is out before the first answer is in.
      expect(events.slice(0, LISTINGS.length).every((e) => e.startsWith('ask '))).toBe(true);
      expect(src.requestCount).toBe(2 * LISTINGS.length);
      expect(first).toBe(await source().listings!());
    });

    it('reads them in full again when any answer differs, and gives what a new source reads', async () => {
      const src = source();
      const first = await src.listings!();
      for (const change of [
        (tree: MetaTree) => edit(tree, `${NIC1}local-ipv4s/10.0.0.4`, { gateway: '10.0.0.1' }),
        (tree: MetaTree) => edit(tree, 'mac', MAC2),
        (tree: MetaTree) => edit(tree, `network/interfaces/macs/${MAC2}`, undefined),
      ]) {
        emulator.setTree(change(manualTree()));
        const before = src.requestCount;
        const fresh = source();
        const expected = await fresh.listings!();
        expect(expected).not.toBe(first);
        await expect(src.listings!()).resolves.toBe(expected);
        // The requests at once, then the full read.
        expect(src.requestCount - before).toBe(LISTINGS.length + fresh.requestCount);
        // The full read's answers are the ones asked for next.
        const again = src.requestCount;
        await expect(src.listings!()).resolves.toBe(expected);
        expect(src.requestCount - again).toBe(fresh.requestCount);
      }
    });

    it('takes a failure of a request at once as a change: the full read retries it', async () => {
      const src = source();
      const first = await src.listings!();
      emulator.setFaults({ status: { code: 503, match: 'network/interfaces/macs/', count: 1 } });
      const before = src.requestCount;
      await expect(src.listings!()).resolves.toBe(first);
      expect(src.requestCount - before).toBe(2 * LISTINGS.length);
    });

    it('reports a listing gone as a full read does, naming its URL', async () => {
      const src = source();
      await src.listings!();
      emulator.setTree(edit(manualTree(), 'mac', undefined));
      await expect(src.listings!()).rejects.toThrow(new MetadataError(`mac: not found (404) at ${emulator.url}mac`));
    });
  });

  describe('httpMetadataSource: errors', () => {
    const url = (path: string): string => `${emulator.url}${path}`;

    it.each([
      ['mac', 'mac'],
      ['macs listing', 'network/interfaces/macs/'],
      ['primary-local-ipv4', `${NIC1}primary-local-ipv4`],
      ['local-ipv4s listing', `${NIC1}local-ipv4s/`],
      ['gateway', `${IP8}gateway`],
      ['subnet-mask', `${IP8}subnet-mask`],
    ])('a missing required %s is an error naming its path', async (_name, path) => {
      emulator.setTree(edit(manualTree(), path, undefined));
      await expect(source().read()).rejects.toThrow(new MetadataError(`${path}: not found (404) at ${url(path)}`));
    });

    type Row = [
      name: string,
      setup: () => void,
      options: Partial<HttpSourceOptions>,
      message: () => string | RegExp,
      requests: number,
    ];
    const table: Row[] = [
      [
        '503 forever on a listing',
        () => emulator.setFaults({ status: { code: 503, match: `${NIC1}local-ipv4s/` } }),
        {},
        () => `${NIC1}local-ipv4s/: HTTP 503 after 4 attempts (${url(`${NIC1}local-ipv4s/`)})`,
        4,
      ],
      [
        '503 forever on an optional leaf (an error is never read as absent)',
        () => emulator.setFaults({ status: { code: 503, match: `${IP8}public-ipv4` } }),
        { retries: 0 },
        () => new RegExp(`^${escape(IP8)}public-ipv4(-mode)?: HTTP 503 after 1 attempt \\(`, 'u'),
        1,
      ],
      [
        '403 is not retried',
        () => emulator.setFaults({ status: { code: 403, match: 'meta-data/instance-id' } }),
        {},
        () => `instance-id: HTTP 403 (${url('instance-id')})`,
        1,
      ],
      [
        'a redirect is not followed',
        () => emulator.setFaults({ status: { code: 302, match: 'meta-data/mac' } }),
        {},
        () => `mac: HTTP 302 (${url('mac')})`,
        1,
      ],
      [
        'a hang times out',
        () => emulator.setFaults({ hang: { match: `${IP8}gateway` } }),
        { timeoutMs: 200, retries: 1 },
        () => `${IP8}gateway: timed out after 200 ms (2 attempts) at ${url(`${IP8}gateway`)}`,
        2,
      ],
      [
        'a truncated body',
        () => emulator.setFaults({ truncate: { match: `${NIC1}primary-local-ipv4` } }),
        { retries: 2 },
        () =>
          new RegExp(
            `^${escape(NIC1)}primary-local-ipv4: truncated body \\(.+\\) after 3 attempts \\(${escape(url(`${NIC1}primary-local-ipv4`))}\\)$`,
            'u',
          ),
        3,
      ],
      [
        'a body that is not UTF-8',
        () =>
          emulator.setFaults({
            body: { match: 'meta-data/mac', base64: Buffer.from([0x52, 0xff, 0xfe]).toString('base64') },
          }),
        {},
        () => `mac: body is not valid UTF-8 (${url('mac')})`,
        1,
      ],
      [
        'a leaf with a NUL character',
        () => emulator.setTree(edit(manualTree(), `${IP8}subnet-mask`, '255.255.255.0\u0000')),
        {},
        () => `${IP8}subnet-mask: value contains a NUL character (${url(`${IP8}subnet-mask`)})`,
        0,
      ],
      [
        'a leaf where a directory is expected',
        () => emulator.setTree(edit(manualTree(), 'network/interfaces/macs/AA:BB', 'x')),
        {},
        () => `network/interfaces/macs/: entry "AA:BB" is not a directory (${url('network/interfaces/macs/')})`,
        0,
      ],
      [
        'an empty line inside a listing',
        () =>
          emulator.setFaults({
            body: {
              match: 'interfaces/macs/',
              count: 1,
              base64: Buffer.from(`${MAC1}/\n\n${MAC2}/\n`).toString('base64'),
            },
          }),
        {},
        () => `network/interfaces/macs/: empty entry at line 2 of the listing (${url('network/interfaces/macs/')})`,
        0,
      ],
      [
        'an entry that would change the path',
        () =>
          emulator.setFaults({
            body: { match: 'interfaces/macs/', count: 1, base64: Buffer.from('../x/\n').toString('base64') },
          }),
        {},
        () => `network/interfaces/macs/: bad entry "../x/" (${url('network/interfaces/macs/')})`,
        0,
      ],
    ];

    it.each(table)('%s', async (_name, setup, options, message, requests) => {
      setup();
      const src = source(options);
      const read = src.read();
      const expected = message();
      if (typeof expected === 'string') await expect(read).rejects.toThrow(new MetadataError(expected));
      else await expect(read).rejects.toThrow(expected);
      await expect(read).rejects.toBeInstanceOf(MetadataError);
      // Only the attempts on the failing item are certain; the rest of the level may or may not have gone out.
      expect(src.requestCount).toBeGreaterThanOrEqual(requests);
    });

    it('reports a refused connection after its retries', async () => {
      const { port } = emulator;
      await emulator.close();
      const src = httpMetadataSource(host, {
        baseUrl: `http://127.0.0.1:${port}/latest/meta-data/`,
        retries: 1,
        backoffMs: 1,
      });
      await expect(src.read()).rejects.toThrow(
        /^[a-z/-]+: connection failed \(ECONNREFUSED\) after 2 attempts \(http:\/\/127\.0\.0\.1:\d+\/latest\/meta-data\/[a-z/-]+\)$/u,
      );
      emulator = await startMetadataEmulator({ tree: {} });
    });

    it('reads again normally once the fault is gone', async () => {
      emulator.setFaults({ status: { code: 500 } });
      const src = source({ retries: 0 });
      await expect(src.read()).rejects.toThrow(MetadataError);
      emulator.setFaults({});
      await expect(src.read()).resolves.toEqual(manualTree());
    });

    it.each([
      [{ concurrency: 0 }, 'metadata concurrency: expected an integer >= 1, got 0'],
      [{ retries: -1 }, 'metadata retries: expected an integer >= 0, got -1'],
      [{ timeoutMs: 0.5 }, 'metadata timeout: expected an integer >= 1, got 0.5'],
    ])('refuses options %j', (options, message) => {
      expect(() => source(options)).toThrow(message);
    });
  });

  describe('httpMetadataSource: unbounded answers', () => {
    it('refuses an answer over 64 KiB without reading it whole, in one short line', async () => {
      emulator.setTree(edit(manualTree(), 'instance-id', 'i'.repeat(1024 * 1024)));
      const error = (await source()
        .read()
        .catch((e: unknown) => e)) as MetadataError;
      expect(error).toBeInstanceOf(MetadataError);
      expect(error.userLine).toBe(
        `metadata: instance-id: answer larger than 65536 bytes (metadataMaxBytes) (${emulator.url}instance-id)`,
      );
    });

    it('takes a larger cap from the options', async () => {
      emulator.setTree(edit(manualTree(), 'instance-id', 'i'.repeat(100)));
      await expect(source({ maxBytes: 64 }).read()).rejects.toThrow(/instance-id: answer larger than 64 bytes/);
      expect((await source({ maxBytes: 1024 }).read())['instance-id']).toBe('i'.repeat(100));
    });

    it('refuses a NIC with more than 256 addresses', async () => {
      const ips: MetaTree = {};
      for (let i = 0; i < 300; i++)
        ips[`10.0.${Math.floor(i / 250)}.${(i % 250) + 2}`] = { gateway: '10.0.0.1', 'subnet-mask': '255.255.0.0' };
      emulator.setTree(edit(manualTree(), `${NIC1}local-ipv4s`, ips));
      const error = (await source()
        .read()
        .catch((e: unknown) => e)) as MetadataError;
      expect(error.userLine).toBe(
        `metadata: ${NIC1}local-ipv4s/: 300 entries, more than the 256 the agent accepts (${emulator.url}${NIC1}local-ipv4s/)`,
      );
    });

    it('cuts a long bad listing entry to a short escaped prefix', async () => {
      emulator.setTree(edit(manualTree(), `${NIC1}local-ipv4s/${'x y'.repeat(1000)}`, { gateway: '10.0.0.1' }));
      const error = (await source()
        .read()
        .catch((e: unknown) => e)) as MetadataError;
      expect(error.userLine.length).toBeLessThan(300);
      expect(error.userLine).toContain('... (3001 characters)');
    });
  });
});
