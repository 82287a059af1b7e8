// The agent as a service in the emulated VPC: `eip-agent run` daemons through a disaster recovery, an ENI hot-plug,
// metadata faults, a failed verification, kill -9 in the middle of applies, and a long quiet minute. Each scenario
// has its own lab, so that one failing leaves the others meaningful; every daemon is killed in afterAll.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { STATE_PATH } from '../../src/plan/record.js';
import type { MetadataFaults } from '../../src/sandbox/emulator.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { MANAGED_MARKER } from '../../src/plan/plan.js';
import { NETWORK_SCRIPTS_DIR, SYSCTL_DROPIN } from '../../src/targets/linux/paths.js';
import { manualTree } from '../lab/fixtures.js';
import { labOk, requireLab } from '../lab/guard.js';
import { isBootStandIn } from '../../src/sandbox/guest-root.js';
import { planTopology, type NicPlan } from '../../src/sandbox/topology.js';
import type { Lab } from '../lab/vpc.js';
import { type Daemon, MAC_B, addresses, mtimes, serverAWithout8, serverB, which } from './daemon-process.js';
import {
  MAC_A0,
  MAC_A1,
  addr,
  answers,
  files,
  isConverge,
  live,
  must,
  readState,
  rulesFrom,
  scenario,
  until,
  withAddresses,
  withoutNic,
  type Live,
} from './lab-scenario.js';

requireLab('eip-agent as a service in the emulated VPC');

const SYSCTL_DIR = '/etc/sysctl.d';

// ---------------------------------------------------------------------------------------------------------------
// 1. Disaster recovery

/** `ping -D -i 0.2` from the internet host, parsed as it runs; bounded by -c and -w, killed at teardown. */
class Pinger {
  /** Epoch ms of each reply, as ping stamped it (-D). */
  readonly replies: number[] = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private rest = '';

  constructor(lab: Lab, address: string, seconds: number) {
    // -D stamps each line with the time of the reply, so stdout buffering cannot skew the measurement.
    const stdbuf = which('stdbuf');
    const ping = [
      'ping',
      '-n',
      '-D',
      '-i',
      '0.2',
      '-W',
      '1',
      '-c',
      String(seconds * 5),
      '-w',
      String(seconds),
      address,
    ];
    const argv = ['netns', 'exec', lab.internetNs, ...(stdbuf === 'stdbuf' ? ping : [stdbuf, '-oL', ...ping])];
    this.child = spawn(which('ip'), argv, { stdio: ['ignore', 'pipe', 'ignore'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (this.rest + chunk).split('\n');
      this.rest = lines.pop() ?? '';
      for (const line of lines) {
        const stamp = /^\[(\d+\.\d+)\] \d+ bytes from/.exec(line)?.[1];
        if (stamp !== undefined) this.replies.push(Number(stamp) * 1000);
      }
    });
    this.exited = new Promise((resolve) => this.child.once('close', () => resolve()));
  }

  firstReplyAfter(t: number): number | undefined {
    return this.replies.find((r) => r > t);
  }

  /** Longest time between consecutive replies after t. */
  longestGapAfter(t: number): number {
    const after = this.replies.filter((r) => r > t);
    return after.slice(1).reduce((max, r, i) => Math.max(max, r - after[i]!), 0);
  }

  async waitForReplyAfter(t: number, timeoutMs: number): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const reply = this.firstReplyAfter(t);
      if (reply !== undefined) return reply;
      await delay(50);
    }
    return this.firstReplyAfter(t);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
    await this.exited;
  }
}

