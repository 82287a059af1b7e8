// The daemon repairs drift in the emulated VPC: what a network restart, an NM reapply or a hand-typed `ip` command
// takes away from what the agent manages comes back within the interval (the `ip monitor` watch), while a user's
// change to what the agent does not own is left alone. And the kernel's rule that deleting a subnet's primary
// address deletes its secondaries never costs an address the metadata or a user still wants.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualTree, treeWith8AsPrimary } from '../lab/fixtures.js';
import { labOk, requireLab } from '../lab/guard.js';
import { startLab, type Lab } from '../lab/vpc.js';
import { Daemon, addresses } from './daemon-process.js';
import { FULL_READ_MS } from '../../src/daemon/read-schedule.js';

requireLab('drift repair by eip-agent run in the emulated VPC');

const INTERVAL_S = 3;
const BOUND_MS = (INTERVAL_S + 2) * 1000;

async function rules(lab: Lab): Promise<string[]> {
  const result = await lab.exec(lab.guestNs('g'), ['ip', '-j', 'rule']);
  return (JSON.parse(result.stdout) as { src?: string; dst?: string; dstlen?: number; table: string }[])
    .filter((r) => r.src !== undefined && r.src !== 'all')
    .map((r) => `${r.src}${r.dst !== undefined ? ` to ${r.dst}/${r.dstlen ?? 32}` : ''} ${r.table}`);
}

