import { describe, expect, it } from 'vitest';
import type { LinuxLiveState } from '../../src/targets/linux/live-state.js';
import type { FileChange, OwnedRef, OwnershipPlan, RuntimeChange } from '../../src/plan/plan.js';
import { emptyOwnership } from '../../src/plan/plan.js';
import { planFileRemovals, planRemovals } from '../../src/targets/linux/removals.js';
import type { AgentState, Owned } from '../../src/plan/record.js';
import { emptyState } from '../../src/plan/record.js';
import type { LinuxDesiredState } from '../../src/render/types.js';
import {
  MAC0,
  MAC1,
  NIC0_PATH,
  POLICY_FILES,
  SCRIPTS,
  SYSCTL_DROPIN,
  convergedLive,
  editTree,
  freshOriginals,
  manualDesired,
  manualOwned,
  treeWithout8,
  treeWithoutEth1,
} from '../helpers/manual-guest.js';
import { manualTree } from '../lab/fixtures.js';

// Keys of owned items as the state file's absentOnce lists them.
const A2 = `address 10.0.0.2/24 ${MAC0}`;
const A3 = `address 10.0.0.3/24 ${MAC0}`;
const A8 = `address 10.0.0.8/24 ${MAC1}`;
const A7 = `address 10.0.0.7/24 ${MAC1}`;
const R7 = 'rule 10.0.0.7 10001';
const R8 = 'rule 10.0.0.8 10001';
const SUBNET_SPEC = '10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001';
const DEFAULT_SPEC = 'default via 10.0.0.1 dev eth1 table 10001';
const RT_SUBNET = `route ${SUBNET_SPEC}`;
const RT_DEFAULT = `route ${DEFAULT_SPEC}`;

type AddressRef = Extract<OwnedRef, { kind: 'address' }>;
type RuleRef = Extract<OwnedRef, { kind: 'rule' }>;
type RouteRef = Extract<OwnedRef, { kind: 'route' }>;

// The items of manualOwned(), as plans refer to them.
const ADDR2: AddressRef = { kind: 'address', item: { ifname: 'eth0', mac: MAC0, cidr: '10.0.0.2/24' } };
const ADDR3: AddressRef = { kind: 'address', item: { ifname: 'eth0', mac: MAC0, cidr: '10.0.0.3/24' } };
const ADDR7: AddressRef = { kind: 'address', item: { ifname: 'eth1', mac: MAC1, cidr: '10.0.0.7/24' } };
const ADDR8: AddressRef = { kind: 'address', item: { ifname: 'eth1', mac: MAC1, cidr: '10.0.0.8/24' } };
const RULE7: RuleRef = { kind: 'rule', item: { from: '10.0.0.7', table: 10001, priority: 30001 } };
const RULE8: RuleRef = { kind: 'rule', item: { from: '10.0.0.8', table: 10001, priority: 30001 } };
const ROUTE_SUBNET: RouteRef = { kind: 'route', item: { table: 10001, spec: SUBNET_SPEC, dev: 'eth1' } };
const ROUTE_DEFAULT: RouteRef = { kind: 'route', item: { table: 10001, spec: DEFAULT_SPEC, dev: 'eth1' } };

function delAddress(ref: AddressRef, ifname: string): RuntimeChange {
  const { cidr } = ref.item;
  return {
    kind: 'address',
    summary: `remove ${cidr} from ${ifname} (no longer in the metadata)`,
    batch: `address del ${cidr} dev ${ifname}`,
    undo: `address add ${cidr} dev ${ifname}`,
    releases: ref,
  };
}

function delRule(ref: RuleRef): RuntimeChange {
  const spec = `from ${ref.item.from}/32 table ${ref.item.table} priority ${ref.item.priority}`;
  return {
    kind: 'rule',
    summary: `remove rule ${spec} (no longer in the metadata)`,
    batch: `rule del ${spec}`,
    undo: `rule add ${spec}`,
    releases: ref,
  };
}

