import { planMarks } from '../../src/targets/linux/marks.js';
import { describe, expect, it } from 'vitest';
import type { FileChange, FileSnapshot, OwnedRef, OwnershipPlan, Plan, RuntimeChange } from '../../src/plan/plan.js';
import { emptyOwnership, planFiles } from '../../src/plan/plan.js';
import { planRuntime } from '../../src/targets/linux/plan-runtime.js';
import type { AgentState, Owned, OwnedAddress } from '../../src/plan/record.js';
import { emptyState } from '../../src/plan/record.js';
import { planChanges } from '../../src/plan/plan.js';
import {
  retryDelayMs,
  stateAfterApply,
  stateAfterMetadataError,
  stateAfterRollback,
} from '../../src/plan/record-update.js';
import type { RenderedFile } from '../../src/render/types.js';
import {
  CLOUD_INIT_ETH0,
  ETH0_META,
  MAC0,
  MAC1,
  MANUAL_HASH,
  NOW_ISO,
  POLICY_FILES,
  SCRIPTS,
  SYSCTL_DROPIN,
  freshLive,
  manualDesired,
  manualOwned,
  manualState,
} from '../helpers/manual-guest.js';

const LATER = '2025-01-02T04:00:00.000Z';
const OTHER_HASH = 'f'.repeat(64);
const ETH0 = `${SCRIPTS}/ifcfg-eth0`;
const ETH1 = `${SCRIPTS}/ifcfg-eth1`;
const RULE1 = `${SCRIPTS}/rule-eth1`;
const OLD_AGENT_ETH1 =
  '# Managed by eip-agent: generated from instance metadata, local edits are replaced.\nDEVICE=eth1\nIPADDR0=10.0.0.9\n';
const HAND_ETH1 = 'DEVICE=eth1\nBOOTPROTO=dhcp\n';

const A3: OwnedAddress = { ifname: 'eth0', mac: MAC0, cidr: '10.0.0.3/24' };
const A7: OwnedAddress = { ifname: 'eth1', mac: MAC1, cidr: '10.0.0.7/24' };
const A8: OwnedAddress = { ifname: 'eth1', mac: MAC1, cidr: '10.0.0.8/24' };
const RULE8: OwnedRef = { kind: 'rule', item: { from: '10.0.0.8', table: 10001, priority: 30001 } };
const ROUTE_DEFAULT: OwnedRef = {
  kind: 'route',
  item: { table: 10001, spec: 'default via 10.0.0.1 dev eth1 table 10001', dev: 'eth1' },
};

/** Plan fields, plus the paths of the rendered files (desired.files). */
type PlanParts = Partial<Plan> & { rendered?: string[] };

function plan(parts: PlanParts): Plan {
  const { rendered = [], ...rest } = parts;
  const files: RenderedFile[] = rendered.map((path) => ({ path, mode: 0o644, content: POLICY_FILES[path] ?? '' }));
  return {
    target: 'centos',
    root: '/',
    files: [],
    runtime: [],
    warnings: [],
    runtimePlanned: true,
    desired: { files, runtime: null },
    ownership: emptyOwnership(),
    ...rest,
  };
}

function owned(parts: Partial<Owned>): Owned {
  return { addresses: [], rules: [], routes: [], files: [], ...parts };
}

function addAddress(item: OwnedAddress): RuntimeChange {
  return {
    kind: 'address',
    summary: `add ${item.cidr}`,
    batch: `address add ${item.cidr} dev ${item.ifname}`,
    undo: `address del ${item.cidr} dev ${item.ifname}`,
    owns: { kind: 'address', item },
  };
}

function delAddress(item: OwnedAddress): RuntimeChange {
  return {
    kind: 'address',
    summary: `remove ${item.cidr}`,
    batch: `address del ${item.cidr} dev ${item.ifname}`,
    undo: `address add ${item.cidr} dev ${item.ifname}`,
    releases: { kind: 'address', item },
  };
}

function sysctl(key: string, previous: string | null, value: string): RuntimeChange {
  return { kind: 'sysctl', summary: `sysctl ${key}`, sysctl: { key, value, previous } };
}

function file(path: string, action: FileChange['action'], previous: string | null, previousOwned = false): FileChange {
  return {
    path,
    mode: 0o644,
    content: action === 'remove' ? '' : (POLICY_FILES[path] ?? HAND_ETH1),
    action,
    previous,
    previousOwned,
  };
}

