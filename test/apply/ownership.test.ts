// Ownership end to end: what the agent added is recorded in its state file, removed only after two successful
// reads agree it is gone from the metadata, and undone by `rollback` (last apply) or `rollback --original`.
import { beforeEach, describe, expect, it } from 'vitest';
import { planChanges } from '../../src/plan/plan.js';
import { liveComments } from '../../src/targets/linux/marks.js';
import { rollbackLast, rollbackOriginal } from '../../src/targets/linux/rollback.js';
import type { AgentState } from '../../src/plan/record.js';
import { STATE_PATH, emptyState, saveState } from '../../src/plan/record.js';
import { AgentError, HostError, MetadataError } from '../../src/errors.js';
import type { Host } from '../../src/host/host.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import type { ApplyResult } from '../../src/pipeline.js';
import { applyAndVerify, makePlan } from '../../src/pipeline.js';
import type { KernelState } from '../helpers/fake-kernel.js';
import { FakeKernel, procSysPath, readSysctl } from '../helpers/fake-kernel.js';
import { createTestHost, vol } from '../helpers/host.js';
import {
  MANUAL_MARKS,
  RULE_UNDO,
  MANUAL_NFT_TABLE,
  CLOUD_INIT_ETH0,
  MAC0,
  MAC1,
  NIC0_PATH,
  NIC1_PATH,
  NOW,
  POLICY_FILES,
  SCRIPTS,
  SYSCTL_DROPIN,
  editTree,
  freshKernel,
  guestFiles,
  freshOriginals,
  manualOwned,
  manualState,
  treeWithDirectEip,
  treeWithout8,
  treeWithoutEth1,
  GUEST_OPTIONS,
} from '../helpers/manual-guest.js';
import { manualTree } from '../lab/fixtures.js';

const OPTIONS = GUEST_OPTIONS;

const ETH0 = `${SCRIPTS}/ifcfg-eth0`;
const ETH1 = `${SCRIPTS}/ifcfg-eth1`;
const ROUTE1 = `${SCRIPTS}/route-eth1`;
const RULE1 = `${SCRIPTS}/rule-eth1`;
const A8 = `address 10.0.0.8/24 ${MAC1}`;
const R8 = 'rule 10.0.0.8 10001';
const R8_SUBNET = 'rule 10.0.0.8 10001 to 10.0.0.0/24';
const DEL_8 =
  'rule del from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001\nrule del from 10.0.0.8/32 table 10001 priority 30001\naddress del 10.0.0.8/24 dev eth1\n';
const PENDING_8 = [
  'remove 10.0.0.8/24 from eth1',
  'remove rule from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
  'remove rule from 10.0.0.8/32 table 10001 priority 30001',
  'stop marking connections to 10.0.0.8',
];
const M8 = 'mark 10.0.0.8 0x1000000';

interface Guest {
  kernel: FakeKernel;
  host: Host;
}

function guest(state: KernelState = freshKernel(), privileged = true): Guest {
  const kernel = new FakeKernel(state);
  return { kernel, host: createTestHost({ run: kernel.run, isPrivileged: () => privileged, now: () => NOW }) };
}

/** Serves `tree` as the metadata, then applies it. */
async function applyTree(host: Host, tree: MetaTree): Promise<ApplyResult> {
  vol.writeFileSync('/meta.json', JSON.stringify(tree));
  return applyAndVerify(host, OPTIONS);
}

function batches(kernel: FakeKernel): string[] {
  return kernel.callsOf('ip', '-batch', '-').map((c) => c.input ?? '');
}

function readState(): AgentState {
  return JSON.parse(String(vol.readFileSync(STATE_PATH, 'utf8'))) as AgentState;
}

/** Every file except the metadata and the state file. */
function guestDisk(): Record<string, string | null> {
  const { '/meta.json': _meta, [STATE_PATH]: _state, ...rest } = vol.toJSON();
  return rest;
}

function link(kernel: FakeKernel, name: string): KernelState['links'][number] {
  const found = kernel.state.links.find((l) => l.ifname === name);
  if (found === undefined) throw new Error(`no ${name}`);
  return found;
}

/** The manual tree with one more address on eth1. */
function treeWith9(): MetaTree {
  return editTree(manualTree(), `${NIC1_PATH}/local-ipv4s/10.0.0.9`, {
    gateway: '10.0.0.1',
    'subnet-mask': '255.255.255.0',
  });
}

/** The manual tree in which eth0's only address is 10.0.0.3 (10.0.0.2 absent). */
function treeWithout2(): MetaTree {
  let tree = editTree(manualTree(), `${NIC0_PATH}/local-ipv4s/10.0.0.2`);
  tree = editTree(tree, `${NIC0_PATH}/primary-local-ipv4`, '10.0.0.3');
  return editTree(tree, 'local-ipv4', '10.0.0.3');
}

