// The whole flow on one screen: metadata -> model -> plan (render + diff) -> apply -> verify.
import { hexDigest } from './host/digest.js';
import type { Plan } from './plan/plan.js';
import { SETTINGS, type ReloadMode } from './settings.js';
import type { Host } from './host/host.js';
import { fileMetadataSource, httpMetadataSource } from './metadata/index.js';
import type { MetadataSource, MetaTree } from './metadata/tree.js';
import { buildModel } from './model/index.js';
import { withoutIgnoredNics } from './model/ignore.js';
import { listingsOf } from './metadata/walker.js';
import type { InstanceModel } from './model/types.js';
import type { ApplyOutcome, Target, TargetOptions } from './targets/index.js';
import { getTarget } from './targets/index.js';
import type { TargetName } from './targets/target.js';
import type { Check, VerifyReport } from './plan/verify-report.js';
import { loadState, restoreState, saveState, type AgentState } from './plan/record.js';
import { stateAfterApply, stateAfterRollback, stateBeforeApply } from './plan/record-update.js';
import { requirePrivileges } from './plan/privileges.js';
import { AgentError, ApplyError } from './errors.js';

/** Everything one run of the pipeline needs to know. */
export interface PipelineOptions extends TargetOptions {
  target: TargetName;
  metadataUrl: string;
  metadataFile?: string;
  metadataTimeoutMs?: number;
  metadataConcurrency?: number;
  metadataRetries?: number;
  /** Largest metadata answer accepted, in bytes. */
  metadataMaxBytes?: number;
  reload: ReloadMode;
  /** MACs (lower-case) of secondary NICs the agent leaves alone. */
  ignoreNics?: readonly string[];
}

/** The metadata source the options select: a JSON file for offline previews, else HTTP. */
export function metadataSource(host: Host, options: PipelineOptions): MetadataSource {
  if (options.metadataFile !== undefined) return fileMetadataSource(host, options.metadataFile);
  return httpMetadataSource(host, {
    baseUrl: options.metadataUrl,
    ...(options.metadataTimeoutMs !== undefined ? { timeoutMs: options.metadataTimeoutMs } : {}),
    ...(options.metadataConcurrency !== undefined ? { concurrency: options.metadataConcurrency } : {}),
    ...(options.metadataRetries !== undefined ? { retries: options.metadataRetries } : {}),
    ...(options.metadataMaxBytes !== undefined ? { maxBytes: options.metadataMaxBytes } : {}),
  });
}

/** Reads and validates the metadata. */
export async function readModel(host: Host, options: PipelineOptions): Promise<InstanceModel> {
  return (await readModelAndListings(host, options)).model;
}

/**
 * Reads and validates the metadata, and returns its listings (see metadataListings) and the raw tree with it. With
 * `previous` (the tree of an earlier complete read) it is a refresh where the source offers one (see MetadataSource).
 * `source` is the options' own unless a caller that reads again and again keeps one.
 */
export async function readModelAndListings(
  host: Host,
  options: PipelineOptions,
  previous?: MetaTree,
  source: MetadataSource = metadataSource(host, options),
): Promise<{ model: InstanceModel; listings: string; tree: MetaTree }> {
  const tree =
    previous !== undefined && source.refresh !== undefined ? await source.refresh(previous) : await source.read();
  host.collectGarbage?.();
  return { model: withoutIgnoredNics(buildModel(tree), options.ignoreNics ?? []), listings: listingsOf(tree), tree };
}

/**
 * Only the metadata's listings (eth0's MAC, the NICs, each NIC's private IPs), in a few requests;
 * equal to the `listings` of a full read of the same metadata. Undefined for a metadata file. A source kept from one
 * poll to the next asks for unchanged listings at once and compares their answers (see MetadataSource.listings).
 */
export async function metadataListings(source: MetadataSource): Promise<string | undefined> {
  return source.listings?.();
}

/** Metadata -> model -> plan. Writes nothing. */
export async function makePlan(
  host: Host,
  options: PipelineOptions,
): Promise<{ model: InstanceModel; target: Target; plan: Plan }> {
  const model = await readModel(host, options);
  const target = await getTarget(options.target);
  const state = options.state ?? (await loadState(host, options.root));
  const plan = await target.plan(host, model, { ...options, state });
  return { model, target, plan };
}

/**
 * The plan of a model already read, against the agent's records as `state` holds them; as applyModel would make it.
 * Writes nothing. Handing both to applyModel applies this very plan.
 */
export async function planModel(
  host: Host,
  options: PipelineOptions,
  model: InstanceModel,
  state: AgentState,
): Promise<Plan> {
  const target = await getTarget(options.target);
  return target.plan(host, model, { ...options, requireNics: options.runtime, state });
}