describe.skipIf(!labOk)(
  'disaster recovery: A fails, the cloud moves 10.0.0.8 and its EIP to B; both run the daemon',
  () => {
    const INTERVAL = 5;
    const EIP = '203.0.113.13';
    const s = scenario([
      { name: 'a', tree: manualTree() },
      { name: 'b', tree: serverB() },
    ]);
    let a: Daemon;
    let b: Daemon;
    let pinger: Pinger;

    it('both daemons converge; a user adds 10.0.0.99/24 to A by hand; the EIP answers from A', async () => {
      a = s.start('a', { interval: INTERVAL });
      b = s.start('b', { interval: INTERVAL });
      await a.waitForEvent('A to apply', 0, (e) => e.event === 'apply');
      await b.waitForEvent('B to converge', 0, isConverge);
      await must(s.lab, s.lab.guestNs('a'), ['ip', 'address', 'add', '10.0.0.99/24', 'dev', 'eth0']);
      expect(await s.lab.pingFromInternet(EIP)).toBe(true);
    });

    it(
      `A fails; within interval + 3 s of the move B's daemon, untouched, has the EIP answering again`,
      { timeout: 40_000 },
      async () => {
        pinger = new Pinger(s.lab, EIP, 60);
        s.onCleanup(() => pinger.stop());
        expect(await pinger.waitForReplyAfter(Date.now(), 3000), 'the EIP answers before the failure').toBeDefined();

        // A "fails": its agent dies at once and its NICs go dark.
        await a.stop('SIGKILL');
        for (const dev of ['eth1', 'eth0']) await must(s.lab, s.lab.guestNs('a'), ['ip', 'link', 'set', dev, 'down']);
        const downAt = Date.now();
        await delay(600);
        expect(pinger.replies.filter((r) => r > downAt).length, 'no reply once A is down').toBe(0);

        // The control plane moves the private IP and its EIP to B.
        const seenB = b.events.length;
        const movedAt = Date.now();
        await s.lab.updateGuest('a', serverAWithout8());
        await s.lab.updateGuest('b', serverB({ '10.0.0.8': addr(EIP) }));
        const movedDoneMs = Date.now() - movedAt;

        const bound = (INTERVAL + 3) * 1000;
        const firstReply = await pinger.waitForReplyAfter(movedAt, bound + 2000);
        const outage = firstReply === undefined ? Infinity : firstReply - movedAt;
        const apply = b.events.slice(seenB).find((e) => e.event === 'apply');
        console.log(
          `DR outage window: ${outage === Infinity ? 'no reply' : `${Math.round(outage)} ms`} from the move to the first reply from ${EIP} ` +
            `(bound ${bound} ms = interval ${INTERVAL} s + 3 s; updateGuest took ${movedDoneMs} ms; B's apply logged at ${apply?.time ?? 'n/a'})`,
        );
        expect(outage).toBeLessThan(bound);

        const { event } = await b.waitForEvent('B to apply 10.0.0.8', seenB, (e) => e.event === 'apply');
        expect(event.runtimeApplied).toContain('add 10.0.0.8/24 to eth0');
        expect(
          b.events
            .slice(seenB)
            .filter((e) => e.event === 'apply' || e.event === 'rollback')
            .map((e) => e.event),
        ).toEqual(['apply']);
        expect(await addresses(s.lab, 'b', 'eth0')).toEqual(['10.0.0.20/24', '10.0.0.8/24']);
        expect(readFileSync(join(s.root('b'), NETWORK_SCRIPTS_DIR, 'ifcfg-eth0'), 'utf8')).toMatch(
          /^IPADDR1=10\.0\.0\.8$/m,
        );
      },
    );

    it(
      "A comes back: its daemon removes 10.0.0.8 on the second read, keeps the user's address; the EIP stays on B",
      { timeout: 40_000 },
      async () => {
        const returnedAt = Date.now();
        for (const dev of ['eth0', 'eth1']) await must(s.lab, s.lab.guestNs('a'), ['ip', 'link', 'set', dev, 'up']);
        // What DHCP / network.service does at boot: without a default route the agent could not reach the metadata.
        await must(s.lab, s.lab.guestNs('a'), ['ip', 'route', 'replace', 'default', 'via', '10.0.0.1', 'dev', 'eth0']);
        a = s.start('a', { interval: INTERVAL });

        const first = await a.waitForEvent("A's first read", 0, isConverge);
        expect(first.event.pendingRemovals, a.describe()).toBeGreaterThan(0);
        expect(first.event.runtimeApplied ?? []).not.toContain(
          'remove 10.0.0.8/24 from eth1 (no longer in the metadata)',
        );
        expect(await addresses(s.lab, 'a', 'eth1')).toContain('10.0.0.8/24');

        const second = await a.waitForEvent("A's second read", first.index + 1, isConverge, INTERVAL * 1000 * 2 + 5000);
        expect(second.event.runtimeApplied).toContain('remove 10.0.0.8/24 from eth1 (no longer in the metadata)');
        expect(second.event.pendingRemovals).toBe(0);
        expect(await addresses(s.lab, 'a', 'eth1')).toEqual(['10.0.0.7/24']);
        expect(await addresses(s.lab, 'a', 'eth0')).toEqual(['10.0.0.2/24', '10.0.0.3/24', '10.0.0.99/24']);
        expect(await rulesFrom(s.lab, 'a', '10.0.0.8')).toEqual([]);
        expect(await addresses(s.lab, 'b', 'eth0')).toEqual(['10.0.0.20/24', '10.0.0.8/24']);

        expect(await s.lab.pingFromInternet(EIP)).toBe(true);
        const neigh = await s.lab.exec(s.lab.routerNs, ['ip', '-j', 'neigh', 'show', '10.0.0.8']);
        expect((JSON.parse(neigh.stdout) as { lladdr?: string }[]).map((n) => n.lladdr)).toEqual([MAC_B]);
        await pinger.stop();
        console.log(
          `DR: after A came back, the longest gap between replies from ${EIP} was ${Math.round(pinger.longestGapAfter(returnedAt))} ms (ping every 200 ms)`,
        );
        expect(b.count('rollback') + b.count('apply-error') + a.count('rollback') + a.count('apply-error')).toBe(0);
      },
    );
  },
);

// ---------------------------------------------------------------------------------------------------------------
// 2. ENI hot-plug

const MAC_H0 = '52:54:00:00:00:30';
const MAC_H1 = '52:54:00:00:00:31';