/** The files of a fresh guest, without the metadata. */
function freshDisk(): Record<string, string | null> {
  const { '/meta.json': _meta, ...rest } = guestFiles();
  return rest;
}

/** The files of the manual guest once converged (before any removal), without the metadata. */
function convergedDisk(): Record<string, string | null> {
  return {
    ...freshDisk(),
    ...POLICY_FILES,
    [`${ETH0}.bak`]: CLOUD_INIT_ETH0,
    [procSysPath('net.ipv4.conf.default.rp_filter')]: '2\n',
    [procSysPath('net.ipv4.conf.eth1.rp_filter')]: '2\n',
    [procSysPath('net.ipv4.conf.eth0.promote_secondaries')]: '1\n',
    [procSysPath('net.ipv4.conf.eth1.promote_secondaries')]: '1\n',
  };
}

/** Detaches eth1's ENI: the link, its addresses, its routes and its sysctls go; policy rules stay. */
function detachEth1(kernel: FakeKernel): void {
  kernel.state.links = kernel.state.links.filter((l) => l.ifname !== 'eth1');
  kernel.state.routes = kernel.state.routes.filter((r) => r.dev !== 'eth1');
  vol.rmSync('/proc/sys/net/ipv4/conf/eth1', { recursive: true });
}

beforeEach(() => {
  vol.reset();
  vol.fromJSON(guestFiles());
});