/** What watches the live state under the agent; undefined for a target nobody else changes (Windows). */
export type LiveWatch = ReturnType<NonNullable<Target['watch']>>;

/** Starts the target's watch of the live state against a plan (see Target.watch). */
export async function watchLive(
  host: Host,
  options: PipelineOptions,
  plan: Plan,
  onDrift: (what: string) => void,
): Promise<LiveWatch | undefined> {
  return (await getTarget(options.target)).watch?.(host, plan, onDrift);
}

/** The outcome of apply: what changed, what verification found, and whether it was rolled back. */
export interface ApplyResult {
  plan: Plan;
  outcome: ApplyOutcome;
  report?: VerifyReport;
  rolledBack: boolean;
  /** Owned items the metadata no longer lists, removed if the next successful read agrees. */
  pendingRemovals: number;
  /** Rolled back: the removals two metadata reads agreed on, which stay done. */
  keptRemovals?: string[];
  /** Checks that could not be made (no rollback on them): the change is kept and must be verified again. */
  unverified?: Check[];
}

/** A stable fingerprint of a validated model: equal models, equal hashes. */
export function modelHash(model: InstanceModel): string {
  return hexDigest('sha256', JSON.stringify(model));
}

/** Pause before the n-th retry of the verification's metadata check (n from 1), as the metadata reads back off. */
const METADATA_CHECK_BACKOFF_MS = 100;

/**
 * Checks that the metadata endpoint still answers (the agent must never cut the guest off from it). Any HTTP answer,
 * a 503 too, proves the way there works. No answer after the retries every read has is not a failure of the network
 * the agent configured, only a check that could not be made: `unknown`, so it neither passes nor rolls anything back.
 */
async function metadataCheck(host: Host, options: PipelineOptions): Promise<Check[]> {
  if (options.metadataFile !== undefined) return [];
  const url = `${options.metadataUrl.replace(/\/?$/, '/')}mac`;
  const retries = options.metadataRetries ?? SETTINGS.metadataRetries.default;
  let last = '';
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await host.sleep(METADATA_CHECK_BACKOFF_MS * 2 ** (attempt - 1));
    try {
      const response = await host.httpGet(url, {
        timeoutMs: options.metadataTimeoutMs ?? SETTINGS.metadataTimeoutMs.default,
        maxBytes: options.metadataMaxBytes ?? SETTINGS.metadataMaxBytes.default,
      });
      const detail =
        response.status === 200 ? 'HTTP 200' : `HTTP ${response.status}: the endpoint answered, so it is reachable`;
      return [{ kind: 'metadata', subject: url, ok: true, detail }];
    } catch (error) {
      last = (error as Error).message;
    }
  }
  return [
    {
      kind: 'metadata',
      subject: url,
      ok: false,
      unknown: true,
      detail: `could not be checked: no answer after ${retries + 1} tries (${last})`,
    },
  ];
}

/**
 * Model -> plan -> apply -> verify, keeping the state file: what the agent owns, what is pending
 * removal, the snapshot `rollback` undoes. Verification that finds the network wrong (a gateway that does not answer,
 * an address or rule missing) undoes this apply's changes, except removals two reads agreed on, and the model is
 * tried again after a backoff. Verification that could not find out (no answer from the metadata endpoint, a check
 * that could not run) proves nothing either way: the change stays and `unverified` says what to check again.
 * `planned`: the plan planModel just made of this model and the state it was made against, applied as it is (a repair
 * plans once).
 */
