// The daemon in the emulated VPC: two guests each run `eip-agent run`; the cloud moves an EIP and its
// private IP from A to B and both daemons follow on their own, while in-sync polls touch nothing.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_PATH } from '../../src/plan/lock.js';
import { manualTree, movedAddress } from '../lab/fixtures.js';
import { labOk, requireLab } from '../lab/guard.js';
import { startLab, type Lab } from '../lab/vpc.js';
import { Daemon, addresses, mtimes, serverAWithout8, serverB } from './daemon-process.js';

requireLab('eip-agent run in the emulated VPC');

const TEXTFILE = '/var/lib/node_exporter/textfile_collector/eip_agent.prom';

describe.skipIf(!labOk)('eip-agent run in the emulated VPC', () => {
  let lab: Lab;
  let a: Daemon;
  let b: Daemon;
  const dir = mkdtempSync(join(tmpdir(), 'eip-run-lab-'));
  const config = join(dir, 'config.json');

  beforeAll(async () => {
    writeFileSync(config, JSON.stringify({ metricsTextfile: TEXTFILE }));
    lab = await startLab([
      { name: 'a', tree: manualTree() },
      { name: 'b', tree: serverB() },
    ]);
    a = new Daemon(lab, 'a', config);
    b = new Daemon(lab, 'b', config);
  });
  afterAll(async () => {
    for (const d of [a, b]) d?.signal('SIGKILL');
    await Promise.all([a?.exited, b?.exited]);
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('each daemon converges its guest at start; the EIPs answer', async () => {
    await a.waitFor('A to apply', () => a.count('apply') === 1);
    await b.waitFor('B to converge', () => b.count('apply') + b.count('in-sync') === 1);
    for (const eip of ['203.0.113.10', '203.0.113.11', '203.0.113.12', '203.0.113.13'])
      expect(await lab.pingFromInternet(eip), eip).toBe(true);
    const metrics = readFileSync(join(lab.guestRoot('a'), TEXTFILE), 'utf8');
    expect(metrics).toMatch(/^eip_agent_applies_total 1$/m);
    expect(metrics).toContain(
      'eip_agent_address_configured{interface="eth1",mac="20:90:6f:f7:93:2e",address="10.0.0.8",kind="private",eip="203.0.113.13",eip_mode="NAT"} 1',
    );
  });

  it('in sync: polls go on, and no file is written', async () => {
    const before = mtimes(lab.guestRoot('a'));
    const polls = a.count('unchanged');
    await a.waitFor('three quiet polls', () => a.count('unchanged') >= polls + 3);
    expect(mtimes(lab.guestRoot('a'))).toEqual(before);
    expect(a.count('apply')).toBe(1);
  });

  it('a second agent is refused while the daemon holds the lock, naming its pid', async () => {
    const apply = await lab.agent('a', ['apply', '--root', lab.guestRoot('a')]);
    expect(apply.exitCode).toBe(1);
    expect(apply.stderr).toBe(
      `eip-agent: host: another eip-agent is running: pid ${a.pid} holds the lock ${join(lab.guestRoot('a'), LOCK_PATH)}; wait for it to finish (or \`systemctl stop eip-agent\` if it is the service)\n`,
    );
  });

  it('the cloud moves 10.0.0.8 and its EIP from A to B: B adds it, A removes it on the read after, the EIP answers from B', async () => {
    const seen = a.events.length;
    await lab.updateGuest('a', serverAWithout8());
    await lab.updateGuest('b', serverB(movedAddress()));
    await b.waitFor('B to add 10.0.0.8', () =>
      b.events.some((e) => e.event === 'apply' && e.runtimeApplied?.includes('add 10.0.0.8/24 to eth0')),
    );
    await a.waitFor('A to drop 10.0.0.8', async () => !(await addresses(lab, 'a', 'eth1')).includes('10.0.0.8/24'));
    const applies = a.events.slice(seen).filter((e) => e.event === 'apply' || e.event === 'in-sync');
    expect(
      applies[0]?.pendingRemovals,
      `the first read after the change only marks it: ${JSON.stringify(applies)}`,
    ).toBeGreaterThan(0);
    await a.waitFor('A to rest', () => a.events.at(-1)?.event === 'unchanged');
    expect(
      a.events
        .slice(seen)
        .filter((e) => e.event === 'apply' || e.event === 'in-sync')
        .at(-1)?.pendingRemovals,
    ).toBe(0);
    expect(await addresses(lab, 'a', 'eth1')).toEqual(['10.0.0.7/24']);
    expect(await addresses(lab, 'b', 'eth0')).toEqual(['10.0.0.20/24', '10.0.0.8/24']);
    expect(await lab.pingFromInternet('203.0.113.13')).toBe(true);
    expect(await lab.pingFromInternet('203.0.113.12')).toBe(true);
  });

  it('SIGHUP reloads the config; SIGTERM stops cleanly and releases the lock', async () => {
    a.signal('SIGHUP');
    await a.waitFor('the reload', () => a.count('reload') === 1);
    a.signal('SIGTERM');
    b.signal('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
    expect(a.events.at(-1)).toMatchObject({ event: 'stop', msg: 'stopped (SIGTERM)' });
    expect(existsSync(join(lab.guestRoot('a'), LOCK_PATH))).toBe(false);
    const apply = await lab.agent('a', ['apply', '--root', lab.guestRoot('a')]);
    expect(apply.exitCode, apply.stderr).toBe(0);
  });
});
