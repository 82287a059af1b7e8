import type { OwnedRef, Plan, RuntimeChange } from './plan.js';
import { planChanges, undoLines } from './plan.js';
import type { AgentState, Owned, Snapshot } from './record.js';
import { ownedKey } from './record.js';

function keyOf(ref: OwnedRef): string {
  switch (ref.kind) {
    case 'address':
      return ownedKey.address(ref.item);
    case 'rule':
      return ownedKey.rule(ref.item);
    case 'route':
      return ownedKey.route(ref.item);
    case 'marks':
      return 'marks';
  }
}

function ownedKeys(owned: Owned): Set<string> {
  return new Set([
    ...owned.addresses.map(ownedKey.address),
    ...owned.rules.map(ownedKey.rule),
    ...owned.routes.map(ownedKey.route),
    ...owned.files.map(ownedKey.file),
    ...(owned.marks ?? []).map(ownedKey.mark),
  ]);
}

/** Removes the item under `key`; with `item`, adds it back last (as a filter and a push would). */
function edit<T>(items: Map<string, T>, key: string, item: T | undefined): void {
  items.delete(key);
  if (item !== undefined) items.set(key, item);
}

/**
 * `owned` with each ref removed, or added (last) when its flag is true. Keyed once: a plan of 240 addresses makes about
 * 700 edits, which filtering the lists for each would make quadratic (tens of MB of keys built for one apply).
 */
function withRefs(owned: Owned, edits: Iterable<readonly [OwnedRef, boolean]>): Owned {
  const addresses = new Map(owned.addresses.map((a) => [ownedKey.address(a), a]));
  const rules = new Map(owned.rules.map((r) => [ownedKey.rule(r), r]));
  const routes = new Map(owned.routes.map((r) => [ownedKey.route(r), r]));
  let marks = owned.marks;
  for (const [ref, add] of edits) {
    if (ref.kind === 'marks') marks = add && ref.item.length > 0 ? ref.item : undefined;
    else if (ref.kind === 'address') edit(addresses, keyOf(ref), add ? ref.item : undefined);
    else if (ref.kind === 'rule') edit(rules, keyOf(ref), add ? ref.item : undefined);
    else edit(routes, keyOf(ref), add ? ref.item : undefined);
  }
  return {
    addresses: [...addresses.values()],
    rules: [...rules.values()],
    routes: [...routes.values()],
    files: owned.files,
    ...(marks !== undefined ? { marks } : {}),
  };
}

/** The edits of ownership a plan makes: what it forgets, then what each change releases and owns. */
function* ownershipEdits(plan: Plan): Generator<readonly [OwnedRef, boolean]> {
  for (const ref of plan.ownership.forget) yield [ref, false];
  for (const change of plan.runtime) {
    if (change.releases) yield [change.releases, false];
    if (change.owns) yield [change.owns, true];
  }
}

/**
 * The state after a plan was applied and verified: what the agent owns now, what is pending
 * removal, the originals it must be able to restore, and a snapshot that undoes this apply. Pure.
 */
