// The product in the emulated VPC: `eip-agent apply` run inside a real guest namespace makes every
// EIP answer from the internet, and `plan`/`verify` tell the truth before and after.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlEmulator } from '../../src/sandbox/emulator.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { manualTree, threeNicTree } from './fixtures.js';
import { labOk, requireLab } from './guard.js';
import { isBootStandIn } from '../../src/sandbox/guest-root.js';
import { startLab, type Lab } from './vpc.js';
import { agentCommand } from './agent-command.js';

requireLab('eip-agent in the emulated VPC');

/** IPv4 addresses per interface in a namespace, as `ip -j address` reports them. */
async function addresses(lab: Lab, ns: string): Promise<Record<string, string[]>> {
  const result = await lab.exec(ns, ['ip', '-j', 'address']);
  expect(result.exitCode, result.stderr).toBe(0);
  const links = JSON.parse(result.stdout) as {
    ifname: string;
    addr_info: { family: string; local: string; prefixlen: number }[];
  }[];
  return Object.fromEntries(
    links.map((l) => [
      l.ifname,
      l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    ]),
  );
}

/** Every file under dir, relative path -> content. */
function filesUnder(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, prefix))) {
    const rel = join(prefix, name);
    if (isBootStandIn(rel)) continue;
    if (statSync(join(dir, rel)).isDirectory()) Object.assign(out, filesUnder(dir, rel));
    else out[`/${rel}`] = readFileSync(join(dir, rel), 'utf8');
  }
  return out;
}

/** The guest's configuration files (under /etc): what the golden files describe. The agent's own state lives elsewhere. */
function etcFiles(root: string): Record<string, string> {
  return Object.fromEntries(Object.entries(filesUnder(root)).filter(([path]) => path.startsWith('/etc/')));
}

function mtimes(dir: string): Record<string, number> {
  return Object.fromEntries(Object.keys(filesUnder(dir)).map((rel) => [rel, statSync(join(dir, rel)).mtimeMs]));
}

/** The golden files of the renderer for a fixture and mode: the lab must write exactly these. */
function golden(fixture: string, routing: string): Record<string, string> {
  return filesUnder(new URL(`../render/__golden__/${fixture}/${routing}`, import.meta.url).pathname);
}

async function pingAll(lab: Lab, eips: string[]): Promise<Record<string, boolean>> {
  return Object.fromEntries(
    await Promise.all(eips.map(async (eip) => [eip, await lab.pingFromInternet(eip)] as const)),
  );
}

