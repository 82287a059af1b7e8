// The daemon against a real metadata emulator on port 0, an in-memory guest (memfs) and a fake
// kernel that records every process, with a fake clock: each sleep advances it and lets the test act.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadState } from '../../src/plan/record.js';
import { DaemonControl } from '../../src/daemon/control.js';
import type { LogEvent } from '../../src/daemon/log.js';
import { MAX_BACKOFF_MS, pollDelay, runDaemon, type DaemonOptions } from '../../src/daemon/loop.js';
import { COMPLETE_READ_MS, FULL_READ_MS } from '../../src/daemon/read-schedule.js';
import type { Host, HostFs } from '../../src/host/host.js';
import type { MetaTree } from '../../src/metadata/index.js';
import { startMetadataEmulator, type MetadataEmulator } from '../../src/sandbox/emulator.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { createTestHost, vol } from '../helpers/host.js';
import { MAC0, MAC1, SCRIPTS, freshKernel, guestFiles } from '../helpers/manual-guest.js';
import { manualTree } from '../lab/fixtures.js';

const TEXTFILE = '/var/lib/node_exporter/textfile_collector/eip_agent.prom';
const ETH1_IPS = ['network', 'interfaces', 'macs', '20:90:6F:F7:93:2E', 'local-ipv4s'];

let emulator: MetadataEmulator;
beforeAll(async () => {
  emulator = await startMetadataEmulator({ tree: manualTree() });
});
afterAll(async () => {
  await emulator.close();
});

/** The manual tree with eth1's local-ipv4s changed by edit. */
function withEth1Ips(edit: (ips: MetaTree) => void): MetaTree {
  const tree = manualTree();
  let node = tree;
  for (const name of ETH1_IPS) node = node[name] as MetaTree;
  edit(node);
  return tree;
}

function options(overrides: Partial<DaemonOptions> = {}): DaemonOptions {
  return {
    pipeline: {
      metadataUrl: emulator.url,
      metadataRetries: 0,
      root: '/',
      target: 'centos',
      routing: 'policy',
      runtime: true,
      requireNics: false,
      reload: 'none',
    },
    intervalMs: 5000,
    ignoreNics: [],
    metricsTextfile: TEXTFILE,
    ...overrides,
  };
}

/** A guest, a clock and a log; `onSleep(n)` runs at the n-th sleep of the daemon (1-based) before the clock moves on. */
interface Rig {
  host: Host;
  kernel: FakeKernel;
  control: DaemonControl;
  events: LogEvent[];
  /** Paths written or removed, in order. */
  writes: string[];
  /** The daemon's sleeps, in ms. */
  sleeps: number[];
  onSleep: (n: number) => void | Promise<void>;
  run(opts?: DaemonOptions, extra?: { reload?: () => Promise<DaemonOptions> }): Promise<void>;
}

function rig(kernel = new FakeKernel(freshKernel())): Rig {
  let clock = Date.parse('2025-01-01T00:00:00Z');
  const base = createTestHost().fs;
  const r: Rig = {
    kernel,
    control: new DaemonControl(),
    events: [],
    writes: [],
    sleeps: [],
    onSleep: () => undefined,
    host: undefined as unknown as Host,
    run: (opts = options(), extra = {}) =>
      runDaemon(r.host, opts, { control: r.control, onEvent: (e) => r.events.push(e), random: () => 0, ...extra }),
  };
  const fs: HostFs = {
    ...base,
    writeAtomic: async (path, content, mode) => {
      r.writes.push(path);
      await base.writeAtomic(path, content, mode);
    },
    remove: async (path) => {
      r.writes.push(`rm ${path}`);
      await base.remove(path);
    },
  };
  r.host = createTestHost({
    fs,
    run: kernel.run,
    isPrivileged: () => true,
    now: () => clock,
    sleep: async (ms) => {
      r.sleeps.push(ms);
      clock += ms;
      await r.onSleep(r.sleeps.length);
    },
  });
  return r;
}

function names(events: readonly LogEvent[]): string[] {
  return events.map((e) => e.event);
}

beforeEach(() => {
  vol.reset();
  const { ['/meta.json']: _unused, ...files } = guestFiles();
  vol.fromJSON({
    ...files,
    '/sys/class/net/eth0/statistics/rx_bytes': '1000\n',
    '/sys/class/net/eth0/statistics/tx_bytes': '2000\n',
    '/sys/class/net/eth0/statistics/rx_packets': '10\n',
    '/sys/class/net/eth0/statistics/tx_packets': '20\n',
  });
  emulator.setTree(manualTree());
  emulator.setFaults({});
});