/** A state that has applied MANUAL_HASH successfully and owns `what`. */
function applied(what: Owned, extra: Partial<AgentState> = {}): AgentState {
  return {
    ...emptyState(),
    owned: what,
    primaryIfname: 'eth0',
    lastApply: { at: NOW_ISO, modelHash: MANUAL_HASH, ok: true },
    counters: { applies: 3, verifyFailures: 1, rollbacks: 1, metadataErrors: 2 },
    ...extra,
  };
}

describe('stateAfterApply', () => {
  it('records the first apply of the manual tree to a fresh guest: ownership, originals, snapshot, counters', () => {
    const desired = manualDesired();
    const snapshots = new Map<string, FileSnapshot>([
      [ETH0, { current: CLOUD_INIT_ETH0, meta: ETH0_META, bak: null, agentBakExists: false }],
    ]);
    const marks = planMarks(desired.runtime.marks, { tool: 'nft', listing: null }, emptyState(), []).change;
    expect(marks).toBeDefined();
    const runtime = [...planRuntime(desired, freshLive(), []), marks!];
    const fresh = plan({
      files: planFiles(desired.files, snapshots),
      runtime,
      desired,
      ownership: { ...emptyOwnership(), primaryIfname: 'eth0' },
    });
    expect(stateAfterApply(emptyState(), fresh, MANUAL_HASH, NOW_ISO)).toEqual(manualState());
  });

  it.each<[string, Owned, PlanParts, Owned]>([
    ['an added address', owned({ addresses: [A3] }), { runtime: [addAddress(A7)] }, owned({ addresses: [A3, A7] })],
    [
      'an address it owned and added again (someone deleted it)',
      owned({ addresses: [A3] }),
      { runtime: [addAddress(A3)] },
      owned({ addresses: [A3] }),
    ],
    [
      'a removed address',
      owned({ addresses: [A3, A7, A8] }),
      { runtime: [delAddress(A8)] },
      owned({ addresses: [A3, A7] }),
    ],
    [
      'forgotten items (gone with their interface)',
      manualOwned(),
      {
        ownership: { ...emptyOwnership(), forget: [{ kind: 'address', item: A8 }, RULE8, ROUTE_DEFAULT] },
        rendered: manualOwned().files,
      },
      {
        ...manualOwned(),
        addresses: [A3, A7],
        rules: manualOwned().rules.filter((r) => !(r.from === '10.0.0.8' && r.to === undefined)),
        routes: manualOwned().routes.slice(0, 1),
      },
    ],
    [
      'changes that own nothing (a link brought up, a main default route, a sysctl)',
      owned({ addresses: [A3] }),
      {
        runtime: [
          { kind: 'link', summary: 'bring eth1 up', batch: 'link set dev eth1 up', undo: 'link set dev eth1 down' },
          {
            kind: 'route',
            summary: 'add default',
            batch: 'route add default via 10.0.0.1 dev eth0',
            undo: 'route del default via 10.0.0.1 dev eth0',
          },
          sysctl('net.ipv4.conf.eth1.rp_filter', '1', '2'),
        ],
      },
      owned({ addresses: [A3] }),
    ],
  ])('tracks %s', (_name, before, parts, after) => {
    expect(stateAfterApply(applied(before), plan(parts), MANUAL_HASH, LATER).owned).toEqual(after);
  });

  it.each<[string, Partial<AgentState>, FileChange[], string[], string[], Record<string, string | null>]>([
    ['a created file: owned, originally absent', {}, [file(ETH1, 'create', null)], [ETH1], [ETH1], { [ETH1]: null }],
    [
      'a replaced file of the user: owned, original kept',
      {},
      [file(ETH1, 'update', HAND_ETH1)],
      [ETH1],
      [ETH1],
      { [ETH1]: HAND_ETH1 },
    ],
    [
      'a file whose original is recorded: the first original stays',
      { owned: owned({ files: [ETH1] }), originalFiles: { [ETH1]: HAND_ETH1 } },
      [file(ETH1, 'update', OLD_AGENT_ETH1, true)],
      [ETH1],
      [ETH1],
      { [ETH1]: HAND_ETH1 },
    ],
    [
      'a file the agent wrote before it kept state: owned, no original',
      {},
      [file(ETH1, 'update', OLD_AGENT_ETH1, true)],
      [ETH1],
      [ETH1],
      {},
    ],
    [
      'an unchanged owned file',
      { owned: owned({ files: [ETH1] }), originalFiles: { [ETH1]: null } },
      [file(ETH1, 'unchanged', POLICY_FILES[ETH1] ?? '', true)],
      [ETH1],
      [ETH1],
      { [ETH1]: null },
    ],
    [
      'a removed file: no longer owned, its original kept',
      { owned: owned({ files: [ETH0, ETH1] }), originalFiles: { [ETH0]: CLOUD_INIT_ETH0, [ETH1]: null } },
      [file(ETH1, 'remove', POLICY_FILES[ETH1] ?? '', true)],
      [ETH0],
      [ETH0],
      { [ETH0]: CLOUD_INIT_ETH0, [ETH1]: null },
    ],
    [
      'a file put back to its original: no longer owned',
      { owned: owned({ files: [ETH0, ETH1] }), originalFiles: { [ETH0]: CLOUD_INIT_ETH0, [ETH1]: HAND_ETH1 } },
      [file(ETH1, 'update', POLICY_FILES[ETH1] ?? '', true)],
      [ETH0],
      [ETH0],
      { [ETH0]: CLOUD_INIT_ETH0, [ETH1]: HAND_ETH1 },
    ],
    [
      'several files, listed sorted',
      { owned: owned({ files: [SYSCTL_DROPIN] }) },
      [file(RULE1, 'create', null), file(ETH0, 'update', CLOUD_INIT_ETH0)],
      [SYSCTL_DROPIN, RULE1, ETH0],
      [ETH0, RULE1, SYSCTL_DROPIN],
      { [RULE1]: null, [ETH0]: CLOUD_INIT_ETH0 },
    ],
  ])('tracks %s', (_name, before, files, rendered, ownedFiles, originals) => {
    const next = stateAfterApply({ ...emptyState(), ...before }, plan({ files, rendered }), MANUAL_HASH, LATER);
    expect(next.owned.files).toEqual(ownedFiles);
    expect(next.originalFiles).toEqual(originals);
  });

  it("records a sysctl's original value the first time only, and never a missing one", () => {
    const state: AgentState = { ...emptyState(), originalSysctls: { 'net.ipv4.conf.default.rp_filter': '1' } };
    const runtime = [
      sysctl('net.ipv4.conf.default.rp_filter', '2', '0'),
      sysctl('net.ipv4.conf.eth1.rp_filter', '1', '0'),
      sysctl('net.ipv4.conf.eth2.rp_filter', null, '0'),
    ];
    expect(stateAfterApply(state, plan({ runtime }), MANUAL_HASH, LATER).originalSysctls).toEqual({
      'net.ipv4.conf.default.rp_filter': '1',
      'net.ipv4.conf.eth1.rp_filter': '1',
    });
  });

  it.each<[string, OwnershipPlan, RuntimeChange[], string[]]>([
    [
      'keys of owned items',
      { ...emptyOwnership(), absentNow: [`address 10.0.0.8/24 ${MAC1}`, 'rule 10.0.0.8 10001', `file ${ETH1}`] },
      [],
      [`address 10.0.0.8/24 ${MAC1}`, 'rule 10.0.0.8 10001', `file ${ETH1}`],
    ],
    ['no key: the previous absences are dropped', emptyOwnership(), [], []],
    [
      'a key of an item it does not own',
      { ...emptyOwnership(), absentNow: ['address 192.168.7.7/24 52:54:00:8a:7a:64', `file ${SCRIPTS}/route-eth9`] },
      [],
      [],
    ],
    [
      'a key of an item forgotten by the same plan',
      { ...emptyOwnership(), absentNow: ['rule 10.0.0.8 10001'], forget: [RULE8] },
      [],
      [],
    ],
    [
      'a key of an item removed by the same plan',
      { ...emptyOwnership(), absentNow: [`address 10.0.0.8/24 ${MAC1}`] },
      [delAddress(A8)],
      [],
    ],
  ])('keeps as absentOnce the absentNow %s', (_name, ownership, runtime, absentOnce) => {
    const state = applied(manualOwned(), { absentOnce: ['rule 10.0.0.7 10001'] });
    expect(
      stateAfterApply(state, plan({ ownership, runtime, rendered: manualOwned().files }), MANUAL_HASH, LATER)
        .absentOnce,
    ).toEqual(absentOnce);
  });

  it('takes a snapshot that undoes the apply: previous files, undo lines last first, previous sysctls, what it owned', () => {
    const before = applied(owned({ addresses: [A3, A8], files: [ETH1] }), {
      lastSnapshot: { at: NOW_ISO, files: {}, runtimeUndo: ['x'], sysctls: {}, ownedBefore: owned({}) },
    });
    const linkUp: RuntimeChange = {
      kind: 'link',
      summary: 'bring eth1 up',
      batch: 'link set dev eth1 up',
      undo: 'link set dev eth1 down',
    };
    const runtime = [delAddress(A8), addAddress(A7), linkUp, sysctl('net.ipv4.conf.eth1.rp_filter', '1', '2')];
    const files = [
      file(ETH0, 'unchanged', POLICY_FILES[ETH0] ?? '', true),
      file(ETH1, 'update', OLD_AGENT_ETH1, true),
      file(RULE1, 'create', null),
      file(`${SCRIPTS}/route-eth9`, 'remove', 'old\n', true),
    ];
    const next = stateAfterApply(before, plan({ runtime, files, rendered: [ETH0, ETH1, RULE1] }), OTHER_HASH, LATER);
    expect(next.lastSnapshot).toEqual({
      at: LATER,
      files: { [ETH1]: OLD_AGENT_ETH1, [RULE1]: null, [`${SCRIPTS}/route-eth9`]: 'old\n' },
      runtimeUndo: ['link set dev eth1 down', 'address del 10.0.0.7/24 dev eth1', 'address add 10.0.0.8/24 dev eth1'],
      sysctls: { 'net.ipv4.conf.eth1.rp_filter': '1' },
      ownedBefore: owned({ addresses: [A3, A8], files: [ETH1] }),
    });
    expect(next.lastApply).toEqual({ at: LATER, modelHash: OTHER_HASH, ok: true });
    expect(next.counters).toEqual({ applies: 4, verifyFailures: 1, rollbacks: 1, metadataErrors: 2 });
  });

  it('changes nothing, not even lastApply, when nothing changed and the model is the one applied last', () => {
    const state = applied(manualOwned(), {
      originalFiles: { [ETH0]: CLOUD_INIT_ETH0 },
      lastSnapshot: manualState().lastSnapshot,
    });
    const quiet = plan({
      files: [file(ETH0, 'unchanged', POLICY_FILES[ETH0] ?? '', true)],
      rendered: manualOwned().files,
      ownership: { ...emptyOwnership(), primaryIfname: 'eth0' },
    });
    const next = stateAfterApply(state, quiet, MANUAL_HASH, LATER);
    expect(planChanges(quiet)).toBe(false);
    expect(next).toEqual(state);
    // The pipeline saves the state only when its JSON differs.
    expect(JSON.stringify(next)).toBe(JSON.stringify(state));
  });

  const settled = (): AgentState => applied(manualOwned(), { lastSnapshot: manualState().lastSnapshot });
  const withoutLastApply = (): AgentState => {
    const state = settled();
    delete state.lastApply;
    return state;
  };

  it.each<[string, AgentState, string]>([
    ['another model that needs no change', settled(), OTHER_HASH],
    [
      'the same model after a failed apply of it',
      { ...settled(), failedModelHash: MANUAL_HASH, lastApply: { at: NOW_ISO, modelHash: MANUAL_HASH, ok: false } },
      MANUAL_HASH,
    ],
    ['a state that records no apply (after a rollback)', withoutLastApply(), MANUAL_HASH],
  ])('records lastApply but no snapshot or count when nothing changed for %s', (_name, state, hash) => {
    const next = stateAfterApply(state, plan({ rendered: manualOwned().files }), hash, LATER);
    const expected: AgentState = {
      ...state,
      lastApply: { at: LATER, modelHash: hash, ok: true },
      lastSuccessAt: LATER,
    };
    delete expected.failedModelHash;
    expect(next).toEqual(expected);
  });

  it('forgets that a model failed once an apply succeeds', () => {
    const state = applied(owned({}), { failedModelHash: OTHER_HASH });
    const next = stateAfterApply(state, plan({ runtime: [addAddress(A3)] }), MANUAL_HASH, LATER);
    expect(next.failedModelHash).toBeUndefined();
    expect('failedModelHash' in next).toBe(false);
  });
});