function hotTree(withEni: boolean): MetaTree {
  const nic = (primary: string, eip: string): MetaTree => ({
    'primary-local-ipv4': primary,
    'local-ipv4s': { [primary]: addr(eip) },
  });
  return {
    'instance-id': 'ins-lab0000h',
    mac: MAC_H0,
    network: {
      interfaces: {
        macs: {
          [MAC_H0]: nic('10.0.0.30', '203.0.113.30'),
          ...(withEni ? { [MAC_H1]: nic('10.0.0.31', '203.0.113.31') } : {}),
        },
      },
    },
  };
}

/**
 * Attaches an ENI the way a hypervisor does: a new veth whose guest end appears as `guestIf` with the ENI's MAC, its
 * router end on the subnet's bridge. The lab plans its ports (NAT, anti-spoofing) from the start trees only, so the
 * ENI is planned at start and unplugged before the test (see unplug).
 */
async function plug(lab: Lab, guest: string, nic: NicPlan): Promise<void> {
  await must(lab, lab.routerNs, [
    'ip',
    'link',
    'add',
    nic.port,
    'type',
    'veth',
    'peer',
    'name',
    nic.guestIf,
    'address',
    nic.mac,
    'netns',
    lab.guestNs(guest),
  ]);
  await must(lab, lab.routerNs, ['ip', 'link', 'set', nic.port, 'master', nic.subnet.bridge, 'up']);
}

/** Detaches it: deleting the router end deletes the pair, so the guest's interface vanishes with its addresses and routes. */
async function unplug(lab: Lab, nic: NicPlan): Promise<void> {
  await must(lab, lab.routerNs, ['ip', 'link', 'del', nic.port]);
}

