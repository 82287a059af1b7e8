import type { OwnedRef, Plan } from './plan.js';
import { planChanges } from './plan.js';
import type { AgentState, Owned, Snapshot } from './state.js';
import { ownedKey } from './state.js';

function keyOf(ref: OwnedRef): string {
  switch (ref.kind) {
    case 'address':
      return ownedKey.address(ref.item);
    case 'rule':
      return ownedKey.rule(ref.item);
    case 'route':
      return ownedKey.route(ref.item);
  }
}

function ownedKeys(owned: Owned): Set<string> {
  return new Set([...owned.addresses.map(ownedKey.address), ...owned.rules.map(ownedKey.rule), ...owned.routes.map(ownedKey.route), ...owned.files.map(ownedKey.file)]);
}

function withRef(owned: Owned, ref: OwnedRef, add: boolean): Owned {
  const key = keyOf(ref);
  const next: Owned = {
    addresses: owned.addresses.filter((a) => ownedKey.address(a) !== key),
    rules: owned.rules.filter((r) => ownedKey.rule(r) !== key),
    routes: owned.routes.filter((r) => ownedKey.route(r) !== key),
    files: owned.files,
  };
  if (!add) return next;
  if (ref.kind === 'address') next.addresses.push(ref.item);
  if (ref.kind === 'rule') next.rules.push(ref.item);
  if (ref.kind === 'route') next.routes.push(ref.item);
  return next;
}

/**
 * The state after a plan was applied and verified: what the agent owns now, what is pending
 * removal, the originals it must be able to restore, and a snapshot that undoes this apply. Pure.
 */
export function stateAfterApply(state: AgentState, plan: Plan, modelHash: string, now: string): AgentState {
  let owned: Owned = structuredClone(state.owned);
  for (const ref of plan.ownership.forget) owned = withRef(owned, ref, false);
  for (const change of plan.runtime) {
    if (change.releases) owned = withRef(owned, change.releases, false);
    if (change.owns) owned = withRef(owned, change.owns, true);
  }
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
  for (const c of plan.runtime) if (c.sysctl?.previous != null && !(c.sysctl.key in originalSysctls)) originalSysctls[c.sysctl.key] = c.sysctl.previous;

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
  if (plan.ownership.primaryIfname) next.primaryIfname = plan.ownership.primaryIfname;
  if (!planChanges(plan) && state.lastApply?.ok && state.lastApply.modelHash === modelHash) return next;
  if (planChanges(plan)) {
    const snapshot: Snapshot = {
      at: now,
      files: Object.fromEntries(changedFiles.flatMap((f) => [[f.path, f.previous], ...(f.backupPath !== undefined ? [[f.backupPath, null]] : [])])),
      runtimeUndo: plan.runtime.flatMap((c) => (c.undo !== undefined ? [c.undo] : [])).reverse(),
      sysctls: Object.fromEntries(plan.runtime.flatMap((c) => (c.sysctl?.previous != null ? [[c.sysctl.key, c.sysctl.previous]] : []))),
      ownedBefore: state.owned,
    };
    const meta = Object.fromEntries(changedFiles.flatMap((f) => (f.previousMeta !== undefined ? [[f.path, f.previousMeta]] : [])));
    if (Object.keys(meta).length > 0) snapshot.meta = meta;
    next.lastSnapshot = snapshot;
    next.counters = { ...state.counters, applies: state.counters.applies + 1 };
  }
  next.lastApply = { at: now, modelHash, ok: true };
  next.lastSuccessAt = now;
  return next;
}

/** The state after an apply whose verification failed and was undone: remember not to retry the same model. */
export function stateAfterRollback(state: AgentState, modelHash: string, now: string, message: string): AgentState {
  return {
    ...state,
    failedModelHash: modelHash,
    lastApply: { at: now, modelHash, ok: false },
    lastError: { at: now, message },
    counters: { ...state.counters, verifyFailures: state.counters.verifyFailures + 1, rollbacks: state.counters.rollbacks + 1 },
  };
}

/** The state after a metadata read failed: nothing changed, the error is counted and kept for status. */
export function stateAfterMetadataError(state: AgentState, now: string, message: string): AgentState {
  return { ...state, lastError: { at: now, message }, counters: { ...state.counters, metadataErrors: state.counters.metadataErrors + 1 } };
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
  return { ...state, owned, originalFiles: after.originalFiles, originalSysctls: after.originalSysctls, ...(after.originalMeta !== undefined ? { originalMeta: after.originalMeta } : {}) };
}
