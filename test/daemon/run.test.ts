// `eip-agent run` end to end in memory: config file, lock, signals, log format, metrics endpoint.
import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createRunCommand, type ProcessEdge } from '../../src/cli/commands/run.js';
import { LOCK_PATH } from '../../src/plan/lock.js';
import { DAEMON_JIT_POLICY } from '../../src/host/node.js';
import type { Host } from '../../src/host/host.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { createTestHost, vol } from '../helpers/host.js';
import { freshKernel, guestFiles } from '../helpers/manual-guest.js';

const CONFIG = '/etc/eip-agent/config.json';

/** Signals a test can raise, and the edge's other facts. */
function fakeEdge(facts: Partial<Omit<ProcessEdge, 'onSignal'>> = {}) {
  const handlers = new Map<string, Set<() => void>>();
  const edge: ProcessEdge = {
    onSignal(signal, handler) {
      const set = handlers.get(signal) ?? new Set();
      set.add(handler);
      handlers.set(signal, set);
      return () => set.delete(handler);
    },
    stderrIsTTY: false,
    stderrIsJournal: false,
    ...facts,
  };
  return {
    edge,
    raise: (signal: string) => handlers.get(signal)?.forEach((h) => h()),
    listening: () => [...handlers.values()].reduce((n, s) => n + s.size, 0),
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Rig {
  kernel: FakeKernel;
  host: Host;
  sleeps: number[];
  onSleep: (n: number) => void | Promise<void>;
}

function rig(overrides: Partial<Host> = {}): Rig {
  const kernel = new FakeKernel(freshKernel());
  const r: Rig = { kernel, sleeps: [], onSleep: () => undefined, host: undefined as unknown as Host };
  r.host = createTestHost({
    run: kernel.run,
    isPrivileged: () => true,
    now: () => Date.parse('2025-01-01T00:00:00Z'),
    sleep: async (ms) => {
      r.sleeps.push(ms);
      await r.onSleep(r.sleeps.length);
    },
    ...overrides,
  });
  return r;
}

function args(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { root: '/', metadataFile: '/meta.json', config: CONFIG, json: false, logFormat: 'auto', ...extra };
}

async function runCli(
  host: Host,
  edge: ProcessEdge,
  a: Record<string, unknown> = args(),
): Promise<{ code: number; err: string; out: string }> {
  let err = '';
  let out = '';
  const code = await createRunCommand(() => edge).run(host, { out: (t) => (out += t), err: (t) => (err += t) }, a);
  return { code, err, out };
}

function events(err: string): { event: string; level: string; msg: string }[] {
  return err
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as { event: string; level: string; msg: string });
}

beforeEach(() => {
  vol.reset();
  vol.fromJSON({ ...guestFiles(), [CONFIG]: '{}' });
});

describe('eip-agent run', () => {
  it('holds the lock, logs JSON lines, reloads the config on SIGHUP and stops on SIGTERM', async () => {
    const r = rig();
    const { edge, raise, listening } = fakeEdge();
    let lockDuringRun: string | null = null;
    r.onSleep = (n) => {
      if (n === 1) {
        lockDuringRun = String(vol.readFileSync(LOCK_PATH, 'utf8'));
        vol.writeFileSync(CONFIG, JSON.stringify({ interval: 7 }));
        raise('SIGHUP');
      }
      if (n === 2) raise('SIGTERM');
    };
    const run = await runCli(r.host, edge);
    expect(run.code).toBe(0);
    expect(run.out).toBe('');
    expect(events(run.err).map((e) => e.event)).toEqual(['start', 'apply', 'reload', 'in-sync', 'stop']);
    expect(events(run.err).at(-1)?.msg).toBe('stopped (SIGTERM)');
    // 90-100% of the interval, the second one from the reloaded config.
    expect(r.sleeps[0]).toBeGreaterThanOrEqual(4500);
    expect(r.sleeps[0]).toBeLessThanOrEqual(5000);
    expect(r.sleeps[1]).toBeGreaterThanOrEqual(6300);
    expect(r.sleeps[1]).toBeLessThanOrEqual(7000);
    expect(lockDuringRun).toBe('4242\n\n');
    expect(vol.existsSync(LOCK_PATH)).toBe(false);
    expect(listening()).toBe(0);
  });

  it('a bad config on SIGHUP keeps the running one and says why', async () => {
    const r = rig();
    const { edge, raise } = fakeEdge();
    r.onSleep = (n) => {
      if (n === 1) {
        vol.writeFileSync(CONFIG, JSON.stringify({ interval: 'often' }));
        raise('SIGHUP');
      }
      if (n === 2) raise('SIGINT');
    };
    const run = await runCli(r.host, edge);
    const log = events(run.err);
    expect(log.map((e) => e.event)).toEqual(['start', 'apply', 'reload-error', 'stop']);
    expect(log[2]!.msg).toBe(
      `configuration not reloaded, keeping the current one: config: ${CONFIG}: interval: "often" is not an integer from 1 to 3600`,
    );
    expect(r.sleeps.every((ms) => ms >= 4500 && ms <= 5500)).toBe(true);
  });

  it('refuses to start while another agent holds the lock, naming its pid, and changes nothing', async () => {
    vol.fromJSON({
      [LOCK_PATH]: '777\n1\n',
      '/proc/777/stat': '777 (node) S 1 777 777 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 0\n',
    });
    const r = rig();
    const { edge, listening } = fakeEdge();
    await expect(runCli(r.host, edge)).rejects.toThrow(
      `another eip-agent is running: pid 777 holds the lock ${LOCK_PATH}`,
    );
    expect(r.kernel.calls).toEqual([]);
    expect(listening()).toBe(0);
    expect(String(vol.readFileSync(LOCK_PATH, 'utf8'))).toBe('777\n1\n');
  });

  it('takes over a stale lock and says so in the log', async () => {
    // Our own /proc entry exists (this is Linux), pid 777's does not: it is gone.
    vol.fromJSON({
      [LOCK_PATH]: '777\n1\n',
      '/proc/4242/stat': '4242 (node) S 1 4242 4242 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0\n',
    });
    const r = rig();
    const { edge, raise } = fakeEdge();
    r.onSleep = () => raise('SIGTERM');
    const run = await runCli(r.host, edge);
    expect(events(run.err)[0]).toMatchObject({
      level: 'warn',
      event: 'lock',
      msg: `took over the lock ${LOCK_PATH} from pid 777, which is no longer running`,
    });
  });

  it('needs root', async () => {
    const r = rig({ isPrivileged: () => false });
    await expect(runCli(r.host, fakeEdge().edge)).rejects.toThrow(
      /^run changes addresses, rules and sysctls and needs root/,
    );
    expect(r.kernel.calls).toEqual([]);
  });

  describe('on Bun (the release executable)', () => {
    afterEach(() => vi.unstubAllGlobals());

    it('makes the JIT reluctant as it starts, whatever comes next', async () => {
      const setJITPolicy = vi.fn();
      vi.stubGlobal('Bun', { gc: vi.fn(), unsafe: { setJITPolicy } });
      const r = rig({ isPrivileged: () => false });
      await expect(runCli(r.host, fakeEdge().edge)).rejects.toThrow(/needs root/);
      expect(setJITPolicy).toHaveBeenCalledWith(DAEMON_JIT_POLICY);
    });
  });

  it('serves /metrics on 127.0.0.1 while it runs', async () => {
    const port = await freePort();
    vol.writeFileSync(CONFIG, JSON.stringify({ metricsPort: port }));
    const r = rig();
    const { edge, raise } = fakeEdge();
    let scraped = '';
    r.onSleep = async () => {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      scraped = await response.text();
      raise('SIGTERM');
    };
    await runCli(r.host, edge);
    expect(scraped).toMatch(/^eip_agent_applies_total 1$/m);
    expect(scraped).toContain(
      'eip_agent_address_configured{interface="eth1",mac="20:90:6f:f7:93:2e",address="10.0.0.8",kind="private",eip="203.0.113.13",eip_mode="NAT"} 1',
    );
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });

  it.each([
    [{ stderrIsTTY: true }, 'auto', /^\d\d:\d\d:\d\d info {2}watching \/meta\.json every 5 s/],
    [{ stderrIsTTY: false }, 'auto', /^\{"time":"2025-01-01T00:00:00\.000Z","level":"info","event":"start"/],
    [{ stderrIsTTY: false, stderrIsJournal: true }, 'auto', /^<6>\{"time":/],
    [{ stderrIsTTY: true }, 'json', /^\{"time":/],
    [{ stderrIsTTY: false }, 'text', /^\d\d:\d\d:\d\d info {2}/],
  ])('log format for %j with --log-format %s', async (facts, logFormat, first) => {
    const r = rig();
    const { edge, raise } = fakeEdge(facts);
    r.onSleep = () => raise('SIGTERM');
    const run = await runCli(r.host, edge, args({ logFormat }));
    expect(run.err.split('\n')[0]).toMatch(first);
  });
});