describe.skipIf(!labOk)('eip-agent run repairs drift of what it manages', () => {
  let lab: Lab;
  let d: Daemon;
  const dir = mkdtempSync(join(tmpdir(), 'eip-drift-lab-'));
  const config = join(dir, 'config.json');
  const ip = (...args: string[]) => lab.exec(lab.guestNs('g'), ['ip', ...args]);

  beforeAll(async () => {
    writeFileSync(config, '{}');
    lab = await startLab([{ name: 'g', tree: manualTree() }]);
    d = new Daemon(lab, 'g', config, { interval: INTERVAL_S });
    await d.waitFor('the first apply', () => d.count('apply') === 1);
  });
  afterAll(async () => {
    d?.signal('SIGKILL');
    await d?.exited;
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it("`ip addr flush dev eth1` is repaired within the interval + 2 s, and eth1's EIPs answer again", async () => {
    const from = d.events.length;
    const started = Date.now();
    expect((await ip('address', 'flush', 'dev', 'eth1')).exitCode).toBe(0);
    expect(await addresses(lab, 'g', 'eth1')).toEqual([]);
    const { event } = await d.waitForEvent('the repair', from, (e) => e.event === 'repair', BOUND_MS);
    const repairedMs = Date.now() - started;
    console.log(`flush of eth1 repaired in ${repairedMs} ms (interval ${INTERVAL_S} s)`);
    expect(repairedMs).toBeLessThan(BOUND_MS);
    expect(event.runtimeApplied).toEqual(
      expect.arrayContaining(['add 10.0.0.7/24 to eth1', 'add 10.0.0.8/24 to eth1']),
    );
    expect(await addresses(lab, 'g', 'eth1')).toEqual(['10.0.0.7/24', '10.0.0.8/24']);
    for (const eip of ['203.0.113.12', '203.0.113.13']) expect(await lab.pingFromInternet(eip), eip).toBe(true);
  });

  it('a deleted policy rule is repaired within the interval + 2 s', async () => {
    await d.waitFor('the daemon to rest', () => d.events.at(-1)?.event === 'unchanged', BOUND_MS * 2);
    const from = d.events.length;
    const started = Date.now();
    expect((await ip('rule', 'del', 'from', '10.0.0.7', 'table', '10001', 'priority', '30001')).exitCode).toBe(0);
    const { event } = await d.waitForEvent('the repair', from, (e) => e.event === 'repair', BOUND_MS);
    console.log(`deleted rule repaired in ${Date.now() - started} ms`);
    expect(event.runtimeApplied).toEqual(['rule from 10.0.0.7/32 table 10001 priority 30001']);
    expect((await rules(lab)).sort()).toEqual([
      '10.0.0.7 10001',
      '10.0.0.7 to 10.0.0.0/24 10001',
      '10.0.0.8 10001',
      '10.0.0.8 to 10.0.0.0/24 10001',
    ]);
    expect(await lab.pingFromInternet('203.0.113.12')).toBe(true);
  });

  it("a deleted main rule (main's own routes first) is repaired within the interval + 2 s", async () => {
    await d.waitFor('the daemon to rest', () => d.events.at(-1)?.event === 'unchanged', BOUND_MS * 2);
    const from = d.events.length;
    expect((await ip('rule', 'del', 'priority', '30000')).exitCode).toBe(0);
    const { event } = await d.waitForEvent('the repair', from, (e) => e.event === 'repair', BOUND_MS);
    expect(event.runtimeApplied).toEqual(['rule from all table 254 suppress_prefixlength 0 priority 30000']);
    expect((await ip('rule', 'show', 'priority', '30000')).stdout.trim()).toBe(
      '30000:\tfrom all lookup main suppress_prefixlength 0',
    );
  });

  it(
    "a flushed nftables ruleset (a firewall restart) gets the agent's table back at the next full read",
    { timeout: FULL_READ_MS + BOUND_MS * 3 },
    async () => {
      await d.waitFor('the daemon to rest', () => d.events.at(-1)?.event === 'unchanged', BOUND_MS * 2);
      const nft = (...args: string[]) => lab.exec(lab.guestNs('g'), ['nft', ...args]);
      expect((await nft('list', 'table', 'inet', 'eip-agent')).exitCode).toBe(0);
      const from = d.events.length;
      const started = Date.now();
      expect((await nft('flush', 'ruleset')).exitCode).toBe(0);
      // `ip monitor` does not see nftables: the live state compared at each full read (at most FULL_READ_MS apart) does.
      const { event } = await d.waitForEvent(
        'the repair',
        from,
        (e) => e.event === 'repair' || e.event === 'apply',
        FULL_READ_MS + BOUND_MS,
      );
      console.log(`flushed ruleset repaired in ${Date.now() - started} ms`);
      expect(event.runtimeApplied).toEqual([
        'nftables table inet eip-agent: mark 0x1000000/0xf000000 on connections to 10.0.0.7, 10.0.0.8',
      ]);
      expect((await nft('list', 'table', 'inet', 'eip-agent')).stdout).toContain(
        'comment "eip-agent new 10.0.0.8 0x01000000"',
      );
    },
  );

  it('a user adding and deleting an address of their own causes no action', async () => {
    await d.waitFor('the daemon to rest', () => d.events.at(-1)?.event === 'unchanged', BOUND_MS * 2);
    const from = d.events.length;
    expect((await ip('address', 'add', '10.0.0.98/24', 'dev', 'eth1')).exitCode).toBe(0);
    await delay(500);
    expect((await ip('address', 'del', '10.0.0.98/24', 'dev', 'eth1')).exitCode).toBe(0);
    await delay(BOUND_MS);
    const acted = d.events.slice(from).filter((e) => e.event !== 'unchanged');
    expect(acted, d.describe()).toEqual([]);
    // It did look (the watch saw eth1 change), and found nothing to do.
    expect(d.events.slice(from).some((e) => e.event === 'unchanged' && e.msg.startsWith('live state checked'))).toBe(
      true,
    );
    expect(await addresses(lab, 'g', 'eth1')).toEqual(['10.0.0.7/24', '10.0.0.8/24']);
  });

  it("the metadata makes 10.0.0.8 eth1's primary and drops 10.0.0.7: 10.0.0.8 and a user's 10.0.0.99 stay, verified", async () => {
    expect((await ip('address', 'add', '10.0.0.99/24', 'dev', 'eth1')).exitCode).toBe(0);
    await delay(1000);
    const from = d.events.length;
    await lab.updateGuest('g', treeWith8AsPrimary());
    await d.waitForEvent(
      'the removal of 10.0.0.7',
      from,
      (e) => e.event === 'apply' && (e.runtimeApplied ?? []).some((c) => c.startsWith('remove 10.0.0.7/24')),
      30_000,
    );
    await d.waitFor('the daemon to rest', () => d.events.at(-1)?.event === 'unchanged', BOUND_MS * 2);
    expect(
      d.events.slice(from).filter((e) => e.event === 'rollback' || e.event === 'apply-error'),
      d.describe(),
    ).toEqual([]);
    expect(await addresses(lab, 'g', 'eth1')).toEqual(['10.0.0.8/24', '10.0.0.99/24']);
    expect(await rules(lab)).toEqual(['10.0.0.8 to 10.0.0.0/24 10001', '10.0.0.8 10001']);
    expect(await lab.pingFromInternet('203.0.113.13')).toBe(true);
  });
});
