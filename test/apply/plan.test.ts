import { describe, expect, it } from 'vitest';
import type { LinuxLiveState } from '../../src/targets/linux/live-state.js';
import type { FileChange, FileSnapshot, RuntimeChange } from '../../src/plan/plan.js';
import { planFiles } from '../../src/plan/plan.js';
import { planRuntime } from '../../src/targets/linux/plan-runtime.js';
import { foreignTables } from '../../src/targets/linux/tables-in-use.js';
import type { RenderedFile } from '../../src/render/types.js';
import {
  CLOUD_INIT_ETH0,
  FRESH_BATCH,
  MAC0,
  MAC1,
  RT_TABLES,
  convergedLive,
  freshLive,
  manualDesired,
} from '../helpers/manual-guest.js';

const PATH = '/etc/sysconfig/network-scripts/ifcfg-eth0';
const NEW =
  '# Managed by eip-agent: generated from instance metadata, local edits are replaced.\nBOOTPROTO=static\nDEVICE=eth0\n';
const OLD_OWNED =
  '# Managed by eip-agent: generated from instance metadata, local edits are replaced.\nBOOTPROTO=static\nDEVICE=eth0\nIPADDR0=10.0.0.9\n';
const OPERATOR_BAK = 'BOOTPROTO=none\nDEVICE=eth0\n';

describe('planFiles', () => {
  const file: RenderedFile = { path: PATH, mode: 0o644, content: NEW };
  const snap = (current: string | null, bak: string | null = null, agentBakExists = false): FileSnapshot => ({
    current,
    bak,
    agentBakExists,
  });

  it.each<[string, FileSnapshot | undefined, Pick<FileChange, 'action' | 'previous' | 'previousOwned' | 'backupPath'>]>(
    [
      ['no snapshot at all', undefined, { action: 'create', previous: null, previousOwned: false }],
      ['an absent file', snap(null), { action: 'create', previous: null, previousOwned: false }],
      [
        'an absent file next to a stray .bak',
        snap(null, OPERATOR_BAK, true),
        { action: 'create', previous: null, previousOwned: false },
      ],
      ['the same content', snap(NEW), { action: 'unchanged', previous: NEW, previousOwned: true }],
      [
        'the same content without any backup',
        snap(NEW, null, false),
        { action: 'unchanged', previous: NEW, previousOwned: true },
      ],
      [
        'a foreign file and no .bak',
        snap(CLOUD_INIT_ETH0),
        { action: 'update', previous: CLOUD_INIT_ETH0, previousOwned: false, backupPath: `${PATH}.bak` },
      ],
      [
        "a foreign file whose .bak is identical (the manual's own step)",
        snap(CLOUD_INIT_ETH0, CLOUD_INIT_ETH0),
        { action: 'update', previous: CLOUD_INIT_ETH0, previousOwned: false },
      ],
      [
        'a foreign file and a different .bak',
        snap(CLOUD_INIT_ETH0, OPERATOR_BAK),
        { action: 'update', previous: CLOUD_INIT_ETH0, previousOwned: false, backupPath: `${PATH}.eip-agent.bak` },
      ],
      [
        'a foreign file, a different .bak and an .eip-agent.bak',
        snap(CLOUD_INIT_ETH0, OPERATOR_BAK, true),
        { action: 'update', previous: CLOUD_INIT_ETH0, previousOwned: false },
      ],
      [
        'an older file of the agent and no .bak',
        snap(OLD_OWNED),
        { action: 'update', previous: OLD_OWNED, previousOwned: true },
      ],
      [
        'an older file of the agent and a different .bak',
        snap(OLD_OWNED, OPERATOR_BAK),
        { action: 'update', previous: OLD_OWNED, previousOwned: true },
      ],
    ],
  )('plans %s', (_name, snapshot, expected) => {
    const snapshots = new Map(snapshot === undefined ? [] : [[PATH, snapshot]]);
    expect(planFiles([file], snapshots)).toEqual([{ ...file, ...expected }]);
  });

  it('plans each file from its own snapshot, in render order', () => {
    const other: RenderedFile = { path: '/etc/sysctl.d/99-zz-eip-agent.conf', mode: 0o644, content: 'x\n' };
    const snapshots = new Map([
      [PATH, snap(CLOUD_INIT_ETH0)],
      [other.path, snap('x\n')],
    ]);
    expect(planFiles([other, file], snapshots).map((c) => [c.path, c.action, c.backupPath])).toEqual([
      [other.path, 'unchanged', undefined],
      [PATH, 'update', `${PATH}.bak`],
    ]);
  });
});