describe.skipIf(!labOk)('the manual example in the emulated VPC (policy routing, the default)', () => {
  let lab: Lab;
  const eips = ['203.0.113.10', '203.0.113.11', '203.0.113.12', '203.0.113.13'];

  beforeAll(async () => {
    lab = await startLab([{ name: 'a', tree: manualTree() }]);
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('before apply: only the primary IP answers; the secondary NIC EIPs do not', async () => {
    expect(await pingAll(lab, eips)).toEqual({
      '203.0.113.10': true,
      '203.0.113.11': false,
      '203.0.113.12': false,
      '203.0.113.13': false,
    });
  });

  it('plan lists the work, writes nothing and exits 2; verify says not as desired (3)', async () => {
    const plan = await lab.agent('a', ['plan', '--root', lab.guestRoot('a')]);
    expect(plan.exitCode, plan.stderr).toBe(2);
    expect(plan.stdout).toContain('+ add 10.0.0.8/24 to eth1');
    expect(plan.stdout).toContain('+ rule from 10.0.0.8/32 table 10001 priority 30001');
    expect(filesUnder(lab.guestRoot('a'))).toEqual({});
    const verify = await lab.agent('a', ['verify', '--root', lab.guestRoot('a')]);
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(3);
  });

  it('apply configures every address, writes the golden files and verifies (exit 0)', async () => {
    const userAdded = await lab.exec(lab.guestNs('a'), ['ip', 'address', 'add', '10.0.0.99/24', 'dev', 'eth0']);
    expect(userAdded.exitCode).toBe(0);
    const apply = await lab.agent('a', ['apply', '--root', lab.guestRoot('a')]);
    expect(apply.exitCode, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toContain('Verified: all');
    const live = await addresses(lab, lab.guestNs('a'));
    expect(live.eth0).toEqual(['10.0.0.2/24', '10.0.0.99/24', '10.0.0.3/24']);
    expect(live.eth1).toEqual(['10.0.0.7/24', '10.0.0.8/24']);
    expect(etcFiles(lab.guestRoot('a'))).toEqual(golden('manual', 'policy'));
  });

  it('after apply: every EIP answers from the internet', async () => {
    expect(await pingAll(lab, eips)).toEqual(Object.fromEntries(eips.map((e) => [e, true])));
  });

  it('in sync: plan exits 0, verify exits 0, a second apply writes nothing and changes nothing', async () => {
    const before = mtimes(lab.guestRoot('a'));
    const plan = await lab.agent('a', ['plan', '--root', lab.guestRoot('a')]);
    expect(plan.exitCode, plan.stdout).toBe(0);
    expect(plan.stdout).toContain('In sync: nothing to do.');
    const verify = await lab.agent('a', ['verify', '--json', '--root', lab.guestRoot('a')]);
    expect(verify.exitCode, verify.stdout).toBe(0);
    const report = JSON.parse(verify.stdout) as { ok: boolean; checks: { kind: string; ok: boolean }[] };
    expect(report.ok).toBe(true);
    expect(report.checks.filter((c) => c.kind === 'ping')).toHaveLength(4);
    const again = await lab.agent('a', ['apply', '--json', '--root', lab.guestRoot('a')]);
    expect(again.exitCode, again.stderr).toBe(0);
    const result = JSON.parse(again.stdout) as { filesWritten: string[]; runtimeApplied: string[] };
    expect(result.filesWritten).toEqual([]);
    expect(result.runtimeApplied).toEqual([]);
    expect(mtimes(lab.guestRoot('a'))).toEqual(before);
  });

  it('bad metadata: one line on stderr, exit 1, nothing written and nothing changed', async () => {
    const liveBefore = await addresses(lab, lab.guestNs('a'));
    const filesBefore = filesUnder(lab.guestRoot('a'));
    const bad = manualTree();
    const nic = ((bad.network as MetaTree).interfaces as MetaTree).macs as MetaTree;
    const ips = (nic['20:90:6F:F7:93:2E'] as MetaTree)['local-ipv4s'] as MetaTree;
    (ips['10.0.0.8'] as MetaTree)['subnet-mask'] = '255.255.255.0\nIPADDR9=$(reboot)';
    await controlEmulator(lab.metadataControlSocket('a'), 'PUT', '/tree', bad);
    const apply = await lab.agent('a', ['apply', '--root', lab.guestRoot('a')]);
    expect(apply.exitCode).toBe(1);
    expect(apply.stderr.trimEnd().split('\n')).toEqual([
      'eip-agent: validation: network/interfaces/macs/20:90:6F:F7:93:2E/local-ipv4s/10.0.0.8/subnet-mask: "255.255.255.0\\nIPADDR9=$(reboot)" is not a valid IPv4 address',
    ]);
    expect(await addresses(lab, lab.guestNs('a'))).toEqual(liveBefore);
    expect(filesUnder(lab.guestRoot('a'))).toEqual(filesBefore);
    await controlEmulator(lab.metadataControlSocket('a'), 'PUT', '/tree', manualTree());
  });
});

describe.skipIf(!labOk)('--routing rp-filter in the emulated VPC', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await startLab([{ name: 'r', tree: manualTree() }]);
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it("writes the manual's files (apply --no-runtime)", async () => {
    const apply = await lab.agent('r', [
      'apply',
      '--no-runtime',
      '--routing',
      'rp-filter',
      '--root',
      lab.guestRoot('r'),
    ]);
    expect(apply.exitCode, apply.stderr).toBe(0);
    expect(etcFiles(lab.guestRoot('r'))).toEqual(golden('manual', 'rp-filter'));
  });

  it('cannot work behind per-port anti-spoofing: verification fails and every change is rolled back (exit 3)', async () => {
    const root = lab.guestRoot('r');
    const filesBefore = etcFiles(root);
    const liveBefore = await addresses(lab, lab.guestNs('r'));
    const apply = await lab.agent('r', ['apply', '--routing', 'rp-filter', '--root', root]);
    expect(apply.exitCode, apply.stdout + apply.stderr).toBe(3);
    // Replies from eth1's addresses leave through eth0 and the VPC drops them.
    expect(apply.stdout).toMatch(/FAIL ping +10\.0\.0\.1 from 10\.0\.0\.8 \(eth1\)/);
    expect(apply.stdout).toMatch(/ok {3}ping +10\.0\.0\.1 from 10\.0\.0\.2 \(eth0\)/);
    expect(apply.stderr).toContain('rolled back');
    expect(await addresses(lab, lab.guestNs('r'))).toEqual(liveBefore);
    expect(etcFiles(root)).toEqual(filesBefore);
    expect(await lab.pingFromInternet('203.0.113.10')).toBe(true);
  });
});

describe.skipIf(!labOk)('three NICs in three subnets (a /20, a direct EIP) in the emulated VPC', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await startLab([{ name: 't', tree: threeNicTree() }]);
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('apply, started with an empty environment as cron or `env -i` does (no PATH), makes the NAT and the direct EIP answer and verifies', async () => {
    expect(await lab.pingFromInternet('203.0.113.21', 1)).toBe(false);
    // No PATH at all: the agent must still find `ip`, `sysctl` (in an sbin directory) and `ping`.
    const apply = await lab.exec(
      lab.guestNs('t'),
      ['env', '-i', ...agentCommand(), 'apply', '--root', lab.guestRoot('t')],
      { timeoutMs: 60_000 },
    );
    expect(apply.exitCode, apply.stdout + apply.stderr).toBe(0);
    const live = await addresses(lab, lab.guestNs('t'));
    expect(live.eth0).toEqual(['10.1.3.4/20', '10.1.15.200/20']);
    expect(live.eth1).toEqual(['10.1.16.5/24', '203.0.113.21/32']);
    expect(live.eth2).toEqual(['172.16.5.10/24']);
    expect(await pingAll(lab, ['203.0.113.20', '203.0.113.21'])).toEqual({
      '203.0.113.20': true,
      '203.0.113.21': true,
    });
    expect(etcFiles(lab.guestRoot('t'))).toEqual(golden('three-nic', 'policy'));
    const rules = await lab.exec(lab.guestNs('t'), ['ip', '-j', 'rule']);
    const tables = (JSON.parse(rules.stdout) as { src?: string; table: string }[]).filter((r) =>
      r.table.startsWith('100'),
    );
    // Each NIC's own subnet first (29000 + n), main's routes but its default (30000), then the rest (30000 + n); with
    // each, the replies of the NIC's connections by their mark.
    expect(tables).toEqual([
      expect.objectContaining({ priority: 29001, src: '10.1.16.5', dst: '10.1.16.0', dstlen: 24, table: '10001' }),
      expect.objectContaining({ priority: 29001, src: '203.0.113.21', dst: '10.1.16.0', dstlen: 24, table: '10001' }),
      expect.objectContaining({
        priority: 29001,
        src: 'all',
        dst: '10.1.16.0',
        dstlen: 24,
        fwmark: '0x1000000',
        fwmask: '0xf000000',
        table: '10001',
      }),
      expect.objectContaining({ priority: 29002, src: '172.16.5.10', dst: '172.16.5.0', dstlen: 24, table: '10002' }),
      expect.objectContaining({
        priority: 29002,
        src: 'all',
        dst: '172.16.5.0',
        dstlen: 24,
        fwmark: '0x2000000',
        fwmask: '0xf000000',
        table: '10002',
      }),
      expect.objectContaining({ priority: 30001, src: '10.1.16.5', table: '10001' }),
      expect.objectContaining({ priority: 30001, src: '203.0.113.21', table: '10001' }),
      expect.objectContaining({
        priority: 30001,
        src: 'all',
        fwmark: '0x1000000',
        fwmask: '0xf000000',
        table: '10001',
      }),
      expect.objectContaining({ priority: 30002, src: '172.16.5.10', table: '10002' }),
      expect.objectContaining({
        priority: 30002,
        src: 'all',
        fwmark: '0x2000000',
        fwmask: '0xf000000',
        table: '10002',
      }),
    ]);
    expect((JSON.parse(rules.stdout) as { priority: number }[]).find((r) => r.priority === 30000)).toEqual({
      priority: 30000,
      src: 'all',
      table: 'main',
      suppress_prefixlen: 0,
    });
  });

  it("a boot keeps the main default route on eth0: no secondary NIC's file lets ifup-eth replace it", async () => {
    // What initscripts' ifup-eth does at boot with each ifcfg (emulated: no initscripts here): with GATEWAY= and
    // without DEFROUTE=no, `ip route replace default via $GATEWAY dev $DEVICE`.
    const dir = join(lab.guestRoot('t'), 'etc/sysconfig/network-scripts');
    for (const name of readdirSync(dir)
      .filter((n) => /^ifcfg-eth\d+$/.test(n))
      .sort()) {
      const text = readFileSync(join(dir, name), 'utf8');
      const gateway = /^GATEWAY=(.*)$/m.exec(text)?.[1];
      if (gateway === undefined || /^DEFROUTE=no$/m.test(text)) continue;
      const replaced = await lab.exec(lab.guestNs('t'), [
        'ip',
        'route',
        'replace',
        'default',
        'via',
        gateway,
        'dev',
        name.slice('ifcfg-'.length),
      ]);
      expect(replaced.exitCode, replaced.stderr).toBe(0);
    }
    const verify = await lab.agent('t', ['verify', '--root', lab.guestRoot('t')]);
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/ok +route +default via 10\.1\.0\.1 dev eth0 \(main table\)/);
    expect(await lab.pingFromInternet('203.0.113.20')).toBe(true);
  });

  it("a main default route moved to eth2 (what files without DEFROUTE=no did at boot) cuts eth0's EIP off, and verify says so", async () => {
    expect(
      (await lab.exec(lab.guestNs('t'), ['ip', 'route', 'replace', 'default', 'via', '172.16.5.1', 'dev', 'eth2']))
        .exitCode,
    ).toBe(0);
    expect(await lab.pingFromInternet('203.0.113.20', 2)).toBe(false);
    const verify = await lab.agent('t', ['verify', '--root', lab.guestRoot('t')]);
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(3);
    expect(verify.stdout).toMatch(
      /FAIL +route +default via 10\.1\.0\.1 dev eth0 \(main table\) — the main table's default route is via 172\.16\.5\.1 dev eth2/,
    );
    expect(
      (await lab.exec(lab.guestNs('t'), ['ip', 'route', 'replace', 'default', 'via', '10.1.0.1', 'dev', 'eth0']))
        .exitCode,
    ).toBe(0);
    expect(await lab.pingFromInternet('203.0.113.20')).toBe(true);
  });
});