export function stateAfterApply(state: AgentState, plan: Plan, modelHash: string, now: string): AgentState {
  let owned = withRefs(structuredClone(state.owned), ownershipEdits(plan));
  const rendered = new Set(plan.desired.files.map((f) => f.path));
  const changedFiles = plan.files.filter((f) => f.action !== 'unchanged');
  const files = new Set(owned.files.filter((p) => !plan.ownership.forgetFiles.includes(p)));
  for (const f of changedFiles) {
    if (rendered.has(f.path)) files.add(f.path);
    else files.delete(f.path); // removed, or its original restored: no longer the agent's
  }
  owned = { ...owned, files: [...files].sort() };

  const originalFiles = { ...state.originalFiles };
  const originalMeta = { ...state.originalMeta };
  for (const f of changedFiles) {
    if (!(f.path in originalFiles) && !f.previousOwned) {
      originalFiles[f.path] = f.previous;
      if (f.previousMeta !== undefined) originalMeta[f.path] = f.previousMeta;
    }
    // The backup is the agent's own file: putting the original back removes it.
    if (f.backupPath !== undefined && !(f.backupPath in originalFiles)) originalFiles[f.backupPath] = null;
  }
  const originalSysctls = { ...state.originalSysctls };
  for (const c of plan.runtime)
    if (c.sysctl?.previous != null && !(c.sysctl.key in originalSysctls))
      originalSysctls[c.sysctl.key] = c.sysctl.previous;

  const stillOwned = ownedKeys(owned);
  const next: AgentState = {
    ...state,
    owned,
    absentOnce: plan.ownership.absentNow.filter((k) => stillOwned.has(k)),
    originalFiles,
    originalSysctls,
    ...(Object.keys(originalMeta).length > 0 ? { originalMeta } : {}),
  };
  delete next.failedModelHash;
  delete next.failedAttempts;
  delete next.retryAfter;
  if (plan.ownership.primaryIfname) next.primaryIfname = plan.ownership.primaryIfname;
  if (!planChanges(plan) && state.lastApply?.ok && state.lastApply.modelHash === modelHash) return next;
  if (planChanges(plan)) {
    const snapshot: Snapshot = {
      at: now,
      files: Object.fromEntries(
        changedFiles.flatMap((f) => [
          [f.path, f.previous],
          ...(f.backupPath !== undefined ? [[f.backupPath, null]] : []),
        ]),
      ),
      runtimeUndo: undoLines(plan.runtime),
      sysctls: Object.fromEntries(
        plan.runtime.flatMap((c) => (c.sysctl?.previous != null ? [[c.sysctl.key, c.sysctl.previous]] : [])),
      ),
      ownedBefore: state.owned,
    };
    const marks = plan.runtime.find((c) => c.marks !== undefined)?.marks;
    if (marks !== undefined) {
      snapshot.marksUndo = marks.undo;
      if (marks.tool === 'iptables') snapshot.marksTool = 'iptables';
    }
    const meta = Object.fromEntries(
      changedFiles.flatMap((f) => (f.previousMeta !== undefined ? [[f.path, f.previousMeta]] : [])),
    );
    if (Object.keys(meta).length > 0) snapshot.meta = meta;
    if (plan.ownership.absentNow.length > 0) snapshot.pending = [...plan.ownership.absentNow];
    next.lastSnapshot = joinedSnapshot(state, confirmedRemovals(state, plan), snapshot);
    next.counters = { ...state.counters, applies: state.counters.applies + 1 };
  }
  next.lastApply = { at: now, modelHash, ok: true };
  next.lastSuccessAt = now;
  return next;
}

/** Keys of the owned items these changes remove. */
function releasedKeys(changes: readonly RuntimeChange[]): string[] {
  return changes.flatMap((c) => (c.releases !== undefined ? [keyOf(c.releases)] : []));
}

/** Keys of the removals this plan carries out that an earlier read marked pending (two reads agreed). */
function confirmedRemovals(state: AgentState, plan: Plan): string[] {
  const confirmed = new Set(state.absentOnce);
  const runtime = releasedKeys(plan.runtime);
  const files = plan.files.filter((f) => f.previousOwned && f.action !== 'unchanged').map((f) => ownedKey.file(f.path));
  return [...runtime, ...files].filter((k) => confirmed.has(k));
}

/**
 * A removal happens in two applies: the first read rewrites the files and marks the item pending, the second removes
 * it live. So that `rollback` puts back files and live state together (a reboot then brings back what it reported),
 * the apply that carries out such a removal joins the record of the apply that marked it: one snapshot undoes both.
 */
function joinedSnapshot(state: AgentState, confirmed: readonly string[], snapshot: Snapshot): Snapshot {
  const earlier = state.lastSnapshot;
  if (earlier?.pending === undefined || !confirmed.some((k) => earlier.pending?.includes(k))) return snapshot;
  const meta = { ...snapshot.meta, ...earlier.meta };
  return {
    at: snapshot.at,
    // What was there before the earlier apply is what a rollback of both puts back.
    files: { ...snapshot.files, ...earlier.files },
    runtimeUndo: [...snapshot.runtimeUndo, ...earlier.runtimeUndo],
    sysctls: { ...snapshot.sysctls, ...earlier.sysctls },
    // The marks as they were before the earlier apply, when it changed them; else as before this one.
    ...marksUndoOf(earlier.marksUndo !== undefined ? earlier : snapshot),
    ...(Object.keys(meta).length > 0 ? { meta } : {}),
    ownedBefore: earlier.ownedBefore,
    ...(snapshot.pending !== undefined ? { pending: snapshot.pending } : {}),
  };
}