function delRoute(ref: RouteRef): RuntimeChange {
  const { spec } = ref.item;
  return {
    kind: 'route',
    summary: `remove route ${spec} (no longer in the metadata)`,
    batch: `route del ${spec}`,
    undo: `route add ${spec} proto 234`,
    releases: ref,
  };
}

/** The converged guest once eth1's ENI is detached: the link, its addresses and its routes are gone; rules stay. */
function detachedLive(): LinuxLiveState {
  const live = convergedLive();
  live.links = live.links.filter((l) => l.ifname !== 'eth1');
  live.routes = live.routes.filter((r) => r.dev !== 'eth1');
  live.sysctls.delete('net.ipv4.conf.eth1.rp_filter');
  return live;
}

/** The converged guest after `mutate`. */
function live(mutate: (state: LinuxLiveState) => void): LinuxLiveState {
  const state = convergedLive();
  mutate(state);
  return state;
}

/** A desired state without the runtime addresses `ips` (for items the metadata cannot drop, such as eth0's primary). */
function desiredWithoutAddresses(...ips: string[]): LinuxDesiredState {
  const desired = manualDesired();
  desired.runtime.addresses = desired.runtime.addresses.filter((a) => !ips.includes(a.ip));
  return desired;
}

interface Case {
  desired: LinuxDesiredState;
  live: LinuxLiveState;
  owned?: Owned;
  absentOnce?: string[];
  macs?: string[];
}

interface Expected {
  changes: RuntimeChange[];
  ownership: OwnershipPlan;
  warnings: string[];
}

/**
 * What the agent owns in these cases: manualOwned() without its subnet rules and main rule, which the cases below do
 * not concern (those are in the desired state and live, and not owned here, so nothing happens to them); the case
 * 'no NIC needs policy routing any more' covers them.
 */
function owned(): Owned {
  return { ...manualOwned(), rules: manualOwned().rules.filter((r) => r.to === undefined && r.from !== 'all') };
}

function plan(c: Case): Expected {
  const state: AgentState = { ...emptyState(), owned: c.owned ?? owned(), absentOnce: c.absentOnce ?? [] };
  const warnings: string[] = [];
  const result = planRemovals(
    c.desired,
    c.live,
    { state, metadataMacs: new Set(c.macs ?? [MAC0, MAC1]), primaryIfname: 'eth0' },
    warnings,
  );
  return { ...result, warnings };
}

const NOTHING: Expected = { changes: [], ownership: emptyOwnership(), warnings: [] };
const forgotten = (...forget: OwnedRef[]): OwnershipPlan => ({ ...emptyOwnership(), forget });