function batchLines(changes: readonly RuntimeChange[]): (string | undefined)[] {
  return changes.filter((c) => c.kind !== 'sysctl').map((c) => c.batch);
}

/** A converged state with one change made by `mutate`. */
function converged(mutate: (live: LinuxLiveState) => void): LinuxLiveState {
  const live = convergedLive();
  mutate(live);
  return live;
}

function link(live: LinuxLiveState, name: string): LinuxLiveState['links'][number] {
  const found = live.links.find((l) => l.ifname === name);
  if (found === undefined) throw new Error(`no ${name}`);
  return found;
}

describe('planRuntime', () => {
  it("takes a fresh guest to the manual's policy-mode state: links, addresses, table routes, rules, then sysctls", () => {
    const warnings: string[] = [];
    const changes = planRuntime(manualDesired('policy'), freshLive(), warnings);
    expect(batchLines(changes)).toEqual(FRESH_BATCH);
    expect(changes).toEqual<RuntimeChange[]>([
      { kind: 'link', summary: 'bring eth1 up', batch: 'link set dev eth1 up', undo: 'link set dev eth1 down' },
      {
        kind: 'address',
        summary: 'add 10.0.0.3/24 to eth0',
        batch: 'address add 10.0.0.3/24 dev eth0',
        undo: 'address del 10.0.0.3/24 dev eth0',
        owns: { kind: 'address', item: { ifname: 'eth0', mac: MAC0, cidr: '10.0.0.3/24' } },
      },
      {
        kind: 'address',
        summary: 'add 10.0.0.7/24 to eth1',
        batch: 'address add 10.0.0.7/24 dev eth1',
        undo: 'address del 10.0.0.7/24 dev eth1',
        owns: { kind: 'address', item: { ifname: 'eth1', mac: MAC1, cidr: '10.0.0.7/24' } },
      },
      {
        kind: 'address',
        summary: 'add 10.0.0.8/24 to eth1',
        batch: 'address add 10.0.0.8/24 dev eth1',
        undo: 'address del 10.0.0.8/24 dev eth1',
        owns: { kind: 'address', item: { ifname: 'eth1', mac: MAC1, cidr: '10.0.0.8/24' } },
      },
      {
        kind: 'route',
        summary: 'route 10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001',
        batch: 'route replace 10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001 proto 234',
        undo: 'route del 10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001',
        owns: {
          kind: 'route',
          item: { table: 10001, spec: '10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001', dev: 'eth1' },
        },
      },
      {
        kind: 'route',
        summary: 'route default via 10.0.0.1 dev eth1 table 10001',
        batch: 'route replace default via 10.0.0.1 dev eth1 table 10001 proto 234',
        undo: 'route del default via 10.0.0.1 dev eth1 table 10001',
        owns: { kind: 'route', item: { table: 10001, spec: 'default via 10.0.0.1 dev eth1 table 10001', dev: 'eth1' } },
      },
      {
        kind: 'rule',
        summary: 'rule from all table 254 suppress_prefixlength 0 priority 30000',
        batch: 'rule add from all table 254 suppress_prefixlength 0 priority 30000',
        undo: 'rule del from all table 254 suppress_prefixlength 0 priority 30000',
        owns: { kind: 'rule', item: { from: 'all', table: 254, priority: 30000, suppressPrefixLength: 0 } },
      },
      ...['10.0.0.7', '10.0.0.8'].map((ip): RuntimeChange => ({
        kind: 'rule',
        summary: `rule from ${ip}/32 to 10.0.0.0/24 table 10001 priority 29001`,
        batch: `rule add from ${ip}/32 to 10.0.0.0/24 table 10001 priority 29001`,
        undo: `rule del from ${ip}/32 to 10.0.0.0/24 table 10001 priority 29001`,
        owns: { kind: 'rule', item: { from: ip, to: '10.0.0.0/24', table: 10001, priority: 29001 } },
      })),
      {
        kind: 'rule',
        summary: 'rule from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001 priority 29001',
        batch: 'rule add from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001 priority 29001',
        undo: 'rule del from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001 priority 29001',
        owns: {
          kind: 'rule',
          item: { from: 'all', to: '10.0.0.0/24', fwmark: '0x1000000/0xf000000', table: 10001, priority: 29001 },
        },
      },
      {
        kind: 'rule',
        summary: 'rule from 10.0.0.7/32 table 10001 priority 30001',
        batch: 'rule add from 10.0.0.7/32 table 10001 priority 30001',
        undo: 'rule del from 10.0.0.7/32 table 10001 priority 30001',
        owns: { kind: 'rule', item: { from: '10.0.0.7', table: 10001, priority: 30001 } },
      },
      {
        kind: 'rule',
        summary: 'rule from 10.0.0.8/32 table 10001 priority 30001',
        batch: 'rule add from 10.0.0.8/32 table 10001 priority 30001',
        undo: 'rule del from 10.0.0.8/32 table 10001 priority 30001',
        owns: { kind: 'rule', item: { from: '10.0.0.8', table: 10001, priority: 30001 } },
      },
      {
        kind: 'rule',
        summary: 'rule from all fwmark 0x1000000/0xf000000 table 10001 priority 30001',
        batch: 'rule add from all fwmark 0x1000000/0xf000000 table 10001 priority 30001',
        undo: 'rule del from all fwmark 0x1000000/0xf000000 table 10001 priority 30001',
        owns: { kind: 'rule', item: { from: 'all', fwmark: '0x1000000/0xf000000', table: 10001, priority: 30001 } },
      },
      {
        kind: 'sysctl',
        summary: 'sysctl net.ipv4.conf.default.rp_filter 1 -> 2',
        sysctl: { key: 'net.ipv4.conf.default.rp_filter', value: '2', previous: '1' },
      },
      {
        kind: 'sysctl',
        summary: 'sysctl net.ipv4.conf.eth1.rp_filter 1 -> 2',
        sysctl: { key: 'net.ipv4.conf.eth1.rp_filter', value: '2', previous: '1' },
      },
      {
        kind: 'sysctl',
        summary: 'sysctl net.ipv4.conf.eth0.promote_secondaries 0 -> 1',
        sysctl: { key: 'net.ipv4.conf.eth0.promote_secondaries', value: '1', previous: '0' },
      },
      {
        kind: 'sysctl',
        summary: 'sysctl net.ipv4.conf.eth1.promote_secondaries 0 -> 1',
        sysctl: { key: 'net.ipv4.conf.eth1.promote_secondaries', value: '1', previous: '0' },
      },
    ]);
    expect(warnings).toEqual([]);
  });

  it('plans every sysctl of rp-filter mode and no table route or rule', () => {
    const changes = planRuntime(manualDesired('rp-filter'), freshLive(), []);
    expect(batchLines(changes)).toEqual([
      'link set dev eth1 up',
      'address add 10.0.0.3/24 dev eth0',
      'address add 10.0.0.7/24 dev eth1',
      'address add 10.0.0.8/24 dev eth1',
    ]);
    expect(changes.filter((c) => c.kind === 'sysctl').map((c) => c.sysctl)).toEqual([
      { key: 'net.ipv4.conf.default.rp_filter', value: '0', previous: '1' },
      { key: 'net.ipv4.conf.all.rp_filter', value: '0', previous: '1' },
      { key: 'net.ipv4.conf.eth0.rp_filter', value: '0', previous: '1' },
      { key: 'net.ipv4.conf.eth1.rp_filter', value: '0', previous: '1' },
      { key: 'net.ipv4.conf.eth0.promote_secondaries', value: '1', previous: '0' },
      { key: 'net.ipv4.conf.eth1.promote_secondaries', value: '1', previous: '0' },
    ]);
  });

  it('plans nothing for a converged guest', () => {
    const warnings: string[] = [];
    expect(planRuntime(manualDesired('policy'), convergedLive(), warnings)).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it.each<[string, (live: LinuxLiveState) => void, string[], string[]]>([
    [
      'an address held by another interface',
      (live) => {
        link(live, 'eth1').addresses.pop();
        link(live, 'eth0').addresses.push({ ip: '10.0.0.8', prefixLength: 24 });
      },
      ['address add 10.0.0.8/24 dev eth1'],
      ['10.0.0.8 is also on eth0, which the metadata does not assign it to'],
    ],
    [
      'an address held twice by another interface (two prefix lengths), and by a third',
      (live) => {
        link(live, 'eth1').addresses.pop();
        link(live, 'eth0').addresses.push({ ip: '10.0.0.8', prefixLength: 24 }, { ip: '10.0.0.8', prefixLength: 32 });
        live.links.push({
          ifname: 'eth9',
          mac: '52:54:00:00:00:09',
          up: true,
          addresses: [{ ip: '10.0.0.8', prefixLength: 32 }],
        });
      },
      ['address add 10.0.0.8/24 dev eth1'],
      [
        '10.0.0.8 is also on eth0, which the metadata does not assign it to',
        '10.0.0.8 is also on eth9, which the metadata does not assign it to',
      ],
    ],
    [
      'an address with another prefix length',
      (live) => {
        link(live, 'eth0').addresses[1] = { ip: '10.0.0.3', prefixLength: 32 };
      },
      [],
      ['10.0.0.3 is on eth0 as /32, metadata says /24; left as it is'],
    ],
    [
      'a main table without a default route (a default in table 10001 does not count)',
      (live) => {
        live.routes = live.routes.filter((r) => !(r.table === 'main' && r.dst === 'default'));
      },
      ['route add default via 10.0.0.1 dev eth0'],
      [],
    ],
    [
      'a table route with another source address',
      (live) => {
        live.routes = live.routes.map((r) =>
          r.table === '10001' && r.dst === '10.0.0.0/24' ? { ...r, prefsrc: '10.0.0.8' } : r,
        );
      },
      ['route replace 10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001 proto 234'],
      [],
    ],
    [
      'a rule of the agent pointing at another table',
      (live) => {
        live.rules = live.rules.map((r) =>
          r.from === '10.0.0.8/32' && r.to === undefined ? { ...r, table: '10101' } : r,
        );
      },
      ['rule add from 10.0.0.8/32 table 10001 priority 30001'],
      ['rule from 10.0.0.8/32 points at table 10101, expected 10001'],
    ],
    [
      'a link that is down',
      (live) => {
        link(live, 'eth0').up = false;
      },
      ['link set dev eth0 up'],
      [],
    ],
  ])('handles %s', (_name, mutate, lines, expectedWarnings) => {
    const warnings: string[] = [];
    expect(batchLines(planRuntime(manualDesired('policy'), converged(mutate), warnings))).toEqual(lines);
    expect(warnings).toEqual(expectedWarnings);
  });

  it('adds the main default route right after the addresses, before the table routes', () => {
    const live = freshLive();
    live.routes = live.routes.filter((r) => r.dst !== 'default');
    expect(batchLines(planRuntime(manualDesired('policy'), live, []))).toEqual([
      ...FRESH_BATCH.slice(0, 4),
      'route add default via 10.0.0.1 dev eth0',
      ...FRESH_BATCH.slice(4),
    ]);
  });

  it("never adds what the primary NIC's DHCP lease gives (its primary address, the main default route) while the lease is away; says so", () => {
    const desired = manualDesired('policy');
    desired.runtime.addresses.find((a) => a.ip === '10.0.0.2')!.lease = true;
    desired.runtime.mainDefault.lease = true;
    // A restart of the DHCP client: its address and its default route are gone for a moment.
    const live = converged((l) => {
      link(l, 'eth0').addresses = link(l, 'eth0').addresses.filter((a) => a.ip !== '10.0.0.2');
      l.routes = l.routes.filter((r) => !(r.table === 'main' && r.dst === 'default'));
    });
    const warnings: string[] = [];
    expect(batchLines(planRuntime(desired, live, warnings))).toEqual([]);
    expect(warnings).toEqual([
      "10.0.0.2/24 is not on eth0: it comes from the DHCP lease, which the guest's DHCP client puts back; the agent does not add it",
    ]);
    // Without the lease, the agent puts both back.
    expect(batchLines(planRuntime(manualDesired('policy'), live, []))).toEqual([
      'address add 10.0.0.2/24 dev eth0',
      'route add default via 10.0.0.1 dev eth0',
    ]);
  });

  it('skips the addresses, routes, rules and sysctls of a NIC absent from the system', () => {
    const live = freshLive();
    live.links = live.links.filter((l) => l.ifname !== 'eth1');
    live.sysctls.set('net.ipv4.conf.eth1.rp_filter', null);
    live.sysctls.set('net.ipv4.conf.eth1.promote_secondaries', null);
    const changes = planRuntime(manualDesired('policy'), live, []);
    // The main rule is eth0's: planned with it (it changes nothing while no table has a rule).
    expect(changes.map((c) => c.batch ?? c.sysctl?.key)).toEqual([
      'address add 10.0.0.3/24 dev eth0',
      'rule add from all table 254 suppress_prefixlength 0 priority 30000',
      'net.ipv4.conf.default.rp_filter',
      'net.ipv4.conf.eth0.promote_secondaries',
    ]);
  });

  it('sets arp_ignore and arp_announce on every managed NIC, remembering what they were', () => {
    const live = freshLive();
    for (const dev of ['eth0', 'eth1'])
      live.sysctls.set(`net.ipv4.conf.${dev}.arp_ignore`, '0').set(`net.ipv4.conf.${dev}.arp_announce`, '0');
    const arp = planRuntime(manualDesired('policy'), live, []).filter((c) => /arp_/.test(c.sysctl?.key ?? ''));
    expect(arp.map((c) => c.sysctl)).toEqual([
      { key: 'net.ipv4.conf.eth0.arp_ignore', value: '1', previous: '0' },
      { key: 'net.ipv4.conf.eth0.arp_announce', value: '1', previous: '0' },
      { key: 'net.ipv4.conf.eth1.arp_ignore', value: '1', previous: '0' },
      { key: 'net.ipv4.conf.eth1.arp_announce', value: '1', previous: '0' },
    ]);
  });

  it("adds the main rule when only another tool's has the same selector at another priority (wg-quick's 32764)", () => {
    const live = convergedLive();
    live.rules = live.rules.filter((r) => r.suppressPrefixLength === undefined);
    live.rules.push({ priority: 32764, from: 'all', table: 'main', suppressPrefixLength: 0 });
    expect(batchLines(planRuntime(manualDesired('policy'), live, []))).toEqual([
      'rule add from all table 254 suppress_prefixlength 0 priority 30000',
    ]);
  });

  it("says so when a rule of someone else sits among the agent's, and leaves it alone", () => {
    const live = convergedLive();
    live.rules.push({ priority: 29500, from: 'all', table: '200', other: true });
    const warnings: string[] = [];
    expect(planRuntime(manualDesired('policy'), live, warnings)).toEqual([]);
    expect(warnings).toEqual([
      "rule 29500 (from all with other selectors lookup 200) is not the agent's and sits among its rules (29001-30001): it is consulted before some of them",
    ]);
  });

  it('skips a sysctl that was not read', () => {
    const live = convergedLive();
    live.sysctls = new Map([['net.ipv4.conf.eth1.rp_filter', '1']]);
    expect(planRuntime(manualDesired('policy'), live, []).map((c) => c.summary)).toEqual([
      'sysctl net.ipv4.conf.eth1.rp_filter 1 -> 2',
    ]);
  });
});

describe('foreignTables', () => {
  const live = (rules: LinuxLiveState['rules'], routes: LinuxLiveState['routes'] = []): LinuxLiveState => ({
    links: [],
    rules,
    routes,
    sysctls: new Map(),
  });

  it.each<[string, LinuxLiveState | null, string[], number[]]>([
    ['nothing', null, [], []],
    ['the fresh guest', freshLive(), [RT_TABLES], [0, 253, 254, 255]],
    ['the converged guest', convergedLive(), [], []],
    ["a rule below the agent's band", live([{ priority: 28999, from: '10.0.0.9/32', table: '10001' }]), [], [10001]],
    [
      'a rule at the first priority of the band',
      live([{ priority: 30000, from: '10.0.0.9/32', table: '10001' }]),
      [],
      [],
    ],
    [
      'a rule at the last priority of the band',
      live([{ priority: 30999, from: '10.0.0.9/32', table: '10002' }]),
      [],
      [],
    ],
    ['a rule just above the band', live([{ priority: 31000, from: '10.0.0.9/32', table: '10002' }]), [], [10002]],
    ['a rule of another tool on a named table', live([{ priority: 100, from: 'all', table: 'vpn' }]), [], []],
    [
      'the reserved tables',
      live([
        { priority: 0, from: 'all', table: 'local' },
        { priority: 32766, from: 'all', table: 'main' },
        { priority: 32767, from: 'all', table: 'default' },
      ]),
      [],
      [],
    ],
    [
      "a route with the agent's protocol",
      live([], [{ table: '10001', dst: 'default', dev: 'eth1', gateway: '10.0.0.1', protocol: '234' }]),
      [],
      [],
    ],
    [
      'a route with another protocol',
      live([], [{ table: '10001', dst: 'default', dev: 'eth1', gateway: '10.0.0.1', protocol: 'static' }]),
      [],
      [10001],
    ],
    ['a route without a protocol', live([], [{ table: '300', dst: '10.9.0.0/16', dev: 'eth0' }]), [], [300]],
    [
      'numeric rt_tables entries, not comments',
      null,
      ['200 vpn\n#201 old\n  202\tspaced\nbad line\n', '10001\tmine\n'],
      [200, 202, 10001],
    ],
  ])('finds %s', (_name, state, rtTables, expected) => {
    expect([...foreignTables(state, rtTables)].sort((a, b) => a - b)).toEqual(expected);
  });
});