export async function applyModel(
  host: Host,
  options: PipelineOptions,
  model: InstanceModel,
  planned?: { state: AgentState; plan: Plan },
): Promise<ApplyResult> {
  const state = planned?.state ?? (await loadState(host, options.root));
  const hash = modelHash(model);
  const now = () => new Date(host.now()).toISOString();
  const target = await getTarget(options.target);
  const plan = planned?.plan ?? (await planModel(host, options, model, state));
  if (plan.refusal !== undefined) throw new ApplyError(plan.refusal);
  requirePrivileges(host, plan, options);
  // Ownership is recorded before anything changes, so that an agent killed half-way still knows what it may have added.
  const provisional = stateBeforeApply(state, plan);
  const recorded = JSON.stringify(provisional) !== JSON.stringify(state);
  if (recorded) await saveState(host, options.root, provisional);
  let outcome: ApplyOutcome;
  try {
    outcome = await target.apply(host, plan, options);
  } catch (error) {
    // A failed apply has undone itself: the state file goes back to what it was too. The apply's error is the one
    // to report; the state file then still claims what the apply may have added, which is safe.
    if (recorded) await restoreState(host, options.root, state).catch(() => undefined);
    throw error;
  }
  host.collectGarbage?.();
  const pendingRemovals = plan.ownership.absentNow.length;
  let report: VerifyReport | undefined;
  if (options.runtime) {
    let checks: Check[];
    try {
      checks = [
        ...(outcome.report ?? (await target.verify(host, plan))).checks,
        ...(await metadataCheck(host, options)),
      ];
    } catch (error) {
      // A verification that cannot run proves nothing, and neither does a rollback on it: the change stays.
      checks = [
        {
          kind: 'script',
          subject: 'verification',
          ok: false,
          unknown: true,
          detail: `could not run: ${error instanceof AgentError ? error.userLine : (error as Error).message}`,
        },
      ];
    }
    report = { ok: checks.every((c) => c.ok), checks };
    host.collectGarbage?.();
    const failed = checks.filter((c) => !c.ok && c.unknown !== true);
    if (failed.length > 0) {
      const kept = await outcome.undo({ keepRemovals: true });
      const message = `verification failed (${failed.map((c) => `${c.kind} ${c.subject}`).join('; ')}); rolled back`;
      await saveState(host, options.root, stateAfterRollback(state, plan, kept, hash, now(), message));
      return {
        plan,
        outcome,
        report,
        rolledBack: true,
        pendingRemovals,
        ...(kept.length > 0 ? { keptRemovals: kept.map((c) => c.summary) } : {}),
      };
    }
  }
  let next = stateAfterApply(state, plan, hash, now());
  const unverified = report?.checks.filter((c) => c.unknown === true) ?? [];
  if (unverified.length > 0) {
    // Kept and owned, but not known good: the next run applies (and verifies) again instead of resting in sync.
    const message =
      `verification could not finish (${unverified.map((c) => `${c.kind} ${c.subject}: ${c.detail}`).join('; ')}); ` +
      `the change is kept and verified again`;
    next = { ...next, lastError: { at: now(), message } };
  }
  if (JSON.stringify(next) !== JSON.stringify(state)) await saveState(host, options.root, next);
  return {
    plan,
    outcome,
    ...(report ? { report } : {}),
    rolledBack: false,
    pendingRemovals,
    ...(unverified.length > 0 ? { unverified } : {}),
  };
}

/** A model whose last apply failed verification and was rolled back, as the state file remembers it. */
export interface FailedModel {
  hash: string;
  at: string;
  /** When it is tried again (absent in a state file of an older version: when the metadata changes). */
  retryAfter?: string;
}

/** Reads the metadata, then applies it (see applyModel). */
export async function applyAndVerify(host: Host, options: PipelineOptions): Promise<ApplyResult> {
  return applyModel(host, options, await readModel(host, options));
}

/**
 * applyAndVerify, except that a model whose last apply failed verification (and was rolled back) is not tried again
 * before its backoff ends (state `retryAfter`); a changed model is applied at once.
 */
export async function applyUnlessFailed(
  host: Host,
  options: PipelineOptions,
): Promise<ApplyResult | { skipped: FailedModel }> {
  const model = await readModel(host, options);
  const state = await loadState(host, options.root);
  const hash = modelHash(model);
  // A state file of an older version records no retry time: the model is tried again now, as the service does.
  const retryAt = state.retryAfter !== undefined ? Date.parse(state.retryAfter) : 0;
  if (state.failedModelHash === hash && host.now() < retryAt) {
    return {
      skipped: {
        hash,
        at: state.lastError?.at ?? state.lastApply?.at ?? 'an earlier run',
        ...(state.retryAfter !== undefined ? { retryAfter: state.retryAfter } : {}),
      },
    };
  }
  return applyModel(host, options, model);
}

/** Verifies the live system and the files on disk against what the metadata asks for. Changes nothing. */
export async function verifyOnly(host: Host, options: PipelineOptions): Promise<{ plan: Plan; report: VerifyReport }> {
  const { target, plan } = await makePlan(host, { ...options, runtime: true, requireNics: true });
  const live = await target.verify(host, plan);
  const files = plan.files.map((f) => ({
    kind: 'file' as const,
    subject: f.path,
    ok: f.action === 'unchanged',
    detail:
      f.action === 'unchanged'
        ? 'matches the metadata'
        : f.action === 'create'
          ? 'missing'
          : 'differs from what the metadata asks for',
  }));
  const checks = [...files, ...live.checks, ...(await metadataCheck(host, options))];
  return { plan, report: { ok: checks.every((c) => c.ok), checks } };
}