describe('planRemovals', () => {
  it.each<[string, Case, Expected]>([
    ['a converged guest whose metadata lists everything', { desired: manualDesired(), live: convergedLive() }, NOTHING],
    [
      '10.0.0.8 gone from the metadata, first read: pending, nothing removed',
      { desired: manualDesired('policy', treeWithout8()), live: convergedLive() },
      {
        changes: [],
        ownership: {
          forget: [],
          forgetFiles: [],
          absentNow: [A8, R8],
          pending: ['remove 10.0.0.8/24 from eth1', 'remove rule from 10.0.0.8/32 table 10001 priority 30001'],
        },
        warnings: [],
      },
    ],
    [
      '10.0.0.8 gone from the metadata, second read: its rule, then the address',
      { desired: manualDesired('policy', treeWithout8()), live: convergedLive(), absentOnce: [A8, R8] },
      { changes: [delRule(RULE8), delAddress(ADDR8, 'eth1')], ownership: emptyOwnership(), warnings: [] },
    ],
    [
      "10.0.0.8 gone, second read, its rule there twice (networkd added a copy from the agent's drop-in): both copies go",
      {
        desired: manualDesired('policy', treeWithout8()),
        live: live((l) => {
          const rule = l.rules.find((r) => r.from === '10.0.0.8/32' && r.priority === 30001)!;
          l.rules.push({ ...rule });
        }),
        absentOnce: [A8, R8],
      },
      {
        changes: [
          delRule(RULE8),
          {
            kind: 'rule',
            summary: "remove rule from 10.0.0.8/32 table 10001 priority 30001 (a copy added from the agent's file)",
            batch: 'rule del from 10.0.0.8/32 table 10001 priority 30001',
            undo: 'rule add from 10.0.0.8/32 table 10001 priority 30001',
          },
          delAddress(ADDR8, 'eth1'),
        ],
        ownership: emptyOwnership(),
        warnings: [],
      },
    ],
    [
      'only the address confirmed: the address goes, the rule is pending',
      { desired: manualDesired('policy', treeWithout8()), live: convergedLive(), absentOnce: [A8] },
      {
        changes: [delAddress(ADDR8, 'eth1')],
        ownership: {
          forget: [],
          forgetFiles: [],
          absentNow: [R8],
          pending: ['remove rule from 10.0.0.8/32 table 10001 priority 30001'],
        },
        warnings: [],
      },
    ],
    [
      '10.0.0.8 listed again after one absent read',
      { desired: manualDesired(), live: convergedLive(), absentOnce: [A8, R8] },
      NOTHING,
    ],
    [
      '10.0.0.3, a secondary address of the primary NIC, gone and confirmed',
      {
        desired: manualDesired('policy', editTree(manualTree(), `${NIC0_PATH}/local-ipv4s/10.0.0.3`)),
        live: convergedLive(),
        absentOnce: [A3],
      },
      { changes: [delAddress(ADDR3, 'eth0')], ownership: emptyOwnership(), warnings: [] },
    ],
    [
      'a 10.0.0.8 and rule the user added by hand (not owned)',
      {
        desired: manualDesired('policy', treeWithout8()),
        live: convergedLive(),
        owned: { ...owned(), addresses: owned().addresses.slice(0, 2), rules: owned().rules.slice(0, 1) },
        absentOnce: [A8, R8],
      },
      NOTHING,
    ],
    [
      'an address the user added by hand to eth0',
      {
        desired: manualDesired(),
        live: live((l) => l.links[1]?.addresses.push({ ip: '192.168.7.7', prefixLength: 24 })),
        absentOnce: ['address 192.168.7.7/24 52:54:00:8a:7a:64'],
      },
      NOTHING,
    ],
    [
      "eth0's primary address recorded as owned and absent from the desired state",
      {
        desired: desiredWithoutAddresses('10.0.0.2'),
        live: convergedLive(),
        owned: { ...owned(), addresses: [ADDR2.item, ...owned().addresses] },
        absentOnce: [A2],
      },
      {
        changes: [],
        ownership: forgotten(ADDR2),
        warnings: ['10.0.0.2/24 is the primary address of eth0: never removed'],
      },
    ],
    [
      'addresses on a NIC the metadata no longer lists but that is still attached: left in place, disowned only when a second read agrees',
      {
        desired: manualDesired('policy', treeWithoutEth1()),
        live: convergedLive(),
        owned: { ...owned(), rules: [], routes: [] },
        macs: [MAC0],
        absentOnce: [A8],
      },
      {
        changes: [],
        ownership: { ...forgotten(ADDR8), absentNow: [A7], pending: [`stop owning ${A7} (left in place)`] },
        warnings: [
          '10.0.0.7/24 on eth1: the metadata no longer lists this NIC; the address is left as it is',
          '10.0.0.8/24 on eth1: the metadata no longer lists this NIC; the address is left as it is',
        ],
      },
    ],
    [
      'a detached ENI, first read: its addresses and routes are gone (forgotten), its rules pending',
      { desired: manualDesired('policy', treeWithoutEth1()), live: detachedLive(), macs: [MAC0] },
      {
        changes: [],
        ownership: {
          forget: [ADDR7, ADDR8, ROUTE_SUBNET, ROUTE_DEFAULT],
          forgetFiles: [],
          absentNow: [R7, R8],
          pending: [
            'remove rule from 10.0.0.7/32 table 10001 priority 30001',
            'remove rule from 10.0.0.8/32 table 10001 priority 30001',
          ],
        },
        warnings: [],
      },
    ],
    [
      'a detached ENI, second read: its rules removed',
      {
        desired: manualDesired('policy', treeWithoutEth1()),
        live: detachedLive(),
        macs: [MAC0],
        owned: { ...owned(), addresses: owned().addresses.slice(0, 1), routes: [] },
        absentOnce: [R7, R8],
      },
      { changes: [delRule(RULE7), delRule(RULE8)], ownership: emptyOwnership(), warnings: [] },
    ],
    [
      'an owned address and rule someone already removed: forgotten silently',
      {
        desired: manualDesired('policy', treeWithout8()),
        live: live((l) => {
          l.links[2]?.addresses.pop();
          l.rules = l.rules.filter((r) => r.from !== '10.0.0.8/32');
        }),
      },
      { changes: [], ownership: forgotten(ADDR8, RULE8), warnings: [] },
    ],
    [
      'routing switched to rp-filter and 10.0.0.8 gone, all confirmed: rules, then routes, then addresses',
      {
        desired: manualDesired('rp-filter', treeWithout8()),
        live: convergedLive(),
        absentOnce: [A8, R7, R8, RT_SUBNET, RT_DEFAULT],
      },
      {
        changes: [
          delRule(RULE7),
          delRule(RULE8),
          delRoute(ROUTE_SUBNET),
          delRoute(ROUTE_DEFAULT),
          delAddress(ADDR8, 'eth1'),
        ],
        ownership: emptyOwnership(),
        warnings: [],
      },
    ],
    [
      'routing switched to rp-filter, first read',
      { desired: manualDesired('rp-filter'), live: convergedLive() },
      {
        changes: [],
        ownership: {
          forget: [],
          forgetFiles: [],
          absentNow: [RT_SUBNET, RT_DEFAULT, R7, R8],
          pending: [
            `remove route ${SUBNET_SPEC}`,
            `remove route ${DEFAULT_SPEC}`,
            'remove rule from 10.0.0.7/32 table 10001 priority 30001',
            'remove rule from 10.0.0.8/32 table 10001 priority 30001',
          ],
        },
        warnings: [],
      },
    ],
    [
      'routing switched to rp-filter and the table routes already flushed',
      {
        desired: manualDesired('rp-filter'),
        live: live((l) => (l.routes = l.routes.filter((r) => r.table !== '10001'))),
        absentOnce: [RT_SUBNET, RT_DEFAULT, R7, R8],
      },
      { changes: [delRule(RULE7), delRule(RULE8)], ownership: forgotten(ROUTE_SUBNET, ROUTE_DEFAULT), warnings: [] },
    ],
  ])('%s', (_name, c, expected) => {
    expect(plan(c)).toEqual(expected);
  });

  it('no NIC needs policy routing any more: the main rule and the subnet rules go after two reads like the others', () => {
    const rules = manualOwned().rules;
    const keys = [
      'rule all 254 suppress 0',
      'rule 10.0.0.7 10001 to 10.0.0.0/24',
      'rule 10.0.0.8 10001 to 10.0.0.0/24',
      'rule all 10001 to 10.0.0.0/24 fwmark 0x1000000/0xf000000',
      'rule all 10001 fwmark 0x1000000/0xf000000',
    ];
    const first = plan({
      desired: manualDesired('rp-filter'),
      live: convergedLive(),
      owned: { ...owned(), rules, routes: [] },
      absentOnce: [R7, R8],
    });
    expect(first.ownership.absentNow).toEqual(keys);
    expect(first.changes.map((c) => c.batch)).toEqual([
      'rule del from 10.0.0.7/32 table 10001 priority 30001',
      'rule del from 10.0.0.8/32 table 10001 priority 30001',
    ]);
    const second = plan({
      desired: manualDesired('rp-filter'),
      live: convergedLive(),
      owned: { ...owned(), rules, routes: [] },
      absentOnce: [...keys, R7, R8],
    });
    expect(second.changes.map((c) => [c.batch, c.undo])).toEqual([
      [
        'rule del from all table 254 suppress_prefixlength 0 priority 30000',
        'rule add from all table 254 suppress_prefixlength 0 priority 30000',
      ],
      [
        'rule del from 10.0.0.7/32 to 10.0.0.0/24 table 10001 priority 29001',
        'rule add from 10.0.0.7/32 to 10.0.0.0/24 table 10001 priority 29001',
      ],
      [
        'rule del from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
        'rule add from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
      ],
      [
        'rule del from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001 priority 29001',
        'rule add from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001 priority 29001',
      ],
      ['rule del from 10.0.0.7/32 table 10001 priority 30001', 'rule add from 10.0.0.7/32 table 10001 priority 30001'],
      ['rule del from 10.0.0.8/32 table 10001 priority 30001', 'rule add from 10.0.0.8/32 table 10001 priority 30001'],
      [
        'rule del from all fwmark 0x1000000/0xf000000 table 10001 priority 30001',
        'rule add from all fwmark 0x1000000/0xf000000 table 10001 priority 30001',
      ],
    ]);
    // In the files it is the first policy-routed NIC's rule file, which goes the same way.
    expect(manualDesired('policy').files.find((f) => f.path === RULE1)?.content).toContain(
      'from all table 254 suppress_prefixlength 0 priority 30000\n',
    );
    expect(manualDesired('rp-filter').files.map((f) => f.path)).not.toContain(RULE1);
  });

  // Product bug: routes (dev eth1) and rules (from eth1's addresses) of a NIC the metadata no longer lists, but that is
  // still attached, are removed after two reads while its addresses are kept (src/targets/linux/removals.ts, routes and rules loops).
  it('removes no route or rule of a NIC the metadata no longer lists while it is still attached, and disowns them only on the second read', () => {
    const keys = [RT_SUBNET, RT_DEFAULT, R7, R8];
    const first = plan({ desired: manualDesired('policy', treeWithoutEth1()), live: convergedLive(), macs: [MAC0] });
    const second = plan({
      desired: manualDesired('policy', treeWithoutEth1()),
      live: convergedLive(),
      macs: [MAC0],
      absentOnce: [R7, R8, RT_SUBNET, RT_DEFAULT],
    });
    for (const result of [first, second]) expect(result.changes).toEqual([]);
    expect(first.ownership.forget.filter((r) => r.kind !== 'address')).toEqual([]);
    expect(first.ownership.absentNow.filter((k) => keys.includes(k))).toEqual(keys);
    expect(second.ownership.forget.filter((r) => r.kind !== 'address')).toEqual([
      ROUTE_SUBNET,
      ROUTE_DEFAULT,
      RULE7,
      RULE8,
    ]);
    expect(second.ownership.absentNow.filter((k) => keys.includes(k))).toEqual([]);
  });
});