describe('an address the metadata no longer lists', () => {
  it.each<[string, () => MetaTree, () => MetaTree, string, string, string[]]>([
    ['10.0.0.8 unassigned from eth1', manualTree, treeWithout8, '10.0.0.8', DEL_8, PENDING_8],
    [
      'the direct EIP of 10.0.0.8 moved away',
      treeWithDirectEip,
      manualTree,
      '203.0.113.13',
      'rule del from 203.0.113.13/32 to 10.0.0.0/24 table 10001 priority 29001\nrule del from 203.0.113.13/32 table 10001 priority 30001\naddress del 203.0.113.13/32 dev eth1\n',
      [
        'remove 203.0.113.13/32 from eth1',
        'remove rule from 203.0.113.13/32 to 10.0.0.0/24 table 10001 priority 29001',
        'remove rule from 203.0.113.13/32 table 10001 priority 30001',
        'stop marking connections to 203.0.113.13',
      ],
    ],
  ])(
    '%s: pending after the first read, removed with its rule after the second, everything else kept',
    async (_name, before, after, ip, removal, pending) => {
      const { kernel, host } = guest();
      await applyTree(host, before());
      const converged = structuredClone(kernel.state);
      kernel.calls.length = 0;

      const first = await applyTree(host, after());
      expect(first.rolledBack).toBe(false);
      expect(first.plan.ownership.pending).toEqual(pending);
      expect(first.pendingRemovals).toBe(4);
      expect(first.plan.runtime).toEqual([]);
      expect(batches(kernel)).toEqual([]);
      expect(kernel.state).toEqual(converged);

      const second = await applyTree(host, after());
      expect(second.rolledBack).toBe(false);
      expect(second.report?.ok).toBe(true);
      expect(second.plan.ownership.pending).toEqual([]);
      expect(second.pendingRemovals).toBe(0);
      expect(batches(kernel)).toEqual([removal]);
      expect(kernel.callsOf('ip', '-force')).toEqual([]);
      expect(readState().absentOnce).toEqual([]);
      // The connection mark of the address goes with it; the other addresses keep theirs.
      expect(liveComments(kernel.nftTable ?? '').filter((c) => c.includes(ip))).toEqual([]);
      expect(liveComments(kernel.nftTable ?? '')).toContain('eip-agent new 10.0.0.7 0x01000000');

      // Exactly the address and its rule are gone.
      const expected = structuredClone(converged);
      expected.rules = expected.rules.filter((r) => r.from !== `${ip}/32`);
      expected.links = expected.links.map((l) =>
        l.ifname === 'eth1' ? { ...l, addresses: l.addresses.filter((a) => a.ip !== ip) } : l,
      );
      expect(kernel.state).toEqual(expected);

      kernel.calls.length = 0;
      expect(planChanges((await makePlan(host, OPTIONS)).plan)).toBe(false);
    },
  );

  it('records the pending removal, then the release, in the state file', async () => {
    const { host } = guest();
    await applyTree(host, manualTree());
    await applyTree(host, treeWithout8());
    const pending = readState();
    expect(pending.owned).toEqual(manualOwned());
    expect(pending.absentOnce).toEqual([A8, R8_SUBNET, R8, M8]);

    await applyTree(host, treeWithout8());
    const removed = readState();
    expect(removed.owned).toEqual({
      ...manualOwned(),
      addresses: manualOwned().addresses.slice(0, 2),
      rules: manualOwned().rules.filter((r) => r.from !== '10.0.0.8'),
      marks: MANUAL_MARKS.slice(0, 1),
    });
    expect(removed.absentOnce).toEqual([]);
    expect(removed.lastSnapshot?.runtimeUndo).toEqual([
      'address add 10.0.0.8/24 dev eth1',
      'rule add from 10.0.0.8/32 table 10001 priority 30001',
      'rule add from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
    ]);
    expect(removed.lastSnapshot?.ownedBefore).toEqual(manualOwned());
    expect(removed.counters.applies).toBe(3);
  });

  it('re-renders the files at the first read (the runtime waits for the second)', async () => {
    const { host } = guest();
    await applyTree(host, manualTree());
    const first = await applyTree(host, treeWithout8());
    expect(first.outcome.filesWritten).toEqual([ETH1, RULE1]);
    expect(vol.readFileSync(ETH1, 'utf8')).toBe(
      String(POLICY_FILES[ETH1]).replace('IPADDR1=10.0.0.8\nNETMASK1=255.255.255.0\n', ''),
    );
    expect(vol.readFileSync(RULE1, 'utf8')).toBe(
      String(POLICY_FILES[RULE1])
        .replace('from 10.0.0.8/32 table 10001 priority 30001\n', '')
        .replace('from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001\n', ''),
    );
    const second = await applyTree(host, treeWithout8());
    expect(second.outcome.filesWritten).toEqual([]);
  });

  it('cancels the pending removal when the next read lists the address again', async () => {
    const { kernel, host } = guest();
    await applyTree(host, manualTree());
    await applyTree(host, treeWithout8());
    kernel.calls.length = 0;
    const back = await applyTree(host, manualTree());
    expect(back.plan.ownership.pending).toEqual([]);
    expect(back.plan.runtime).toEqual([]);
    expect(readState().absentOnce).toEqual([]);
    // Absent again: a first read once more, so only pending.
    const again = await applyTree(host, treeWithout8());
    expect(again.plan.ownership.pending).toEqual(PENDING_8);
    expect(batches(kernel)).toEqual([]);
  });

  it('adds an address moved to another NIC at once, and removes it from the old NIC after the second read', async () => {
    const { kernel, host } = guest();
    await applyTree(host, manualTree());
    const moved = editTree(treeWithout8(), `${NIC0_PATH}/local-ipv4s/10.0.0.8`, {
      gateway: '10.0.0.1',
      'subnet-mask': '255.255.255.0',
    });
    kernel.calls.length = 0;

    const first = await applyTree(host, moved);
    expect(first.plan.warnings).toEqual(['10.0.0.8 is also on eth1, which the metadata does not assign it to']);
    expect(first.plan.ownership.pending).toEqual(PENDING_8);
    const second = await applyTree(host, moved);
    expect(second.plan.warnings).toEqual([]);
    expect(await applyTree(host, moved)).toMatchObject({
      rolledBack: false,
      outcome: { filesWritten: [], runtimeApplied: [] },
    });

    expect(batches(kernel)).toEqual(['address add 10.0.0.8/24 dev eth0\n', DEL_8]);
    expect(link(kernel, 'eth0').addresses.map((a) => a.ip)).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.8']);
    expect(link(kernel, 'eth1').addresses.map((a) => a.ip)).toEqual(['10.0.0.7']);
    expect(readState().owned.addresses).toEqual([
      ...manualOwned().addresses.slice(0, 2),
      { ifname: 'eth0', mac: MAC0, cidr: '10.0.0.8/24' },
    ]);
  });

  it('never removes addresses the user added by hand, before or after the agent, nor one the agent found in place', async () => {
    const before = freshKernel();
    // By hand before the first apply: an unrelated address, and 10.0.0.3, which the agent then finds in place.
    before.links[1]?.addresses.push({ ip: '192.168.50.5', prefixLength: 24 }, { ip: '10.0.0.3', prefixLength: 24 });
    const { kernel, host } = guest(before);
    await applyTree(host, manualTree());
    expect(readState().owned.addresses.map((a) => a.cidr)).toEqual(['10.0.0.7/24', '10.0.0.8/24']);
    link(kernel, 'eth0').addresses.push({ ip: '192.168.60.6', prefixLength: 24 });
    kernel.calls.length = 0;

    const without3and8 = editTree(treeWithout8(), `${NIC0_PATH}/local-ipv4s/10.0.0.3`);
    await applyTree(host, without3and8);
    await applyTree(host, without3and8);
    await applyTree(host, without3and8);

    expect(batches(kernel)).toEqual([DEL_8]);
    expect(link(kernel, 'eth0').addresses).toEqual([
      { ip: '10.0.0.2', prefixLength: 24 },
      { ip: '192.168.50.5', prefixLength: 24 },
      { ip: '10.0.0.3', prefixLength: 24 },
      { ip: '192.168.60.6', prefixLength: 24 },
    ]);
  });

  it("never removes eth0's primary address, even when the state claims it and the metadata omits it", async () => {
    const { kernel, host } = guest();
    await applyTree(host, manualTree());
    const claimed = readState();
    claimed.owned.addresses.unshift({ ifname: 'eth0', mac: MAC0, cidr: '10.0.0.2/24' });
    await saveState(host, '/', claimed);
    kernel.calls.length = 0;

    const first = await applyTree(host, treeWithout2());
    expect(first.plan.warnings).toEqual(['10.0.0.2/24 is the primary address of eth0: never removed']);
    expect(first.plan.ownership.pending).toEqual([]);
    const second = await applyTree(host, treeWithout2());
    expect(second.plan.warnings).toEqual([]);

    expect(batches(kernel)).toEqual([]);
    expect(link(kernel, 'eth0').addresses).toEqual([
      { ip: '10.0.0.2', prefixLength: 24 },
      { ip: '10.0.0.3', prefixLength: 24 },
    ]);
    expect(readState().owned.addresses).toEqual(manualOwned().addresses);
  });
});