describe('runDaemon', () => {
  it('applies once at start, then in sync: no process and no write over many polls', async () => {
    const r = rig();
    let callsAfterFirst = 0;
    let writesAfterFirst = 0;
    let requestsAfterFirst = 0;
    r.onSleep = (n) => {
      if (n === 1) {
        callsAfterFirst = r.kernel.calls.length;
        writesAfterFirst = r.writes.length;
        requestsAfterFirst = emulator.requests;
      }
      if (n === 11) r.control.stop('test');
    };
    await r.run();
    expect(r.kernel.callsOf('ip', '-batch', '-')).toHaveLength(1);
    expect(r.writes).toContain(`${SCRIPTS}/ifcfg-eth1`);
    expect(r.writes).toContain(TEXTFILE);
    expect(callsAfterFirst).toBeGreaterThan(0);
    expect(r.kernel.calls).toHaveLength(callsAfterFirst);
    expect(r.writes).toHaveLength(writesAfterFirst);
    expect(emulator.requests).toBeGreaterThan(requestsAfterFirst); // the polls did read the metadata
    expect(r.sleeps).toEqual(Array(11).fill(5000));
    expect(names(r.events)).toEqual(['start', 'apply', ...Array(10).fill('unchanged'), 'stop']);
    expect(r.events[1]).toMatchObject({
      level: 'info',
      msg: 'applied: 6 files written, 18 runtime changes, verified',
      pendingRemovals: 0,
    });
    expect(r.events.at(-1)).toMatchObject({ msg: 'stopped (test)' });
  });

  it('backs off 10, 20, 40, 60, 60 s while the metadata answers 503, changes nothing, then resumes without applying', async () => {
    const r = rig();
    let callsBefore = 0;
    let filesBefore: Record<string, string | null> = {};
    r.onSleep = (n) => {
      if (n === 1) {
        callsBefore = r.kernel.calls.length;
        filesBefore = vol.toJSON('/etc');
        r.writes.length = 0;
        emulator.setFaults({ status: { code: 503 } });
      }
      if (n === 6) emulator.setFaults({});
      if (n === 8) r.control.stop('test');
    };
    await r.run();
    expect(r.sleeps).toEqual([5000, 10_000, 20_000, 40_000, 60_000, 60_000, 5000, 5000]);
    // Reads only (`ip -j` for the address metrics, and the live-state check of the full read once the metadata
    // answers again, with the agent's nftables table): no ip -batch, no sysctl -w, no nft -f.
    expect(r.kernel.calls.slice(callsBefore).map((c) => c.argv.slice(0, 2).join(' '))).toEqual([
      ...Array(6).fill('ip -j'),
      'nft list',
    ]);
    expect(vol.toJSON('/etc')).toEqual(filesBefore);
    // Only the agent's own records change: the error counter and the metrics.
    expect(new Set(r.writes)).toEqual(new Set(['/var/lib/eip-agent/state.json', TEXTFILE]));
    const errors = r.events.filter((e) => e.event === 'metadata-error');
    expect(errors).toHaveLength(5);
    expect(errors[0]).toMatchObject({ level: 'error', failures: 1 });
    expect(errors[0]!.msg).toMatch(/^metadata: .*503.*; nothing changed, retrying in about 10 s$/);
    expect(errors[4]!.msg).toMatch(/retrying in about 60 s$/);
    const state = await loadState(r.host, '/');
    expect(state.counters.metadataErrors).toBe(5);
    expect(state.lastError?.message).toContain('503');
    expect(await vol.promises.readFile(TEXTFILE, 'utf8')).toContain('eip_agent_metadata_errors_total 5\n');
    expect(names(r.events).slice(-3)).toEqual(['unchanged', 'unchanged', 'stop']);
  });

  it('applies a metadata change on the next poll', async () => {
    const r = rig();
    r.onSleep = (n) => {
      if (n === 1)
        emulator.setTree(
          withEth1Ips((ips) => (ips['10.0.0.9'] = { gateway: '10.0.0.1', 'subnet-mask': '255.255.255.0' })),
        );
      if (n === 3) r.control.stop('test');
    };
    await r.run();
    const batches = r.kernel.callsOf('ip', '-batch', '-').map((c) => c.input);
    expect(batches).toHaveLength(2);
    expect(batches[1]).toBe(
      'address add 10.0.0.9/24 dev eth1\nrule add from 10.0.0.9/32 to 10.0.0.0/24 table 10001 priority 29001\nrule add from 10.0.0.9/32 table 10001 priority 30001\n',
    );
    expect(names(r.events)).toEqual(['start', 'apply', 'apply', 'unchanged', 'stop']);
  });

  it("in sync, a poll reads only the listings: eth0's MAC, the NICs and each NIC's addresses", async () => {
    const r = rig();
    const paths: string[][] = [];
    let mark = 0;
    r.onSleep = (n) => {
      if (n > 1) paths.push(emulator.requestLog.slice(mark));
      mark = emulator.requestLog.length;
      if (n === 3) r.control.stop('test');
    };
    await r.run();
    const listings = [
      '/latest/meta-data/mac',
      '/latest/meta-data/network/interfaces/macs/',
      ...[MAC0, MAC1].map((m) => `/latest/meta-data/network/interfaces/macs/${m.toUpperCase()}/local-ipv4s/`),
    ];
    expect(paths.map((p) => [...p].sort())).toEqual([listings.sort(), listings.sort()]);
  });

  it('keeps its metadata source from poll to poll: unchanged listings are asked for at once', async () => {
    const r = rig();
    const get = r.host.httpGet;
    const order: string[][] = [[]];
    r.host = {
      ...r.host,
      httpGet: async (url, options) => {
        order.at(-1)?.push('ask');
        const response = await get(url, options);
        order.at(-1)?.push('answer');
        return response;
      },
    };
    r.onSleep = (n) => {
      order.push([]);
      if (n === 4) r.control.stop('test');
    };
    await r.run();
    // Poll 1 reads everything, poll 2 the listings level by level (an answer before the NICs' listings are asked
    // for), then the four listings go out before any answer.
    const atOnce = ['ask', 'ask', 'ask', 'ask', 'answer', 'answer', 'answer', 'answer'];
    expect(order[1]?.slice(0, 3)).toEqual(['ask', 'ask', 'answer']);
    expect(order.slice(2, 4)).toEqual([atOnce, atOnce]);
  });

  it('picks up a change inside an address (a direct EIP bound) at the next full read, FULL_READ_MS after the last', async () => {
    const r = rig();
    const direct = withEth1Ips((ips) =>
      Object.assign(ips['10.0.0.8'] as MetaTree, { 'public-ipv4': '203.0.113.99', 'public-ipv4-mode': 'direct' }),
    );
    r.onSleep = (n) => {
      if (n === 1) emulator.setTree(direct);
      if (n === FULL_READ_MS / 5000 + 1) r.control.stop('test');
    };
    await r.run();
    const polls = FULL_READ_MS / 5000;
    // Listings unchanged: quiet polls until a minute after the first read, then the full read applies the /32.
    expect(names(r.events)).toEqual(['start', 'apply', ...Array(polls - 1).fill('unchanged'), 'apply', 'stop']);
    expect(r.events.at(-2)).toMatchObject({ runtimeApplied: expect.arrayContaining(['add 203.0.113.99/32 to eth1']) });
  });

  it('collects garbage after the once-a-minute read and again after its live-state check finds the guest in sync', async () => {
    const r = rig();
    const polls = FULL_READ_MS / 5000;
    let steps: string[] = [];
    r.onSleep = (n) => {
      // From here on, only the poll that reads the metadata again (the one after sleep number `polls`).
      if (n === polls) steps = [];
      if (n === polls + 1) r.control.stop('test');
    };
    const run = r.host.run;
    r.host = {
      ...r.host,
      run: (argv, opts) => {
        if (argv[0] === 'ip' || argv[0] === 'nft') steps.push(argv.slice(0, 2).join(' '));
        return run(argv, opts);
      },
      collectGarbage: () => void steps.push('collect'),
    };
    await r.run();
    expect(r.events.filter((e) => e.event === 'unchanged').at(-1)?.msg).toBe(
      'live state checked (periodic check): in sync',
    );
    expect(steps).toEqual(['collect', 'ip -j', 'nft list', 'collect']);
  });

  it('makes the once-a-minute read a refresh (EIPs and listings), and a complete read every COMPLETE_READ_MS', async () => {
    const r = rig();
    const kinds: string[] = [];
    let mark = 0;
    const polls = COMPLETE_READ_MS / 5000;
    r.onSleep = (n) => {
      const asked = emulator.requestLog.slice(mark);
      mark = emulator.requestLog.length;
      kinds.push(
        asked.some((p) => p.endsWith('/gateway'))
          ? 'complete'
          : asked.some((p) => p.endsWith('/public-ipv4'))
            ? 'refresh'
            : 'listings',
      );
      if (n === polls + 1) r.control.stop('test');
    };
    await r.run();
    // Sleep n follows poll n: the first read is complete, then a refresh each FULL_READ_MS until COMPLETE_READ_MS.
    const refreshes = kinds.flatMap((kind, i) => (kind === 'refresh' ? [i + 1] : []));
    expect(kinds[0]).toBe('complete');
    expect(refreshes).toEqual(
      Array.from({ length: COMPLETE_READ_MS / FULL_READ_MS - 1 }, (_, i) => (i + 1) * (FULL_READ_MS / 5000) + 1),
    );
    expect(kinds.filter((kind) => kind === 'complete')).toHaveLength(2);
    expect(kinds.at(-1)).toBe('complete');
    expect(names(r.events).filter((e) => e !== 'unchanged')).toEqual(['start', 'apply', 'stop']);
  });

  it('reads the tree whole again after a reload (the metadata URL may have changed), not as a refresh', async () => {
    const r = rig();
    const kinds: string[] = [];
    let mark = 0;
    r.onSleep = (n) => {
      const asked = emulator.requestLog.slice(mark);
      mark = emulator.requestLog.length;
      kinds.push(
        asked.some((p) => p.endsWith('/gateway'))
          ? 'complete'
          : asked.some((p) => p.endsWith('/public-ipv4'))
            ? 'refresh'
            : 'listings',
      );
      if (n === 2) r.control.requestReload();
      if (n === 4) r.control.stop('test');
    };
    await r.run(options(), { reload: async () => options() });
    // Poll 2 is a quiet one (listings only); after the reload poll 3 reads the whole tree, then quiet again.
    expect(kinds).toEqual(['complete', 'listings', 'complete', 'listings']);
  });

  it('converges again while removals are pending, then rests', async () => {
    const r = rig();
    let callsAtRest = -1;
    r.onSleep = (n) => {
      if (n === 1) emulator.setTree(withEth1Ips((ips) => delete ips['10.0.0.8']));
      if (n === 3) callsAtRest = r.kernel.calls.length;
      if (n === 5) r.control.stop('test');
    };
    await r.run();
    const applies = r.events.filter((e) => e.event === 'apply' || e.event === 'in-sync');
    expect(applies.map((e) => e.pendingRemovals)).toEqual([0, expect.any(Number), 0]);
    expect(applies[1]!.pendingRemovals).toBeGreaterThan(0);
    expect(r.kernel.state.links.find((l) => l.ifname === 'eth1')?.addresses).toEqual([
      { ip: '10.0.0.7', prefixLength: 24 },
    ]);
    expect(r.kernel.calls).toHaveLength(callsAtRest);
    expect(names(r.events).slice(-3)).toEqual(['unchanged', 'unchanged', 'stop']);
  });

  it('a metadata check that gets no answer during verification undoes nothing: the change stays, is verified again after the backoff', async () => {
    const r = rig();
    const real = r.host.httpGet;
    let dropped = 0;
    // The endpoint answers every read, but not the check verification makes once the pings ran (once).
    r.host.httpGet = async (url, opts) => {
      const verifying = r.kernel.calls.some((c) => c.argv[0] === 'ping');
      if (url.endsWith('/mac') && verifying && dropped === 0) {
        dropped += 1;
        throw new Error('socket hang up');
      }
      return real(url, opts);
    };
    r.onSleep = (n) => {
      if (n === 2) r.control.stop('test');
    };
    await r.run();
    expect(names(r.events)).toEqual(['start', 'unverified', 'in-sync', 'stop']);
    expect(r.events[1]).toMatchObject({ level: 'warn' });
    expect(r.events[1]!.msg).toMatch(
      /^applied: .* but verification could not finish \(metadata http:.*\/mac: could not be checked: no answer after 1 tries \(socket hang up\)\); nothing was found wrong, the change is kept and verified again after the backoff$/,
    );
    expect(r.sleeps[0]).toBe(10_000); // backed off as after an error
    expect(r.events[2]!.msg).toBe('in sync with the metadata: nothing to change, verified');
    expect(r.kernel.callsOf('ip', '-force', '-batch', '-')).toEqual([]); // nothing was ever undone
    expect(r.kernel.state.links.find((l) => l.ifname === 'eth1')?.addresses.map((a) => a.ip)).toEqual([
      '10.0.0.7',
      '10.0.0.8',
    ]);
    const state = await loadState(r.host, '/');
    expect(state.failedModelHash).toBeUndefined();
    expect(state.owned.addresses.map((a) => a.cidr)).toEqual(['10.0.0.3/24', '10.0.0.7/24', '10.0.0.8/24']);
  });

  it('tries a model that failed verification again after a backoff that doubles, in this process and after a restart; at once when the metadata changes', async () => {
    const r = rig();
    r.kernel.pingOk = false;
    const callsAt: number[] = [];
    r.onSleep = (n) => {
      callsAt.push(r.kernel.calls.length);
      if (n === 14) r.control.stop('test');
    };
    await r.run();
    // Polls every 5 s: the first apply at 0 s fails, the retry at 30 s fails, the next would be at 90 s.
    expect(names(r.events)).toEqual(['start', 'rollback', 'rollback', 'stop']);
    expect(r.events[1]).toMatchObject({ level: 'error' });
    expect(r.events[1]!.msg).toMatch(
      /^verification failed, every change rolled back; tried again in about 30 s, or at once when the metadata changes \(ping /,
    );
    expect(r.events[2]!.msg).toMatch(/^verification failed, every change rolled back; tried again in about 60 s, /);
    // No process between the tries: after the rollback at 0 s nothing until the 30 s poll, then nothing again.
    // callsAt[k] is read at the (k+1)-th sleep, i.e. after the poll at k * 5 s.
    expect(callsAt[5]).toBe(callsAt[0]);
    expect(callsAt[6]).toBeGreaterThan(callsAt[5]!);
    expect(callsAt[13]).toBe(callsAt[6]);
    expect(await loadState(r.host, '/')).toMatchObject({ failedAttempts: 2, retryAfter: '2025-01-01T00:01:30.000Z' });

    // A restarted daemon (its clock back at 0 s) reads the failed model and its retry time from the state file: no process.
    const again = rig(r.kernel);
    const callsBefore = r.kernel.calls.length;
    again.onSleep = (n) => {
      if (n === 2) {
        r.kernel.pingOk = true;
        emulator.setTree(
          withEth1Ips((ips) => (ips['10.0.0.9'] = { gateway: '10.0.0.1', 'subnet-mask': '255.255.255.0' })),
        );
      }
      if (n === 3) again.control.stop('test');
    };
    await again.run();
    expect(names(again.events)).toEqual(['start', 'skip-failed', 'apply', 'stop']);
    expect(again.kernel.calls.slice(callsBefore).length).toBeGreaterThan(0);
    expect((await loadState(again.host, '/')).failedModelHash).toBeUndefined();
  });

  it('reloads the configuration on request: converges with the new settings; a bad config keeps the old one', async () => {
    const r = rig();
    let reloads = 0;
    const reload = async () => {
      reloads += 1;
      if (reloads === 2) throw new Error('bad config');
      return options({ intervalMs: 7000, pipeline: { ...options().pipeline, routing: 'rp-filter' } });
    };
    r.onSleep = (n) => {
      if (n === 1 || n === 3) r.control.requestReload();
      if (n === 4) r.control.stop('test');
    };
    await r.run(options(), { reload });
    // rp-filter mode no longer wants the policy rules and routes: removed on the read after.
    expect(names(r.events)).toEqual([
      'start',
      'apply',
      'reload',
      'apply',
      'apply',
      'reload-error',
      'unchanged',
      'stop',
    ]);
    expect(r.events[3]!.pendingRemovals).toBeGreaterThan(0);
    expect(r.events[4]!.pendingRemovals).toBe(0);
    expect(r.kernel.state.rules.filter((rule) => rule.table === '10001')).toEqual([]);
    expect(r.events[5]!.msg).toBe('configuration not reloaded, keeping the current one: bad config');
    expect(r.sleeps).toEqual([5000, 7000, 7000, 7000]);
    expect(r.kernel.callsOf('sysctl', '-q', '-w').at(-1)?.argv).toContain('net.ipv4.conf.all.rp_filter=0');
  });

  it('a reload request cuts the sleep short', async () => {
    const r = rig();
    const host = { ...r.host, sleep: (ms: number, signal?: AbortSignal) => createTestHost().sleep(ms, signal) };
    let polls = 0;
    await runDaemon(host, options({ intervalMs: 3_600_000 }), {
      control: r.control,
      reload: async () => options({ intervalMs: 3_600_000 }),
      onEvent: (e) => {
        if (e.event === 'apply' || e.event === 'in-sync') {
          polls += 1;
          if (polls === 1) setTimeout(() => r.control.requestReload(), 10);
          else r.control.stop('test');
        }
      },
    });
    expect(polls).toBe(2);
  });

  it('stops between steps: an apply in progress finishes and is verified, then the loop ends without sleeping', async () => {
    const r = rig();
    const run = r.kernel.run;
    r.host = {
      ...r.host,
      run: async (argv, opts) => {
        if (argv.join(' ') === 'ip -batch -') r.control.stop('SIGTERM');
        return run(argv, opts);
      },
    };
    await r.run();
    expect(r.sleeps).toEqual([]);
    expect(names(r.events)).toEqual(['start', 'apply', 'stop']);
    expect(r.events[2]!.msg).toBe('stopped (SIGTERM)');
    expect(r.kernel.callsOf('ping').length).toBeGreaterThan(0);
    expect((await loadState(r.host, '/')).lastApply?.ok).toBe(true);
  });

  it('a stop request ends a long sleep at once', async () => {
    const r = rig();
    const host = { ...r.host, sleep: (ms: number, signal?: AbortSignal) => createTestHost().sleep(ms, signal) };
    const started = Date.now();
    await runDaemon(host, options({ intervalMs: 3_600_000 }), {
      control: r.control,
      onEvent: (e) => {
        if (e.event === 'apply') setTimeout(() => r.control.stop('SIGINT'), 10);
      },
    });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('leaves the NICs in ignoreNics alone', async () => {
    const r = rig();
    r.onSleep = () => r.control.stop('test');
    await r.run(options({ ignoreNics: [MAC1] }));
    expect(vol.existsSync(`${SCRIPTS}/ifcfg-eth1`)).toBe(false);
    const batch = r.kernel.callsOf('ip', '-batch', '-')[0]?.input ?? '';
    expect(batch).toBe('address add 10.0.0.3/24 dev eth0\n');
    expect(r.kernel.state.links.find((l) => l.ifname === 'eth1')).toMatchObject({ up: false, addresses: [] });
  });

  it('refuses to ignore the primary NIC, without changing anything', async () => {
    const r = rig();
    r.onSleep = () => r.control.stop('test');
    await r.run(options({ ignoreNics: [MAC0], metricsTextfile: undefined }));
    expect(r.kernel.calls).toEqual([]);
    expect(r.writes).toEqual([]);
    expect(names(r.events)).toEqual(['start', 'apply-error', 'stop']);
    expect(r.events[1]!.msg).toBe(
      `config: ignoreNics: ${MAC0} is the primary NIC (the metadata's \`mac\`); only secondary NICs can be left alone; retrying in about 10 s`,
    );
  });
});

describe('pollDelay', () => {
  it.each([
    // Never longer than the interval: it is the longest a change waits for the poll that sees it.
    [5000, 0, 0, 5000],
    [5000, 0, 0.5, 4750],
    [5000, 0, 0.999999, 4500],
    [5000, 1, 0, 10_000],
    [5000, 2, 0, 20_000],
    [5000, 3, 0.5, 38_000],
    [5000, 4, 0, MAX_BACKOFF_MS],
    [5000, 4, 0.999999, 54_000],
    [5000, 30, 0, MAX_BACKOFF_MS],
    [300_000, 0, 0, 300_000],
    [300_000, 3, 0, 300_000],
    [300_000, 3, 0.5, 285_000],
  ])('interval %d ms, %d failures, random %d -> %d ms', (interval, failures, random, expected) => {
    expect(pollDelay(interval, failures, random)).toBe(expected);
  });
});

describe('runDaemon: drift', () => {
  const LOST_8 = 'Deleted 3: eth1    inet 10.0.0.8/24 scope global secondary eth1';

  /** A rig whose host records the `ip monitor` watches it starts, so a test can feed them lines or end them. */
  function watchedRig() {
    const r = rig();
    const watches: { argv: readonly string[]; onLine: (line: string) => void; end: () => void }[] = [];
    r.host.watch = (argv, onLine) => {
      let end = () => undefined as void;
      const exited = new Promise<void>((resolve) => (end = resolve));
      watches.push({ argv, onLine, end: () => end() });
      return { stop: () => undefined, exited };
    };
    return { r, watches };
  }

  function take8(r: Rig): void {
    const eth1 = r.kernel.state.links.find((l) => l.ifname === 'eth1');
    if (eth1 !== undefined) eth1.addresses = eth1.addresses.filter((a) => a.ip !== '10.0.0.8');
  }

  it('a change the watch reports is repaired at once, without waiting for the metadata to change', async () => {
    const { r, watches } = watchedRig();
    r.onSleep = (n) => {
      if (n === 1) {
        take8(r);
        watches[0]?.onLine(LOST_8);
      }
      if (n === 3) r.control.stop('test');
    };
    await r.run();
    expect(watches.map((w) => w.argv.join(' '))).toEqual(['ip monitor address route rule link']);
    const repair = r.events.find((e) => e.event === 'repair');
    expect(repair).toMatchObject({ level: 'warn', cause: LOST_8 });
    expect(repair?.runtimeApplied).toContain('add 10.0.0.8/24 to eth1');
    // The debounce, then the usual interval.
    expect(r.sleeps.slice(0, 2)).toEqual([5000, 300]);
  });

  it('a repair applies the plan that found the drift: one read of the live state before the change, not two', async () => {
    const { r, watches } = watchedRig();
    let before = 0;
    r.onSleep = (n) => {
      if (n === 1) {
        take8(r);
        before = r.kernel.calls.length;
        watches[0]?.onLine(LOST_8);
      }
      if (n === 3) r.control.stop('test');
    };
    await r.run();
    expect(r.events.map((e) => e.event)).toContain('repair');
    const calls = r.kernel.calls.slice(before);
    const change = calls.findIndex((c) => c.argv.join(' ') === 'ip -batch -');
    expect(calls[change]?.input).toBe('address add 10.0.0.8/24 dev eth1\n');
    const liveReads = calls.slice(0, change).filter((c) => c.argv.join(' ') === 'ip -j -d -batch -');
    expect(liveReads).toHaveLength(1);
  });

  it('a line about an interface or table it does not manage wakes nothing', async () => {
    const { r, watches } = watchedRig();
    r.onSleep = (n) => {
      if (n === 1) watches[0]?.onLine('4: eth7    inet 192.0.2.5/24 scope global eth7');
      if (n === 3) r.control.stop('test');
    };
    await r.run();
    expect(r.sleeps).not.toContain(300);
    expect(names(r.events).filter((e) => e === 'repair' || e === 'apply')).toEqual(['apply']);
  });

  it('when something keeps undoing the repairs, it says so once and stops reacting at once', async () => {
    const { r, watches } = watchedRig();
    // Every wait ends with the address gone again; 16 waits stay well inside the one-minute window.
    r.onSleep = (n) => {
      if (n < 16) {
        take8(r);
        watches[0]?.onLine(LOST_8);
      }
      if (n === 16) r.control.stop('test');
    };
    await r.run();
    expect(r.host.now() - Date.parse('2025-01-01T00:00:00Z')).toBeLessThan(60_000);
    expect(r.events.filter((e) => e.event === 'drift-flapping')).toHaveLength(1);
    // Five at once; then none until the next full metadata read, a minute after the last.
    expect(names(r.events).filter((e) => e === 'repair')).toHaveLength(5);
    expect(names(r.events).indexOf('drift-flapping')).toBeGreaterThan(names(r.events).lastIndexOf('repair'));
  });

  it('a monitor that ends is replaced, and the live state checked at once', async () => {
    const { r, watches } = watchedRig();
    r.onSleep = (n) => {
      if (n === 1) {
        take8(r);
        watches[0]?.end();
      }
      if (n === 4) r.control.stop('test');
    };
    await r.run();
    expect(watches).toHaveLength(2);
    expect(r.events.find((e) => e.event === 'repair')).toMatchObject({ cause: 'the live-state monitor ended' });
  });
});