describe('ownership through an apply', () => {
  const address = (i: number): OwnedAddress => ({ ifname: 'eth1', mac: MAC1, cidr: `10.0.${i >> 8}.${i & 255}/16` });

  it('keeps the order of what it owned: an item released and owned again goes last, a released one leaves', () => {
    const A9: OwnedAddress = { ifname: 'eth1', mac: MAC1, cidr: '10.0.0.9/24' };
    const before = applied(owned({ addresses: [A3, A7, A8] }));
    const runtime = [delAddress(A7), addAddress(A7), delAddress(A8), addAddress(A9)];
    expect(stateAfterApply(before, plan({ runtime }), MANUAL_HASH, LATER).owned.addresses).toEqual([A3, A7, A9]);
  });

  it('takes each of 240 edits, as one list edited an item at a time would', () => {
    const before = applied(owned({ addresses: Array.from({ length: 240 }, (_, i) => address(i)) }));
    // Every third released, every fifth released and owned again (last), then 40 new ones owned.
    const runtime = [
      ...Array.from({ length: 240 }, (_, i) => i).flatMap((i) =>
        i % 3 === 0 ? [delAddress(address(i))] : i % 5 === 0 ? [delAddress(address(i)), addAddress(address(i))] : [],
      ),
      ...Array.from({ length: 40 }, (_, i) => addAddress(address(1000 + i))),
    ];
    let expected = before.owned.addresses;
    for (const change of runtime) {
      const ref = (change.releases ?? change.owns)?.item as OwnedAddress;
      expected = expected.filter((a) => a.cidr !== ref.cidr);
      if (change.owns !== undefined) expected = [...expected, ref];
    }
    const after = stateAfterApply(before, plan({ runtime }), MANUAL_HASH, LATER).owned.addresses;
    expect(after).toEqual(expected);
    expect(after).toHaveLength(240 - 80 + 40);
  });
});