describe('an ENI that is detached', () => {
  const DROPIN_WITHOUT_ETH1 = ['rp_filter = 2', 'promote_secondaries = 1', 'arp_ignore = 1', 'arp_announce = 1'].reduce(
    (text, setting) => text.replace(`net.ipv4.conf.eth1.${setting}\n`, ''),
    String(POLICY_FILES[SYSCTL_DROPIN]),
  );

  it('forgets what went with the interface, removes its rules and files after two reads, re-renders the sysctl drop-in', async () => {
    const { kernel, host } = guest();
    await applyTree(host, manualTree());
    detachEth1(kernel);
    const detached = structuredClone(kernel.state);
    kernel.calls.length = 0;

    const first = await applyTree(host, treeWithoutEth1());
    expect(first.rolledBack).toBe(false);
    // Without a policy-routed NIC the main rule goes too.
    expect(first.plan.ownership.pending).toEqual([
      'remove rule from all table 254 suppress_prefixlength 0 priority 30000',
      'remove rule from 10.0.0.7/32 to 10.0.0.0/24 table 10001 priority 29001',
      'remove rule from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
      'remove rule from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001 priority 29001',
      'remove rule from 10.0.0.7/32 table 10001 priority 30001',
      'remove rule from 10.0.0.8/32 table 10001 priority 30001',
      'remove rule from all fwmark 0x1000000/0xf000000 table 10001 priority 30001',
      `remove ${ETH1}`,
      `remove ${ROUTE1}`,
      `remove ${RULE1}`,
      'stop marking connections to 10.0.0.7',
      'stop marking connections to 10.0.0.8',
    ]);
    expect(first.outcome.filesWritten).toEqual([SYSCTL_DROPIN]);
    expect(batches(kernel)).toEqual([]);
    expect(kernel.state).toEqual(detached);
    expect(readState().owned).toEqual({ ...manualOwned(), addresses: manualOwned().addresses.slice(0, 1), routes: [] });

    const second = await applyTree(host, treeWithoutEth1());
    expect(second.rolledBack).toBe(false);
    expect(second.outcome.filesWritten).toEqual([ETH1, ROUTE1, RULE1]);
    expect(batches(kernel)).toEqual([[...RULE_UNDO, ''].join('\n')]);
    expect(kernel.state).toEqual({ ...detached, rules: freshKernel().rules });
    expect(kernel.nftTable).toBeNull();

    const {
      [ETH1]: _e,
      [ROUTE1]: _r,
      [RULE1]: _u,
      [procSysPath('net.ipv4.conf.eth1.rp_filter')]: _s,
      [procSysPath('net.ipv4.conf.eth1.promote_secondaries')]: _p,
      ...kept
    } = convergedDisk();
    expect(guestDisk()).toEqual({ ...kept, [SYSCTL_DROPIN]: DROPIN_WITHOUT_ETH1 });
    expect(readState().owned).toEqual({
      addresses: manualOwned().addresses.slice(0, 1),
      rules: [],
      routes: [],
      files: [ETH0, SYSCTL_DROPIN],
    });
    expect(readState().absentOnce).toEqual([]);
  });
});