describe.skipIf(!labOk)('ENI hot-plug: a running guest gets eth1, then loses it', () => {
  const INTERVAL = 3;
  const specs = [{ name: 'h', tree: hotTree(true) }];
  const eni = planTopology(specs).guests[0]!.nics[1]!;
  const s = scenario(specs);
  let d: Daemon;

  it('a guest with only eth0 converges', async () => {
    await unplug(s.lab, eni);
    await s.lab.updateGuest('h', hotTree(false));
    d = s.start('h', { interval: INTERVAL });
    await d.waitForEvent('the first converge', 0, isConverge);
    expect((await live(s.lab, 'h')).addresses).toEqual(['eth0 10.0.0.30/24', 'lo 127.0.0.1/8']);
  });

  /** Resolves right after a quiet poll, so that the next one is most of an interval away. */
  const afterAPoll = async (): Promise<void> =>
    void (await d.waitForEvent('a quiet poll', d.events.length, (e) => e.event === 'unchanged', INTERVAL * 2000));

  it(
    'attach: eth1 with a new MAC appears, the cloud lists it; within one poll it is configured and its EIP answers',
    { timeout: 30_000 },
    async () => {
      await afterAPoll();
      await plug(s.lab, 'h', eni);
      const seen = d.events.length;
      const attachedAt = Date.now();
      await s.lab.updateGuest('h', hotTree(true));
      const bound = (INTERVAL + 3) * 1000;
      const configured = await until(
        attachedAt + bound,
        async () =>
          (await addresses(s.lab, 'h', 'eth1')).includes('10.0.0.31/24') && (await answers(s.lab, '203.0.113.31')),
      );
      console.log(
        `hot-plug: eth1 configured and its EIP answering ${configured === undefined ? 'never' : `${configured - attachedAt} ms`} after the metadata listed it (bound ${bound} ms)`,
      );
      expect(configured, d.describe()).toBeDefined();
      const { event } = await d.waitForEvent('the apply', seen, isConverge);
      expect(event.event).toBe('apply');
      expect(event.runtimeApplied).toEqual(expect.arrayContaining(['bring eth1 up', 'add 10.0.0.31/24 to eth1']));
      for (const file of ['ifcfg-eth1', 'route-eth1', 'rule-eth1'])
        expect(existsSync(join(s.root('h'), NETWORK_SCRIPTS_DIR, file)), file).toBe(true);
      expect(await rulesFrom(s.lab, 'h', '10.0.0.31')).toHaveLength(2);
    },
  );

  it('detach: after two reads its rules and files are gone', { timeout: 60_000 }, async () => {
    // The device goes, then the metadata follows; a poll between the two would fail ("wait until the ENI is attached").
    await afterAPoll();
    const seen = d.events.length;
    await unplug(s.lab, eni);
    await s.lab.updateGuest('h', hotTree(false));
    const first = await d.waitForEvent(
      'the read that sees the ENI gone',
      seen,
      (e) => isConverge(e) || e.event === 'apply-error',
    );
    expect(first.event.event, d.describe()).not.toBe('apply-error');
    expect(first.event.pendingRemovals).toBeGreaterThan(0);
    expect(existsSync(join(s.root('h'), NETWORK_SCRIPTS_DIR, 'ifcfg-eth1'))).toBe(true);
    const second = await d.waitForEvent('the read that agrees', first.index + 1, isConverge, INTERVAL * 3000);
    expect(second.event.pendingRemovals).toBe(0);
    for (const file of ['ifcfg-eth1', 'route-eth1', 'rule-eth1'])
      expect(existsSync(join(s.root('h'), NETWORK_SCRIPTS_DIR, file)), file).toBe(false);
    expect(await rulesFrom(s.lab, 'h', '10.0.0.31'), d.describe()).toEqual([]);
    const after = await live(s.lab, 'h');
    expect(after.addresses).toEqual(['eth0 10.0.0.30/24', 'lo 127.0.0.1/8']);
    expect(after.routes.filter((r) => r.includes('eth1'))).toEqual([]);
    expect(JSON.stringify(readState(s.root('h')).owned)).not.toContain('10.0.0.31');
    expect(await answers(s.lab, '203.0.113.30')).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. Metadata faults

describe.skipIf(!labOk)('metadata faults while in sync change nothing', () => {
  const s = scenario([{ name: 'f', tree: manualTree() }]);
  /**
   * The top-level `mac` leaf: read by every poll, the full read and the listings-only one of an in-sync daemon alike
   * (no other path contains this string). A quiet poll asks for the listings it read last at once (one request), and
   * reads them in full when an answer differs or fails (1 + 3 retries): a fault on it for FAULTS requests fails
   * exactly one read, a quiet one or a full one (whose fifth fault goes to the next poll's first request).
   */
  const LEAF = 'meta-data/mac';
  const ATTEMPTS = 4;
  const FAULTS = 1 + ATTEMPTS;
  let d: Daemon;
  let baseline: { live: Live; files: Record<string, string>; owned: unknown };

  const snapshot = async () => ({
    live: await live(s.lab, 'f'),
    files: files(s.root('f')),
    owned: readState(s.root('f')).owned,
  });

  it('the daemon converges', async () => {
    d = s.start('f', { interval: 2 });
    const { index } = await d.waitForEvent('the first apply', 0, (e) => e.event === 'apply');
    await d.waitForEvent('a quiet poll', index, (e) => e.event === 'unchanged');
    baseline = await snapshot();
    expect(baseline.live.addresses).toContain('eth1 10.0.0.8/24');
  });

  const cases: [string, MetadataFaults, RegExp][] = [
    ['HTTP 503', { status: { code: 503, match: LEAF, count: FAULTS } }, /HTTP 503 after 4 attempts/],
    ['a hang', { hang: { match: LEAF, count: FAULTS } }, /timed out after 2000 ms \(4 attempts\)/],
    ['a truncated body', { truncate: { match: LEAF, count: FAULTS } }, /truncated body/],
  ];
  for (const [name, faults, message] of cases) {
    it(`${name} for one read: logged, nothing removed, the next read is quiet`, { timeout: 30_000 }, async () => {
      const seen = d.events.length;
      const errors = readState(s.root('f')).counters.metadataErrors;
      await s.faults('f', faults);
      const error = await d.waitForEvent(
        'the metadata error',
        seen,
        (e) => e.event === 'metadata-error' || isConverge(e),
        20_000,
      );
      expect(error.event.event, d.describe()).toBe('metadata-error');
      expect(error.event.msg).toMatch(message);
      expect(error.event.msg).toContain(LEAF);
      const next = await d.waitForEvent('the next read', error.index + 1, () => true, 20_000);
      expect(next.event.event, d.describe()).toBe('unchanged');
      expect(await snapshot()).toEqual(baseline);
      expect(readState(s.root('f')).counters.metadataErrors).toBe(errors + 1);
      await s.faults('f', {});
    });
  }

  it(
    'eth1 dropped from the metadata for one read: a pending removal, cancelled by the next read; nothing removed',
    { timeout: 40_000 },
    async () => {
      // A longer interval, so that the restore surely lands before the next read.
      await expect(d.stop('SIGTERM')).resolves.toBe(0);
      d = s.start('f', { interval: 4 });
      const start = await d.waitForEvent('the first converge', 0, isConverge);
      expect(start.event.event).toBe('in-sync');
      const seen = d.events.length;
      await s.lab.updateGuest('f', withoutNic(manualTree(), MAC_A1));
      const dropped = await d.waitForEvent('the read without eth1', seen, isConverge, 10_000);
      await s.lab.updateGuest('f', manualTree());
      const droppedAt = Date.now();
      expect(dropped.event.pendingRemovals, JSON.stringify(dropped.event)).toBeGreaterThan(0);
      const restored = await d.waitForEvent(
        'the read with eth1 again',
        dropped.index + 1,
        (e) => isConverge(e) || e.event === 'metadata-error',
        10_000,
      );
      expect(Date.parse(restored.event.time ?? '')).toBeGreaterThan(droppedAt);
      expect(restored.event.pendingRemovals, JSON.stringify(restored.event)).toBe(0);
      console.log(
        `faults: eth1 dropped for one read -> ${dropped.event.event} (pending ${dropped.event.pendingRemovals}, files ${JSON.stringify(dropped.event.filesWritten)}, runtime ${JSON.stringify(dropped.event.runtimeApplied)}); ` +
          `restored -> ${restored.event.event} (pending ${restored.event.pendingRemovals}, files ${JSON.stringify(restored.event.filesWritten)}, runtime ${JSON.stringify(restored.event.runtimeApplied)})`,
      );
      const after = await snapshot();
      expect(after.live).toEqual(baseline.live);
      expect(after.files).toEqual(baseline.files);
    },
  );

  it('after the one-read drop the agent still owns what it added on eth1 (so it can remove it later)', () => {
    expect(readState(s.root('f')).owned).toEqual(baseline.owned);
  });
});

/** nft table in the lab's router that drops echo requests to the gateway from one guest port. */
const BLOCK = 'eiptblock';

/**
 * Makes the gateway stop answering pings from a guest NIC: in the lab's router only, echo requests to 10.0.0.1 that
 * enter from the NIC's port are dropped (echo replies to the internet host still pass, so its EIPs keep answering).
 * Returns the undo, which is idempotent.
 */
async function blockGatewayPings(lab: Lab, port: string): Promise<() => Promise<void>> {
  const ruleset = `table bridge ${BLOCK} {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority -300; policy accept;\n\t\tiifname "${port}" ip daddr 10.0.0.1 icmp type echo-request drop\n\t}\n}\n`;
  await must(lab, lab.routerNs, ['nft', '-f', '-'], ruleset);
  return async () => {
    await lab.exec(lab.routerNs, ['nft', 'delete', 'table', 'bridge', BLOCK]);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Verification failure

describe.skipIf(!labOk)(
  'a failed verification rolls back and is not retried before its backoff (30 s) unless the metadata changes',
  () => {
    const INTERVAL = 2;
    const specs = [{ name: 'r', tree: manualTree() }];
    const port = planTopology(specs).guests[0]!.nics[1]!.port;
    const s = scenario(specs);
    let d: Daemon;
    let unblock: () => Promise<void> = async () => {};
    s.onCleanup(() => unblock());
    let baseline: { live: Live; files: Record<string, string> };
    let perRead = 0;

    it('the daemon converges', async () => {
      d = s.start('r', { interval: INTERVAL });
      const { index } = await d.waitForEvent('the first apply', 0, (e) => e.event === 'apply');
      const quiet = await d.waitForEvent('a quiet poll', index, (e) => e.event === 'unchanged');
      const r0 = await s.requests('r');
      await d.waitForEvent('another quiet poll', quiet.index + 1, (e) => e.event === 'unchanged');
      perRead = (await s.requests('r')) - r0; // a quiet poll reads only the listings
      baseline = { live: await live(s.lab, 'r'), files: files(s.root('r')) };
      expect(perRead).toBeGreaterThan(0);
    });

    it(
      'the gateway stops answering eth1; the cloud adds 10.0.0.9: rolled back, not retried within the backoff, the guest stays reachable',
      { timeout: 40_000 },
      async () => {
        unblock = await blockGatewayPings(s.lab, port);
        expect(
          (await s.lab.exec(s.lab.guestNs('r'), ['ping', '-n', '-c1', '-W1', '-I', '10.0.0.7', '10.0.0.1'])).exitCode,
          'the block works',
        ).not.toBe(0);

        const seen = d.events.length;
        const applies = d.count('apply');
        await s.lab.updateGuest('r', withAddresses(manualTree(), MAC_A1, { '10.0.0.9': addr('203.0.113.14') }));
        const { event, index } = await d.waitForEvent(
          'the rollback',
          seen,
          (e) => e.event === 'rollback' || isConverge(e),
          20_000,
        );
        expect(event.event, d.describe()).toBe('rollback');
        expect(event.level).toBe('error');
        expect(event.failedChecks).toEqual(
          expect.arrayContaining([expect.stringMatching(/^ping 10\.0\.0\.1 from 10\.0\.0\.9 \(eth1\)/)]),
        );
        expect(event.runtimeApplied).toContain('add 10.0.0.9/24 to eth1');
        expect(await addresses(s.lab, 'r', 'eth1')).toEqual(['10.0.0.7/24', '10.0.0.8/24']);
        expect(await live(s.lab, 'r')).toEqual(baseline.live);
        expect(files(s.root('r'))).toEqual(baseline.files);
        expect(readState(s.root('r')).failedModelHash).toBeDefined();

        // Three more polls of the same metadata (each at least as many requests as a quiet poll), well within the 30 s
        // backoff: nothing is applied again.
        const r0 = await s.requests('r');
        await delay(3 * INTERVAL * 1100 + 500);
        expect((await s.requests('r')) - r0, 'the daemon kept reading').toBeGreaterThanOrEqual(3 * perRead);
        expect(d.events.slice(index + 1).map((e) => e.event)).toEqual([]);
        expect(d.count('rollback')).toBe(1);
        expect(d.count('apply')).toBe(applies);
        expect(await addresses(s.lab, 'r', 'eth1')).toEqual(['10.0.0.7/24', '10.0.0.8/24']);
        for (const eip of ['203.0.113.10', '203.0.113.11', '203.0.113.12', '203.0.113.13'])
          expect(await s.lab.pingFromInternet(eip), eip).toBe(true);
      },
    );

    it('unblocked, the metadata changes again (10.0.0.10 too): it applies', { timeout: 30_000 }, async () => {
      await unblock();
      expect(
        (await s.lab.exec(s.lab.guestNs('r'), ['ping', '-n', '-c1', '-W1', '-I', '10.0.0.7', '10.0.0.1'])).exitCode,
        'unblocked',
      ).toBe(0);
      const seen = d.events.length;
      await s.lab.updateGuest(
        'r',
        withAddresses(manualTree(), MAC_A1, { '10.0.0.9': addr('203.0.113.14'), '10.0.0.10': addr('203.0.113.15') }),
      );
      const { event } = await d.waitForEvent('the apply', seen, (e) => e.event === 'rollback' || isConverge(e), 20_000);
      expect(event.event, d.describe()).toBe('apply');
      expect(event.runtimeApplied).toEqual(
        expect.arrayContaining(['add 10.0.0.9/24 to eth1', 'add 10.0.0.10/24 to eth1']),
      );
      expect(await addresses(s.lab, 'r', 'eth1')).toEqual([
        '10.0.0.7/24',
        '10.0.0.8/24',
        '10.0.0.9/24',
        '10.0.0.10/24',
      ]);
      expect(readState(s.root('r')).failedModelHash).toBeUndefined();
      for (const eip of ['203.0.113.14', '203.0.113.15']) expect(await s.lab.pingFromInternet(eip), eip).toBe(true);
    });
  },
);

/** The processes whose parent is `parent` right now, found by scanning /proc (this kernel may lack .../children). */
function childrenOf(parent: number): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      // A child that has exited but is not reaped yet (a zombie) has an empty cmdline.
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') || '(exited)';
      out.push({ pid: Number(name), cmdline });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** Records every child of `parent` seen by polling /proc every `everyMs`; a child shorter than that may be missed. */
class ChildWatcher {
  readonly seen: { at: number; pid: number; cmdline: string }[] = [];
  private readonly keys = new Set<string>();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly parent: number,
    everyMs: number,
  ) {
    this.timer = setInterval(() => {
      for (const child of childrenOf(this.parent)) {
        const key = `${child.pid} ${child.cmdline}`;
        if (this.keys.has(key)) continue;
        this.keys.add(key);
        this.seen.push({ at: Date.now(), ...child });
      }
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 5. kill -9 in the middle of applies

const EXPECTED_SCRIPTS = new Set(['ifcfg-eth0', 'ifcfg-eth1', 'route-eth1', 'rule-eth1']);
const EXPECTED_SYSCTL = new Set([SYSCTL_DROPIN.split('/').at(-1)!]);

/** What is wrong with the agent's directories in root: unexpected names (temp files), files that are not whole. */
function fileProblems(root: string): string[] {
  const problems: string[] = [];
  for (const [dir, expected] of [
    [NETWORK_SCRIPTS_DIR, EXPECTED_SCRIPTS],
    [SYSCTL_DIR, EXPECTED_SYSCTL],
  ] as const) {
    for (const name of readdirSync(join(root, dir))) {
      if (name.endsWith('.bak') || isBootStandIn(`${dir}/${name}`)) continue;
      if (!expected.has(name)) {
        problems.push(`unexpected ${dir}/${name}`);
        continue;
      }
      const text = readFileSync(join(root, dir, name), 'utf8');
      if (!text.startsWith(MANAGED_MARKER) || !text.endsWith('\n'))
        problems.push(
          `partial ${dir}/${name}: ${JSON.stringify(text.slice(0, 40))}...${JSON.stringify(text.slice(-20))}`,
        );
    }
  }
  try {
    JSON.parse(readFileSync(join(root, STATE_PATH), 'utf8'));
  } catch (error) {
    problems.push(`${STATE_PATH}: ${(error as Error).message}`);
  }
  return problems;
}

describe.skipIf(!labOk)('kill -9 at random moments while the metadata flips every poll', () => {
  const specs = [{ name: 'k', tree: manualTree() }];
  const port = planTopology(specs).guests[0]!.nics[1]!.port;
  const s = scenario(specs);
  let unblock: () => Promise<void> = async () => {};
  s.onCleanup(() => unblock());
  const treeX = (): MetaTree => manualTree();
  const treeY = (): MetaTree =>
    withAddresses(withAddresses(manualTree(), MAC_A1, { '10.0.0.9': addr('203.0.113.14') }, ['10.0.0.8']), MAC_A0, {
      '10.0.0.4': addr('203.0.113.16'),
    });

  it(
    'no partial file, no temp file, and a restart with a fixed tree converges and verifies',
    { timeout: 60_000 },
    async () => {
      let flipping = true;
      let flips = 0;
      const flipper = (async () => {
        while (flipping) {
          await s.lab.updateGuest('k', flips++ % 2 === 0 ? treeY() : treeX());
          await delay(1000);
        }
      })();
      s.onCleanup(async () => {
        flipping = false;
        await flipper.catch(() => undefined);
      });

      // Half the kills at a random moment; the other half a random 0-150 ms after the daemon is seen running a tool
      // (an in-sync poll runs none, so it is then in the middle of an apply: writing files, ip -batch, sysctl, verify).
      const during: string[] = [];
      let kills = 0;
      let applies = 0;
      const end = Date.now() + 20_000;
      for (let i = 0; Date.now() < end; i++) {
        const d = s.start('k', { interval: 1 });
        if (i % 2 === 0) {
          await delay(150 + Math.random() * 2350);
        } else {
          const deadline = Date.now() + 3000;
          while (Date.now() < deadline && childrenOf(d.pid).length === 0) await delay(5);
          await delay(Math.random() * 150);
        }
        const running = childrenOf(d.pid).map((c) => c.cmdline.split(' ').slice(0, 2).join(' '));
        await d.stop('SIGKILL');
        kills++;
        applies += d.count('apply');
        during.push(
          running.length > 0
            ? running.join(' + ')
            : `(no tool running; last event ${d.events.at(-1)?.event ?? 'none'})`,
        );
        expect(d.stray, 'stderr lines that are not JSON (a crash trace, a warning)').toEqual([]);
      }
      flipping = false;
      await flipper;
      const right = fileProblems(s.root('k'));
      const tally = during.reduce<Record<string, number>>((acc, e) => ({ ...acc, [e]: (acc[e] ?? 0) + 1 }), {});
      console.log(
        `kill -9: ${kills} kills, ${applies} applies logged, ${flips} metadata flips; what was running at each kill: ${JSON.stringify(tally)}; ` +
          `files right after the last kill: ${right.length === 0 ? 'no problem' : right.join('; ')}`,
      );
      expect(
        during.filter((k) => !k.startsWith('(')).length,
        'some kills landed in the middle of an apply',
      ).toBeGreaterThan(0);
      expect(right.filter((p) => p.startsWith('partial'))).toEqual([]);

      await s.lab.updateGuest('k', treeX());
      const d = s.start('k', { interval: 1 });
      const converged = await d.waitForEvent(
        'a converge with nothing pending',
        0,
        (e) => isConverge(e) && e.pendingRemovals === 0,
        20_000,
      );
      await d.waitForEvent('a quiet poll', converged.index + 1, (e) => e.event === 'unchanged', 10_000);
      expect(await d.stop('SIGTERM')).toBe(0);
      expect(d.count('rollback') + d.count('apply-error'), d.describe()).toBe(0);

      expect(fileProblems(s.root('k'))).toEqual([]);
      const verify = await s.lab.agent('k', ['verify', '--root', s.root('k')]);
      expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
      // Addresses only the other tree had are left when a kill landed in a verification (see the next test).
      console.log(
        `kill -9: addresses after converging on the fixed tree: ${(await live(s.lab, 'k')).addresses.join(', ')}`,
      );
    },
  );

  it(
    'kill -9 while an apply verifies: what it added is still removed once the metadata drops it',
    { timeout: 40_000 },
    async () => {
      const d = s.start('k', { interval: 1 });
      await d.waitForEvent('in sync', 0, isConverge);
      // Slow verification down: eth1's pings to the gateway go unanswered (3 attempts of 1 s each).
      unblock = await blockGatewayPings(s.lab, port);
      await s.lab.updateGuest('k', treeY());
      await d.waitFor(
        'the apply of the other tree to be verifying',
        async () =>
          (await addresses(s.lab, 'k', 'eth1')).includes('10.0.0.9/24') &&
          childrenOf(d.pid).some((c) => c.cmdline.startsWith('ping ')),
        10_000,
      );
      await d.stop('SIGKILL');
      await unblock();

      await s.lab.updateGuest('k', treeX());
      const again = s.start('k', { interval: 1 });
      const converged = await again.waitForEvent(
        'a converge with nothing pending',
        0,
        (e) => isConverge(e) && e.pendingRemovals === 0,
        20_000,
      );
      await again.waitForEvent('a quiet poll', converged.index + 1, (e) => e.event === 'unchanged', 10_000);
      expect(await again.stop('SIGTERM')).toBe(0);
      const left = (await live(s.lab, 'k')).addresses;
      console.log(
        `kill -9 during verification: addresses after converging on the fixed tree: ${left.join(', ')}; the restarted daemon logged: ${again.events.map((e) => e.event).join(', ')}`,
      );
      expect(
        left.filter((a) => a.endsWith('10.0.0.4/24') || a.endsWith('10.0.0.9/24')),
        'added by the killed apply, then dropped by the metadata',
      ).toEqual([]);
      expect(await rulesFrom(s.lab, 'k', '10.0.0.9')).toEqual([]);
    },
  );
});

// ---------------------------------------------------------------------------------------------------------------
// 6. A quiet minute

/** Wrappers for the tools the agent runs, each logging its argv (one line) and exec'ing the real one. */
function toolWrappers(dir: string, log: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const tool of ['ip', 'ping', 'arping', 'sysctl', 'nft', 'iptables', 'iptables-restore']) {
    const path = join(bin, tool);
    writeFileSync(path, `#!/bin/sh\nprintf '%s\\n' "${tool} $*" >> '${log}'\nexec '${which(tool)}' "$@"\n`);
    chmodSync(path, 0o755);
  }
  return bin;
}

describe.skipIf(!labOk)('60 s in sync: no write, no process but the once-a-minute live-state check', () => {
  const s = scenario([{ name: 'q', tree: manualTree() }]);
  const WINDOW_MS = 60_000;

  it(
    'no file is written and no tool is run while the metadata does not change, but one `ip` and one `nft` read per full metadata read',
    { timeout: WINDOW_MS + 30_000 },
    async () => {
      const log = join(s.dir, 'spawns.log');
      writeFileSync(log, '');
      const bin = toolWrappers(s.dir, log);
      const d = s.start('q', { interval: 1, env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });
      const watcher = new ChildWatcher(d.pid, 20);
      s.onCleanup(() => watcher.stop());
      const { index } = await d.waitForEvent('the first apply', 0, (e) => e.event === 'apply');
      // Read once the daemon logs: right after the spawn the pid can still be `ip netns exec`, not yet node.
      const daemonCmdline = readFileSync(`/proc/${d.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      await d.waitForEvent('a quiet poll', index + 1, (e) => e.event === 'unchanged');
      await delay(1500); // the gratuitous ARPs run detached after the apply
      const seenAtStart = watcher.seen.length;
      const logAtStart = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      const before = mtimes(s.root('q'));
      const events = d.events.length;
      const startedAt = Date.now();

      await delay(WINDOW_MS);

      watcher.stop();
      const window = watcher.seen.slice(seenAtStart);
      const logged = readFileSync(log, 'utf8').split('\n').filter(Boolean).slice(logAtStart.length);
      const quiet = d.events.slice(events);
      console.log(
        `quiet minute: ${quiet.filter((e) => e.event === 'unchanged').length} quiet polls in ${Date.now() - startedAt} ms; ` +
          `children seen by /proc polling every 20 ms: ${window.length} in the window (${seenAtStart} during start-up, e.g. ${JSON.stringify(watcher.seen.slice(0, 3).map((c) => c.cmdline))}); ` +
          `tool wrappers: ${logged.length} runs in the window (${logAtStart.length} during start-up: ${JSON.stringify([...new Set(logAtStart.map((l) => l.split(' ').slice(0, 2).join(' ')))])})`,
      );
      expect(seenAtStart, 'the /proc watcher sees the start-up apply').toBeGreaterThan(0);
      expect(logAtStart.some((l) => l.startsWith('ip -batch'))).toBe(true);
      expect(quiet.map((e) => e.event).filter((e) => e !== 'unchanged')).toEqual([]);
      expect(quiet.length).toBeGreaterThanOrEqual(WINDOW_MS / 1000 / 1.1 - 2);
      expect(mtimes(s.root('q'))).toEqual(before);
      // No `ip` that changes anything (`-j` reads aside).
      expect(
        window.filter(
          (c) => /(^|\/)ip\b.*\b(batch|add|del|replace|flush)\b/.test(c.cmdline) && !/ -j /.test(c.cmdline),
        ),
      ).toEqual([]);
      expect(logged.filter((l) => /^ip\b.*\b(batch|add|del|replace|flush)\b/.test(l) && !/ -j /.test(l))).toEqual([]);
      // The safety net under the `ip monitor` watch: one read of the live state with each full metadata read (every 60 s),
      // the agent's nftables table with it.
      const reads = ['ip -j -d -batch -', 'nft list table inet eip-agent'];
      expect(
        logged.every((l) => reads.includes(l)),
        logged.join('\n'),
      ).toBe(true);
      expect(logged.length).toBeLessThanOrEqual(4);
      // A child the watcher saw but that exited before its cmdline was read, or that it caught between fork and exec (it
      // still shows the daemon's own cmdline), is one the wrappers logged (a wrapper and the tool it execs are one process,
      // seen up to three times).
      expect(new Set(window.map((c) => c.pid)).size, JSON.stringify(window)).toBeLessThanOrEqual(logged.length);
      const known = (c: { cmdline: string }): boolean =>
        c.cmdline === '(exited)' ||
        c.cmdline === daemonCmdline ||
        /(^|\/)(ip -j -d -batch -|nft list table inet eip-agent)$/.test(c.cmdline);
      expect(window.every(known), JSON.stringify(window)).toBe(true);
    },
  );
});