describe('stateAfterRollback', () => {
  it('remembers the failed model with a retry time, counts the failure, and keeps ownership and the last snapshot', () => {
    const state = applied(manualOwned(), {
      absentOnce: ['rule 10.0.0.8 10001'],
      originalFiles: { [ETH0]: CLOUD_INIT_ETH0 },
      lastSnapshot: manualState().lastSnapshot,
    });
    // The read behind the failed apply still found the rule absent (not yet confirmed: this read is its first).
    const read = plan({ ownership: { ...emptyOwnership(), absentNow: ['rule 10.0.0.8 10001'] } });
    const once = stateAfterRollback(
      state,
      read,
      [],
      OTHER_HASH,
      LATER,
      'verification failed (ping 10.0.0.1 from 10.0.0.2 (eth0)); rolled back',
    );
    expect(once).toEqual<AgentState>({
      ...state,
      failedModelHash: OTHER_HASH,
      failedAttempts: 1,
      retryAfter: '2025-01-02T04:00:30.000Z',
      lastApply: { at: LATER, modelHash: OTHER_HASH, ok: false },
      lastError: { at: LATER, message: 'verification failed (ping 10.0.0.1 from 10.0.0.2 (eth0)); rolled back' },
      counters: { applies: 3, verifyFailures: 2, rollbacks: 2, metadataErrors: 2 },
    });
    const twice = stateAfterRollback(once, read, [], OTHER_HASH, LATER, 'again');
    expect(twice.counters).toEqual({ applies: 3, verifyFailures: 3, rollbacks: 3, metadataErrors: 2 });
    expect([twice.failedAttempts, twice.retryAfter]).toEqual([2, '2025-01-02T04:01:00.000Z']);
  });

  it.each<[number, number]>([
    [1, 30_000],
    [2, 60_000],
    [5, 480_000],
    [6, 900_000],
    [40, 900_000],
  ])('after %i failures in a row the model is tried again after %i ms', (attempts, ms) => {
    expect(retryDelayMs(attempts)).toBe(ms);
  });

  it('a different model starts the backoff over; a verified apply forgets the failure', () => {
    const failedTwice = applied(manualOwned(), { failedModelHash: MANUAL_HASH, failedAttempts: 2, retryAfter: LATER });
    expect(stateAfterRollback(failedTwice, plan({}), [], OTHER_HASH, LATER, 'x').failedAttempts).toBe(1);
    const ok = stateAfterApply(failedTwice, plan({ runtime: [addAddress(A7)] }), OTHER_HASH, LATER);
    expect([ok.failedModelHash, ok.failedAttempts, ok.retryAfter]).toEqual([undefined, undefined, undefined]);
  });

  it('a removal two reads agreed on stays done through the rollback: released, and undone only by `rollback`', () => {
    const state = applied(owned({ addresses: [A3, A7, A8] }), { absentOnce: [`address 10.0.0.8/24 ${MAC1}`] });
    const removal = delAddress(A8);
    const read = plan({ runtime: [removal, addAddress({ ifname: 'eth1', mac: MAC1, cidr: '10.0.0.9/24' })] });
    const next = stateAfterRollback(state, read, [removal], OTHER_HASH, LATER, 'verification failed');
    expect(next.owned.addresses).toEqual([A3, A7]);
    expect(next.absentOnce).toEqual([]);
    expect(next.lastSnapshot).toEqual({
      at: LATER,
      files: {},
      runtimeUndo: ['address add 10.0.0.8/24 dev eth1'],
      sysctls: {},
      ownedBefore: state.owned,
    });
  });
});