describe('a metadata read that fails between two reads', () => {
  it('removes nothing and changes nothing, not even the state file', async () => {
    const { kernel, host } = guest();
    await applyTree(host, manualTree());
    await applyTree(host, treeWithout8());
    vol.writeFileSync('/meta.json', '{"mac": ');
    const disk = vol.toJSON();
    const state = structuredClone(kernel.state);
    kernel.calls.length = 0;

    const error = await applyAndVerify(host, OPTIONS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MetadataError);
    expect(vol.toJSON()).toEqual(disk);
    expect(kernel.state).toEqual(state);
    expect(kernel.calls).toEqual([]);
  });

  it.each<[string, () => MetaTree, string[]]>([
    ['the address listed again: nothing removed', manualTree, []],
    ['still absent: the second successful read removes it', treeWithout8, [DEL_8]],
  ])('then %s', async (_name, next, expected) => {
    const { kernel, host } = guest();
    await applyTree(host, manualTree());
    await applyTree(host, treeWithout8());
    vol.writeFileSync('/meta.json', '{"mac": ');
    await expect(applyAndVerify(host, OPTIONS)).rejects.toBeInstanceOf(MetadataError);
    kernel.calls.length = 0;
    await applyTree(host, next());
    expect(batches(kernel)).toEqual(expected);
    expect(readState().absentOnce).toEqual([]);
  });
});

describe('a state file the agent cannot read', () => {
  it('stops apply before anything changes: ownership is never silently forgotten', async () => {
    const { kernel, host } = guest();
    vol.mkdirSync('/var/lib/eip-agent', { recursive: true });
    vol.writeFileSync(STATE_PATH, '{"version": 2}\n');
    vol.writeFileSync('/meta.json', JSON.stringify(manualTree()));
    const disk = vol.toJSON();
    const error = await applyAndVerify(host, OPTIONS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AgentError);
    expect((error as AgentError).userLine).toBe(
      'apply: state file /var/lib/eip-agent/state.json has a wrong or missing "version": nothing was changed; move it aside to start over (the agent will then own nothing it added before)',
    );
    expect(vol.toJSON()).toEqual(disk);
    expect(kernel.calls).toEqual([]);
  });
});

describe('rollbackLast', () => {
  it('undoes the last apply: files, runtime and ownership as before it', async () => {
    const { kernel, host } = guest();
    await applyTree(host, manualTree());
    const disk = guestDisk();
    const runtime = structuredClone(kernel.state);
    await applyTree(host, treeWith9());
    expect(link(kernel, 'eth1').addresses.map((a) => a.ip)).toEqual(['10.0.0.7', '10.0.0.8', '10.0.0.9']);
    kernel.calls.length = 0;

    const result = await rollbackLast(host, '/');

    expect(result).toEqual({
      files: [`restored ${ETH1}`, `restored ${RULE1}`],
      runtime: [
        'nftables table inet eip-agent put back',
        'rule del from 10.0.0.9/32 table 10001 priority 30001',
        'rule del from 10.0.0.9/32 to 10.0.0.0/24 table 10001 priority 29001',
        'address del 10.0.0.9/24 dev eth1',
      ],
      warnings: [],
      complete: true,
    });
    expect(kernel.callsOf('ip', '-force', '-batch', '-').map((c) => c.input)).toEqual([
      'rule del from 10.0.0.9/32 table 10001 priority 30001\nrule del from 10.0.0.9/32 to 10.0.0.0/24 table 10001 priority 29001\naddress del 10.0.0.9/24 dev eth1\n',
    ]);
    expect(kernel.callsOf('sysctl')).toEqual([]);
    expect(kernel.state).toEqual(runtime);
    expect(guestDisk()).toEqual(disk);
    const state: AgentState = {
      ...manualState(),
      counters: { applies: 2, verifyFailures: 0, rollbacks: 1, metadataErrors: 0 },
    };
    delete state.lastSnapshot;
    delete state.lastApply;
    expect(readState()).toEqual(state);
  });

  it('puts back an address and rule that the last apply removed, with the files the apply before it rewrote, and owns them again', async () => {
    const { kernel, host } = guest();
    await applyTree(host, manualTree());
    const disk = guestDisk();
    await applyTree(host, treeWithout8()); // the files lose 10.0.0.8; live, it is pending
    const runtime = structuredClone(kernel.state);
    await applyTree(host, treeWithout8()); // the second read removes it live
    expect(link(kernel, 'eth1').addresses.map((a) => a.ip)).toEqual(['10.0.0.7']);

    const result = await rollbackLast(host, '/');

    // One record: the files and the live state come back together, so a reboot brings back what rollback reported.
    expect(result).toEqual({
      files: [`restored ${ETH1}`, `restored ${RULE1}`],
      runtime: [
        'nftables table inet eip-agent put back',
        'address add 10.0.0.8/24 dev eth1',
        'rule add from 10.0.0.8/32 table 10001 priority 30001',
        'rule add from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
      ],
      warnings: [],
      complete: true,
    });
    // The same rules, each put back after the others of its priority.
    const byPriority = (s: KernelState) => ({
      ...s,
      rules: [...s.rules].sort((a, b) => a.priority - b.priority || JSON.stringify(a).localeCompare(JSON.stringify(b))),
    });
    expect(byPriority(kernel.state)).toEqual(byPriority(runtime));
    expect(kernel.nftTable).toBe(MANUAL_NFT_TABLE);
    expect(guestDisk()).toEqual(disk);
    expect(readState().owned).toEqual(manualOwned());
    expect(readState().absentOnce).toEqual([]);

    // Ownership is back, and so is the two-read rule: the next read only marks it pending again (and rewrites the files).
    kernel.calls.length = 0;
    const again = await applyTree(host, treeWithout8());
    expect(again.plan.ownership.pending).toEqual(PENDING_8);
    expect(batches(kernel)).toEqual([]);
  });

  it('undoes a --no-runtime apply without privileges', async () => {
    const { kernel, host } = guest(freshKernel(), false);
    vol.writeFileSync('/meta.json', JSON.stringify(manualTree()));
    await applyAndVerify(host, { ...OPTIONS, runtime: false });
    const result = await rollbackLast(host, '/');
    expect(result).toEqual({
      files: [
        `restored ${ETH0}`,
        `removed ${ETH0}.bak`,
        `removed ${ETH1}`,
        `removed ${ROUTE1}`,
        `removed ${RULE1}`,
        `removed ${SYSCTL_DROPIN}`,
      ],
      runtime: [],
      warnings: [],
      complete: true,
    });
    expect(guestDisk()).toEqual(freshDisk());
    expect(kernel.state).toEqual(freshKernel());
  });

  it.each<[string, (host: Host) => Promise<unknown>]>([
    ['a guest the agent never touched', async () => undefined],
    [
      'a guest whose last apply was already rolled back',
      async (host) => {
        await applyTree(host, manualTree());
        await rollbackLast(host, '/');
      },
    ],
  ])('refuses with a clear message on %s, changing nothing', async (_name, setup) => {
    const { kernel, host } = guest();
    await setup(host);
    const disk = vol.toJSON();
    const runtime = structuredClone(kernel.state);
    const error = await rollbackLast(host, '/').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AgentError);
    expect((error as AgentError).userLine).toBe(
      'apply: nothing to roll back: /var/lib/eip-agent/state.json records no apply',
    );
    expect(vol.toJSON()).toEqual(disk);
    expect(kernel.state).toEqual(runtime);
  });

  it('refuses without privileges when there is runtime to undo, changing nothing', async () => {
    const { kernel, host } = guest();
    await applyTree(host, manualTree());
    const unprivileged = createTestHost({ run: kernel.run, isPrivileged: () => false, now: () => NOW });
    const disk = vol.toJSON();
    const runtime = structuredClone(kernel.state);
    kernel.calls.length = 0;
    await expect(rollbackLast(unprivileged, '/')).rejects.toThrow(
      new HostError('rolling back addresses, rules and sysctls needs root (CAP_NET_ADMIN)'),
    );
    expect(vol.toJSON()).toEqual(disk);
    expect(kernel.state).toEqual(runtime);
    expect(kernel.calls).toEqual([]);
  });
});