/** A snapshot's marks undo with its tool, to copy into another. */
function marksUndoOf(snap: Snapshot): Pick<Snapshot, 'marksUndo' | 'marksTool'> {
  return {
    ...(snap.marksUndo !== undefined ? { marksUndo: snap.marksUndo } : {}),
    ...(snap.marksTool !== undefined ? { marksTool: snap.marksTool } : {}),
  };
}

/** First wait before a model that failed verification is tried again; it doubles with each failure in a row. */
export const RETRY_BASE_MS = 30_000;
/** The longest wait between two tries of a model that keeps failing verification. */
export const RETRY_MAX_MS = 15 * 60_000;

/** The wait after `attempts` failed verifications of one model in a row. */
export function retryDelayMs(attempts: number): number {
  return Math.min(RETRY_BASE_MS * 2 ** Math.max(0, attempts - 1), RETRY_MAX_MS);
}

/**
 * The state after an apply whose verification failed and was undone: the model is tried again after a backoff (not
 * frozen until the metadata changes). What the read said about removals still counts: pending items stay recorded as
 * seen absent, and removals two reads agreed on (`kept`, which the undo left done) are the agent's no longer, with a
 * record that `rollback` can undo. Pure.
 */
export function stateAfterRollback(
  state: AgentState,
  plan: Plan,
  kept: readonly RuntimeChange[],
  modelHash: string,
  now: string,
  message: string,
): AgentState {
  const owned = withRefs(
    structuredClone(state.owned),
    kept.flatMap((change) => (change.releases !== undefined ? [[change.releases, false] as const] : [])),
  );
  const stillOwned = ownedKeys(owned);
  const attempts = state.failedModelHash === modelHash ? (state.failedAttempts ?? 1) + 1 : 1;
  const next: AgentState = {
    ...state,
    owned,
    // Seen absent by this read, or confirmed by it and put back by the undo (an owned file): the next read agrees or not.
    absentOnce: [...new Set([...plan.ownership.absentNow, ...confirmedRemovals(state, plan)])].filter((k) =>
      stillOwned.has(k),
    ),
    failedModelHash: modelHash,
    failedAttempts: attempts,
    retryAfter: new Date(Date.parse(now) + retryDelayMs(attempts)).toISOString(),
    lastApply: { at: now, modelHash, ok: false },
    lastError: { at: now, message },
    counters: {
      ...state.counters,
      verifyFailures: state.counters.verifyFailures + 1,
      rollbacks: state.counters.rollbacks + 1,
    },
  };
  if (kept.length > 0) {
    const snapshot: Snapshot = {
      at: now,
      files: {},
      runtimeUndo: undoLines(kept),
      sysctls: {},
      ownedBefore: state.owned,
    };
    next.lastSnapshot = joinedSnapshot(state, releasedKeys(kept), snapshot);
  }
  return next;
}

/** The state after a metadata read failed: nothing changed, the error is counted and kept for status. */
export function stateAfterMetadataError(state: AgentState, now: string, message: string): AgentState {
  return {
    ...state,
    lastError: { at: now, message },
    counters: { ...state.counters, metadataErrors: state.counters.metadataErrors + 1 },
  };
}

function union<T>(a: readonly T[], b: readonly T[], key: (item: T) => string): T[] {
  const seen = new Set(a.map(key));
  return [...a, ...b.filter((item) => !seen.has(key(item)))];
}

/**
 * The state to record just before a plan is applied: everything the agent owns now plus everything
 * the plan may add, with the originals it replaces. If the agent is killed half-way, the next run
 * still knows what it may have added (an item that never made it is simply found absent). Pure.
 */
export function stateBeforeApply(state: AgentState, plan: Plan): AgentState {
  const after = stateAfterApply(state, plan, state.lastApply?.modelHash ?? '', state.lastApply?.at ?? '');
  const owned: Owned = {
    addresses: union(state.owned.addresses, after.owned.addresses, ownedKey.address),
    rules: union(state.owned.rules, after.owned.rules, ownedKey.rule),
    routes: union(state.owned.routes, after.owned.routes, ownedKey.route),
    files: union(state.owned.files, after.owned.files, (p) => p).sort(),
  };
  const marks = union(state.owned.marks ?? [], after.owned.marks ?? [], ownedKey.mark);
  if (marks.length > 0) owned.marks = marks;
  return {
    ...state,
    owned,
    originalFiles: after.originalFiles,
    originalSysctls: after.originalSysctls,
    ...(after.originalMeta !== undefined ? { originalMeta: after.originalMeta } : {}),
  };
}