describe('a removal and the apply that marked it pending are one rollback record', () => {
  it('the first read rewrites ifcfg-eth1 and marks 10.0.0.8 pending; the second removes it live; the snapshot undoes both', () => {
    const start = applied(owned({ addresses: [A3, A7, A8], files: [ETH1] }));
    const first = plan({
      files: [{ ...file(ETH1, 'update', 'ETH1 WITH 10.0.0.8', true) }],
      rendered: [ETH1],
      ownership: {
        ...emptyOwnership(),
        absentNow: [`address 10.0.0.8/24 ${MAC1}`],
        pending: ['remove 10.0.0.8/24 from eth1'],
      },
    });
    const afterFirst = stateAfterApply(start, first, OTHER_HASH, NOW_ISO);
    expect(afterFirst.lastSnapshot?.pending).toEqual([`address 10.0.0.8/24 ${MAC1}`]);
    const second = plan({ runtime: [delAddress(A8)], rendered: [ETH1] });
    const afterSecond = stateAfterApply(afterFirst, second, OTHER_HASH, LATER);
    expect(afterSecond.owned.addresses).toEqual([A3, A7]);
    expect(afterSecond.lastSnapshot).toEqual({
      at: LATER,
      files: { [ETH1]: 'ETH1 WITH 10.0.0.8' },
      runtimeUndo: ['address add 10.0.0.8/24 dev eth1'],
      sysctls: {},
      ownedBefore: start.owned,
    });
  });

  it('an apply whose removals nobody marked in its record keeps a record of its own', () => {
    const start = applied(owned({ addresses: [A3, A7, A8] }), {
      absentOnce: [`address 10.0.0.8/24 ${MAC1}`],
      lastSnapshot: { ...manualState().lastSnapshot!, pending: ['rule 10.0.0.7 10001'] },
    });
    const next = stateAfterApply(start, plan({ runtime: [delAddress(A8)] }), OTHER_HASH, LATER);
    expect(next.lastSnapshot).toEqual({
      at: LATER,
      files: {},
      runtimeUndo: ['address add 10.0.0.8/24 dev eth1'],
      sysctls: {},
      ownedBefore: start.owned,
    });
  });
});

describe('stateAfterMetadataError', () => {
  it('records and counts the error and nothing else', () => {
    const state = applied(manualOwned(), { absentOnce: ['rule 10.0.0.8 10001'] });
    expect(stateAfterMetadataError(state, LATER, 'metadata: mac: not found (404)')).toEqual({
      ...state,
      lastError: { at: LATER, message: 'metadata: mac: not found (404)' },
      counters: { ...state.counters, metadataErrors: state.counters.metadataErrors + 1 },
    });
  });
});

describe('planChanges', () => {
  it.each<[string, PlanParts, boolean]>([
    ['an empty plan', {}, false],
    ['unchanged files only', { files: [file(ETH0, 'unchanged', 'x', true)] }, false],
    ['a file to remove', { files: [file(ETH1, 'remove', 'x', true)] }, true],
    ['a runtime change', { runtime: [addAddress(A3)] }, true],
    [
      'pending removals only',
      { ownership: { ...emptyOwnership(), absentNow: ['rule 10.0.0.8 10001'], pending: ['remove rule'] } },
      false,
    ],
  ])('says whether %s changes anything', (_name, parts, expected) => {
    expect(planChanges(plan(parts))).toBe(expected);
  });
});