describe('rollbackOriginal', () => {
  const ORIGINAL_RUNTIME = [
    'nftables table inet eip-agent deleted',
    ...RULE_UNDO,
    'route del 10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001 proto 234',
    'route del default via 10.0.0.1 dev eth1 table 10001 proto 234',
    // Secondaries before the primary of their subnet.
    'address del 10.0.0.3/24 dev eth0',
    'address del 10.0.0.8/24 dev eth1',
    'address del 10.0.0.7/24 dev eth1',
  ];
  const ORIGINAL_SYSCTLS = [
    'sysctl net.ipv4.conf.default.rp_filter=1',
    'sysctl net.ipv4.conf.eth1.rp_filter=1',
    'sysctl net.ipv4.conf.eth0.promote_secondaries=0',
    'sysctl net.ipv4.conf.eth1.promote_secondaries=0',
  ];

  it('puts back the guest as it was before the agent: cloud-init ifcfg-eth0, no agent file, nothing owned, original sysctls', async () => {
    const { kernel, host } = guest();
    await applyTree(host, manualTree());
    await applyTree(host, treeWith9());
    await applyTree(host, manualTree());
    await applyTree(host, manualTree());
    kernel.calls.length = 0;

    const result = await rollbackOriginal(host, '/');

    expect(result).toEqual({
      files: [
        `restored ${ETH0}`,
        `removed ${ETH0}.bak`,
        `removed ${ETH1}`,
        `removed ${ROUTE1}`,
        `removed ${RULE1}`,
        `removed ${SYSCTL_DROPIN}`,
      ],
      runtime: [...ORIGINAL_RUNTIME, ...ORIGINAL_SYSCTLS],
      warnings: [],
      complete: true,
    });
    expect(kernel.callsOf('ip', '-force', '-batch', '-').map((c) => c.input)).toEqual([
      `${ORIGINAL_RUNTIME.slice(1).join('\n')}\n`,
    ]);
    expect(kernel.nftTable).toBeNull();
    // eth1 stays up: bringing a link up is not something the agent owns.
    const original = freshKernel();
    const eth1 = original.links.find((l) => l.ifname === 'eth1');
    if (eth1 !== undefined) eth1.up = true;
    expect(kernel.state).toEqual(original);
    expect(readSysctl('net.ipv4.conf.default.rp_filter')).toBe('1');
    expect(readSysctl('net.ipv4.conf.eth1.rp_filter')).toBe('1');
    const { [`${ETH0}.bak`]: _bak, ...disk } = guestDisk();
    expect(disk).toEqual(freshDisk());
    expect(readState()).toEqual({
      ...emptyState(),
      counters: { applies: 4, verifyFailures: 0, rollbacks: 1, metadataErrors: 0 },
    });

    // Owning nothing, a second --original changes nothing at runtime.
    kernel.calls.length = 0;
    expect((await rollbackOriginal(host, '/')).runtime).toEqual([]);
    expect(kernel.callsOf('ip', '-force', '-batch', '-')).toEqual([]);
  });

  // The backup is the agent's own file: the guest as it was before eip-agent has no ifcfg-eth0.bak.
  it('removes the ifcfg-eth0.bak the agent created', async () => {
    const { host } = guest();
    await applyTree(host, manualTree());
    await rollbackOriginal(host, '/');
    expect(guestDisk()).toEqual(freshDisk());
  });

  it("keeps eth0's primary address even when the state claims it", async () => {
    const { kernel, host } = guest();
    await applyTree(host, manualTree());
    const claimed = readState();
    claimed.owned.addresses.unshift({ ifname: 'eth0', mac: MAC0, cidr: '10.0.0.2/24' });
    await saveState(host, '/', claimed);
    kernel.calls.length = 0;

    const result = await rollbackOriginal(host, '/');

    expect(result.warnings).toEqual(['10.0.0.2/24 is the primary address of eth0: kept']);
    expect(result.runtime.filter((l) => l.startsWith('address'))).toEqual([
      'address del 10.0.0.3/24 dev eth0',
      'address del 10.0.0.8/24 dev eth1',
      'address del 10.0.0.7/24 dev eth1',
    ]);
    expect(link(kernel, 'eth0').addresses).toEqual([{ ip: '10.0.0.2', prefixLength: 24 }]);
  });

  it('removes the rules of a detached ENI and skips its addresses, which went with it', async () => {
    const { kernel, host } = guest();
    await applyTree(host, manualTree());
    detachEth1(kernel);
    kernel.calls.length = 0;

    const result = await rollbackOriginal(host, '/');

    // Its table routes and its rp_filter went with the interface: nothing to undo there, and nothing to warn about.
    expect(result.runtime.filter((l) => !l.startsWith('sysctl'))).toEqual(
      ORIGINAL_RUNTIME.filter((l) => !/dev eth1( |$)/.test(l)),
    );
    expect(result.runtime.filter((l) => l.startsWith('sysctl'))).toEqual([
      'sysctl net.ipv4.conf.default.rp_filter=1',
      'sysctl net.ipv4.conf.eth0.promote_secondaries=0',
    ]);
    expect(result.warnings).toEqual([]);
    expect(kernel.state.rules).toEqual(freshKernel().rules);
    expect(link(kernel, 'eth0').addresses).toEqual([{ ip: '10.0.0.2', prefixLength: 24 }]);
    expect(readSysctl('net.ipv4.conf.default.rp_filter')).toBe('1');
  });
});