const ETH1 = `${SCRIPTS}/ifcfg-eth1`;
const ROUTE1 = `${SCRIPTS}/route-eth1`;
const RULE1 = `${SCRIPTS}/rule-eth1`;
const HAND_ETH1 = 'DEVICE=eth1\nBOOTPROTO=dhcp\nONBOOT=yes\n';

describe('planFileRemovals', () => {
  const renderedWithoutEth1 = new Set(manualDesired('policy', treeWithoutEth1()).files.map((f) => f.path));
  const onDisk = (): Map<string, string | null> => new Map(Object.entries(POLICY_FILES));
  const remove = (path: string): FileChange => ({
    path,
    mode: 0o644,
    content: '',
    action: 'remove',
    previous: POLICY_FILES[path] ?? null,
    previousOwned: true,
  });

  const ownedFiles = manualOwned().files;

  it('renders the manual tree without eth1 as ifcfg-eth0 and the sysctl drop-in only', () => {
    expect([...renderedWithoutEth1]).toEqual([`${SCRIPTS}/ifcfg-eth0`, SYSCTL_DROPIN]);
  });

  it.each<[string, Set<string>, Map<string, string | null>, Partial<AgentState>, FileChange[], OwnershipPlan]>([
    [
      'every owned file still rendered',
      new Set(Object.keys(POLICY_FILES)),
      onDisk(),
      { absentOnce: [`file ${ETH1}`] },
      [],
      emptyOwnership(),
    ],
    [
      "eth1's files no longer rendered, first read: pending",
      renderedWithoutEth1,
      onDisk(),
      { originalFiles: freshOriginals() },
      [],
      {
        ...emptyOwnership(),
        absentNow: [`file ${ETH1}`, `file ${ROUTE1}`, `file ${RULE1}`],
        pending: [`remove ${ETH1}`, `remove ${ROUTE1}`, `remove ${RULE1}`],
      },
    ],
    [
      "eth1's files no longer rendered, second read: removed (they did not exist before the agent)",
      renderedWithoutEth1,
      onDisk(),
      { originalFiles: freshOriginals(), absentOnce: [`file ${ETH1}`, `file ${ROUTE1}`, `file ${RULE1}`] },
      [remove(ETH1), remove(ROUTE1), remove(RULE1)],
      emptyOwnership(),
    ],
    [
      'a confirmed file whose original existed: the original is restored',
      renderedWithoutEth1,
      onDisk(),
      {
        originalFiles: { ...freshOriginals(), [ETH1]: HAND_ETH1 },
        absentOnce: [`file ${ETH1}`, `file ${ROUTE1}`, `file ${RULE1}`],
      },
      [
        {
          path: ETH1,
          mode: 0o644,
          content: HAND_ETH1,
          action: 'update',
          previous: POLICY_FILES[ETH1] ?? null,
          previousOwned: true,
        },
        remove(ROUTE1),
        remove(RULE1),
      ],
      emptyOwnership(),
    ],
    [
      'only one file confirmed',
      renderedWithoutEth1,
      onDisk(),
      { originalFiles: freshOriginals(), absentOnce: [`file ${RULE1}`] },
      [remove(RULE1)],
      {
        ...emptyOwnership(),
        absentNow: [`file ${ETH1}`, `file ${ROUTE1}`],
        pending: [`remove ${ETH1}`, `remove ${ROUTE1}`],
      },
    ],
    [
      'an owned file already gone: nothing to do',
      renderedWithoutEth1,
      new Map([...onDisk(), [ETH1, null]]),
      { originalFiles: freshOriginals(), absentOnce: [`file ${ROUTE1}`] },
      [remove(ROUTE1)],
      { ...emptyOwnership(), absentNow: [`file ${RULE1}`], pending: [`remove ${RULE1}`] },
    ],
  ])('%s', (_name, rendered, current, state, changes, ownership) => {
    const plan = emptyOwnership();
    expect(planFileRemovals(ownedFiles, rendered, current, { ...emptyState(), ...state }, plan)).toEqual(changes);
    expect(plan).toEqual(ownership);
  });

  // An owned path the user has since replaced with a file of their own (no eip-agent marker) is theirs now.
  it('leaves alone an owned path the user has replaced with their own file, and stops owning it', () => {
    const plan = emptyOwnership();
    const current = new Map([...onDisk(), [ETH1, HAND_ETH1]]);
    const state: AgentState = { ...emptyState(), originalFiles: freshOriginals(), absentOnce: [`file ${ETH1}`] };
    expect(planFileRemovals([ETH1], renderedWithoutEth1, current, state, plan)).toEqual([]);
    expect(plan).toEqual({ ...emptyOwnership(), forgetFiles: [ETH1] });
  });
});