describe('an agent killed in the middle of an apply', () => {
  /** A guest whose host notes the state file as it is when the first change is about to be made. */
  function watchedGuest() {
    const kernel = new FakeKernel(freshKernel());
    const seen: { state?: string | null } = {};
    const host = createTestHost({
      isPrivileged: () => true,
      now: () => NOW,
      run: async (argv, options) => {
        // The moment the first change is made is the last moment a kill leaves it unrecorded.
        if (argv.join(' ') === 'ip -batch -' && seen.state === undefined)
          seen.state = vol.existsSync(STATE_PATH) ? (vol.readFileSync(STATE_PATH, 'utf8') as string) : null;
        return kernel.run(argv, options);
      },
    });
    return { kernel, host, seen };
  }

  it('has already recorded what the apply may add, before the first change', async () => {
    const { host, seen } = watchedGuest();
    await applyTree(host, manualTree());
    const recorded = JSON.parse(seen.state ?? 'null') as AgentState | null;
    expect(recorded?.owned).toEqual(manualOwned());
    expect(recorded?.originalFiles).toEqual(freshOriginals());
    expect(recorded?.lastApply).toBeUndefined();
  });

  it('after a restart, removes what the killed apply added once the metadata drops it (two reads)', async () => {
    const { kernel, host, seen } = watchedGuest();
    await applyTree(host, manualTree());
    // Killed right after its changes: the state file is the one recorded before them.
    vol.writeFileSync(STATE_PATH, seen.state ?? '');
    await applyTree(host, treeWithout8());
    await applyTree(host, treeWithout8());
    expect(link(kernel, 'eth1').addresses).toEqual([{ ip: '10.0.0.7', prefixLength: 24 }]);
  });
});

describe('an address a user added by hand in the same subnet', () => {
  const USER = { ip: '10.0.0.99', prefixLength: 24 };
  const ips = (kernel: FakeKernel, name: string) =>
    link(kernel, name).addresses.map((a) => `${a.ip}/${a.prefixLength}`);

  /** Applies the manual tree, then adds 10.0.0.99/24 to eth1 as a user would (`ip addr add`). */
  async function converged(): Promise<Guest> {
    const g = guest();
    await applyTree(g.host, manualTree());
    link(g.kernel, 'eth1').addresses.push(USER);
    g.kernel.calls.length = 0;
    return g;
  }

  it.each<[string, (host: Host) => Promise<{ warnings: string[]; complete: boolean }>]>([
    ['rollback', (host) => rollbackLast(host, '/')],
    ['rollback --original', (host) => rollbackOriginal(host, '/')],
  ])("%s removes 10.0.0.7 (eth1's primary) and keeps 10.0.0.99, with no warning", async (_name, rollback) => {
    const { kernel, host } = await converged();
    // As on a guest converged by an agent that did not set it yet: the kernel default.
    vol.writeFileSync(procSysPath('net.ipv4.conf.eth1.promote_secondaries'), '0\n');
    const result = await rollback(host);
    expect(result.warnings).toEqual([]);
    expect(result.complete).toBe(true);
    expect(ips(kernel, 'eth1')).toEqual(['10.0.0.99/24']);
    // promote_secondaries is back at the guest's own value afterwards.
    expect(readSysctl('net.ipv4.conf.eth1.promote_secondaries')).toBe('0');
  });

  it('rollback --original puts back an address the kernel took with a deleted one when promote_secondaries cannot be set', async () => {
    const { kernel, host } = await converged();
    kernel.sysctlFailure = 'sysctl: permission denied on key "net.ipv4.conf.eth1.promote_secondaries"';
    vol.writeFileSync(procSysPath('net.ipv4.conf.eth1.promote_secondaries'), '0\n');
    const result = await rollbackOriginal(host, '/');
    expect(ips(kernel, 'eth1')).toEqual(['10.0.0.99/24']);
    expect(result.runtime).toContain(
      'address add 10.0.0.99/24 dev eth1 (removed by the kernel with a deleted address; put back)',
    );
  });

  it("the metadata makes 10.0.0.8 eth1's primary and drops 10.0.0.7: after two reads 10.0.0.8 and 10.0.0.99 are still there, and verified", async () => {
    const { kernel, host } = await converged();
    let tree = editTree(manualTree(), `${NIC1_PATH}/local-ipv4s/10.0.0.7`);
    tree = editTree(tree, `${NIC1_PATH}/primary-local-ipv4`, '10.0.0.8');
    const first = await applyTree(host, tree);
    expect(first.rolledBack).toBe(false);
    expect(first.plan.ownership.pending).toContain('remove 10.0.0.7/24 from eth1');
    const second = await applyTree(host, tree);
    expect(second.outcome.runtimeApplied).toContain('remove 10.0.0.7/24 from eth1 (no longer in the metadata)');
    expect(second.rolledBack).toBe(false);
    expect(second.report?.ok).toBe(true);
    expect(ips(kernel, 'eth1')).toEqual(['10.0.0.8/24', '10.0.0.99/24']);
  });

  it("the removal order deletes a subnet's secondaries before its primary", async () => {
    const { kernel, host } = await converged();
    const tree = editTree(
      editTree(manualTree(), `${NIC1_PATH}/local-ipv4s/10.0.0.7`),
      `${NIC1_PATH}/local-ipv4s/10.0.0.8`,
    );
    // eth1 keeps no address of the metadata's: the NIC must still list one, so keep 10.0.0.9.
    const kept = editTree(
      editTree(tree, `${NIC1_PATH}/local-ipv4s/10.0.0.9`, { gateway: '10.0.0.1', 'subnet-mask': '255.255.255.0' }),
      `${NIC1_PATH}/primary-local-ipv4`,
      '10.0.0.9',
    );
    await applyTree(host, kept);
    kernel.calls.length = 0;
    await applyTree(host, kept);
    const lines = batches(kernel)
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('address del'));
    expect(lines).toEqual(['address del 10.0.0.8/24 dev eth1', 'address del 10.0.0.7/24 dev eth1']);
    expect(ips(kernel, 'eth1')).toEqual(['10.0.0.99/24', '10.0.0.9/24']);
  });
});
