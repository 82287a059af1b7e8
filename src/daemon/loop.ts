// The daemon: poll the metadata, and only when the validated model changed, plan -> apply -> verify.
import { loadState, saveState, type AgentState } from '../plan/record.js';
import { stateAfterMetadataError } from '../plan/record-update.js';
import { AgentError, MetadataError, MissingNicError, ValidationError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { MetaTree } from '../metadata/tree.js';
import type { InstanceModel } from '../model/types.js';
import {
  applyModel,
  metadataListings,
  modelHash,
  readModelAndListings,
  type ApplyResult,
  type PipelineOptions,
} from '../pipeline.js';
import { planChanges, type Plan } from '../plan/plan.js';
import { getTarget } from '../targets/index.js';
import type { DaemonControl } from './control.js';
import { DRIFT_DEBOUNCE_MS, DriftGuard, MAX_REPAIRS_PER_WINDOW } from './drift-guard.js';
import { afterListings, readKind } from './read-schedule.js';
import type { LogEvent } from './log.js';
import { collectMetrics, formatMetrics, writeMetricsTextfile } from './metrics.js';

/** What the daemon needs on top of the pipeline options; all of it may change on reload. */
export interface DaemonOptions {
  pipeline: PipelineOptions;
  /** Time between polls while all is well. */
  intervalMs: number;
  /** Lower-case MACs of NICs to leave alone. */
  ignoreNics: readonly string[];
  /** node_exporter textfile to rewrite after each apply, rollback or error (absolute, under pipeline.root). */
  metricsTextfile?: string;
}

/** The longest wait between polls after errors (unless the interval itself is longer). */
export const MAX_BACKOFF_MS = 60_000;
/** Each wait is the nominal delay ±10%, so that guests started together do not poll in step. */
const JITTER = 0.1;

/** The daemon's connection to its caller. */
export interface DaemonContext {
  control: DaemonControl;
  onEvent(event: LogEvent): void;
  /** Re-reads the configuration (SIGHUP); a rejection keeps the current options. */
  reload?: () => Promise<DaemonOptions>;
  /** Each model read successfully (for the metrics endpoint). */
  onModel?: (model: InstanceModel) => void;
  /** Uniform in [0, 1); default Math.random. */
  random?: () => number;
}

/** The wait before the next poll: the interval, or after n consecutive failures the interval doubled n times, capped. */
export function pollDelay(intervalMs: number, failures: number, random: number): number {
  const nominal =
    failures === 0 ? intervalMs : Math.min(intervalMs * 2 ** failures, Math.max(MAX_BACKOFF_MS, intervalMs));
  const jittered = nominal * (1 + JITTER * (2 * random - 1));
  return Math.round(failures === 0 ? jittered : Math.min(jittered, Math.max(MAX_BACKOFF_MS, intervalMs)));
}

/** A model the state file records as failed, and when it may be tried again (0: now, as for an older state file). */
function failedModel(state: AgentState, hash: string): { hash: string; retryAt: number } {
  const retryAt = state.failedModelHash === hash && state.retryAfter !== undefined ? Date.parse(state.retryAfter) : 0;
  return { hash, retryAt: Number.isNaN(retryAt) ? 0 : retryAt };
}

function short(hash: string): string {
  return hash.slice(0, 12);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The checks a verification failed, one `kind subject: detail` each. */
function failedChecks(result: ApplyResult): string[] {
  return (result.report?.checks ?? []).filter((c) => !c.ok).map((c) => `${c.kind} ${c.subject}: ${c.detail}`);
}

/** What could not be checked, and what happens next. */
function describeUnverified(result: ApplyResult): string {
  const checks = (result.unverified ?? []).map((c) => `${c.kind} ${c.subject}: ${c.detail}`);
  return `verification could not finish (${checks.join('; ')}); nothing was found wrong, the change is kept and verified again after the backoff`;
}

function describeApply(result: ApplyResult): string {
  const files = result.outcome.filesWritten.length;
  const runtime = result.outcome.runtimeApplied.length;
  const pending =
    result.pendingRemovals > 0
      ? `; ${plural(result.pendingRemovals, 'item')} no longer in the metadata, removed on the next read if it agrees`
      : '';
  if (files === 0 && runtime === 0)
    return `in sync with the metadata: nothing to change${result.report ? ', verified' : ''}${pending}`;
  return `applied: ${plural(files, 'file')} written, ${plural(runtime, 'runtime change')}${result.report ? ', verified' : ''}${pending}`;
}

/** Whether an error is about the metadata itself (unreachable or invalid), as opposed to applying it. */
function isMetadataError(error: unknown): boolean {
  return error instanceof MetadataError || error instanceof ValidationError;
}

/**
 * Runs until control.stop(): reads the metadata every interval (with jitter), and applies only
 * when the validated model differs from the one this process last applied and verified, or when
 * removals are pending. An unchanged model costs one metadata read: no process, no write. A model
 * whose apply failed verification is tried again after a backoff (at once when the metadata changes); one whose
 * verification could not finish is kept and verified again after the backoff. Errors back off
 * exponentially up to a minute and never change anything. The first poll always applies, so a
 * restart (after a crash or a reboot) converges whatever happened while the agent was not running.
 */
export async function runDaemon(host: Host, initial: DaemonOptions, context: DaemonContext): Promise<void> {
  const { control, onEvent } = context;
  const random = context.random ?? Math.random;
  let options = initial;
  /** What this process last applied and verified. */
  let applied: { hash: string; pendingRemovals: number } | undefined;
  /** A model known to fail verification (from this process or the state file), when it is tried again, and whether that was said. */
  let failed: { hash: string; retryAt: number; reported: boolean } | undefined;
  let checkedStateFor: string | undefined;
  let firstConverge = true;
  let failures = 0;
  let model: InstanceModel | undefined;
  /** The last full read: its listings, its raw tree (a refresh reuses its fixed keys), when it was, and when the last complete read was. */
  let lastRead: { listings: string; tree: MetaTree; at: number; completeAt: number } | undefined;
  const iso = () => new Date(host.now()).toISOString();
  /** The live-state watch of the target (Linux: one `ip monitor`), once something was applied. */
  let watch: { update(plan: Plan): void; stop(): void } | undefined;
  /** Whether the watch saw a change that may concern what the agent manages since the last check. */
  let drift: string | undefined;
  const guard = new DriftGuard();

  /** Starts the target's watch of the live state, or points it at a newer plan. */
  const follow = async (plan: Plan): Promise<void> => {
    if (watch !== undefined) return watch.update(plan);
    const target = await getTarget(options.pipeline.target);
    if (target.watch === undefined) return;
    const started = target.watch(host, plan, (line) => {
      drift ??= line;
      if (guard.recent(host.now()) < MAX_REPAIRS_PER_WINDOW) control.wake();
    });
    watch = started;
    void started.exited.then(() => {
      // The monitor died (killed, OOM): check at once and start a new one with the next plan.
      if (watch === started && !control.stopped) {
        watch = undefined;
        drift ??= 'the live-state monitor ended';
        control.wake();
      }
    });
  };

  /**
   * Compares the live state with the model last applied (no metadata read) and, when it drifted, applies the same
   * model again. Only when nothing is pending removal: a removal needs a second metadata read, never a repair.
   */
  const checkLive = async (why: string): Promise<void> => {
    if (applied === undefined || applied.pendingRemovals > 0 || model === undefined) return;
    const target = await getTarget(options.pipeline.target);
    const state = await loadState(host, options.pipeline.root);
    let plan: Plan;
    try {
      plan = await target.plan(host, model, { ...options.pipeline, requireNics: true, state });
    } catch (error) {
      // An ENI that went away is the metadata's to say (the next read), not something to repair.
      if (error instanceof MissingNicError) {
        onEvent({
          level: 'debug',
          event: 'unchanged',
          msg: `live state checked (${why}): ${error.message}; waiting for the metadata`,
        });
        return;
      }
      throw error;
    }
    await follow(plan);
    if (!planChanges(plan)) {
      onEvent({
        level: 'debug',
        event: 'unchanged',
        msg: `live state checked (${why}): in sync`,
        modelHash: short(applied.hash),
      });
      return;
    }
    if (control.stopped) return;
    const result = await applyModel(host, options.pipeline, model);
    guard.repaired(host.now());
    const fields = {
      modelHash: short(applied.hash),
      filesWritten: result.outcome.filesWritten,
      runtimeApplied: result.outcome.runtimeApplied,
      pendingRemovals: result.pendingRemovals,
      cause: why,
    };
    if (result.rolledBack) {
      failed = await failedFromState(applied.hash);
      applied = undefined;
      const checks = failedChecks(result);
      onEvent({
        level: 'error',
        event: 'rollback',
        msg: `repairing drift failed verification, rolled back; ${retryWhen(failed)} (${checks.join('; ')})`,
        ...fields,
        failedChecks: checks,
      });
    } else if (result.unverified !== undefined) {
      applied = undefined;
      onEvent({
        level: 'warn',
        event: 'unverified',
        msg: `the live state drifted from the metadata (${why}); ${describeApply(result)}, but ${describeUnverified(result)}`,
        ...fields,
      });
    } else {
      onEvent({
        level: 'warn',
        event: 'repair',
        msg: `the live state drifted from the metadata (${why}); ${describeApply(result)}`,
        ...fields,
      });
    }
    await writeMetrics();
  };

  /** Whether drift is repaired at once: not while something keeps undoing the repairs. */
  const reactToDrift = (): boolean => {
    const decision = guard.react(host.now());
    if (!decision.react && decision.flapping !== undefined) {
      onEvent({ level: 'warn', event: 'drift-flapping', msg: decision.flapping });
    }
    return decision.react;
  };

  /** The failed model as the state file records it after a rollback: when it is tried again. */
  const failedFromState = async (hash: string): Promise<{ hash: string; retryAt: number; reported: boolean }> => ({
    ...failedModel(await loadState(host, options.pipeline.root), hash),
    reported: true,
  });
  const retryWhen = (f: { retryAt: number }): string =>
    `tried again in about ${Math.max(0, Math.round((f.retryAt - host.now()) / 1000))} s, or at once when the metadata changes`;

  const writeMetrics = async () => {
    if (options.metricsTextfile === undefined) return;
    try {
      const state = await loadState(host, options.pipeline.root);
      await writeMetricsTextfile(
        host,
        options.pipeline.root,
        options.metricsTextfile,
        formatMetrics(await collectMetrics(host, model, state)),
      );
    } catch (error) {
      onEvent({
        level: 'warn',
        event: 'metrics-error',
        msg: `could not write the metrics to ${options.metricsTextfile}: ${(error as Error).message}`,
      });
    }
  };

  /**
   * One poll; returns normally when it went well (including "nothing to do"), throws otherwise; `unverified` when an
   * apply's verification could not finish (the change is kept and checked again after the backoff). `drifted` (what
   * the watch saw) makes it a full read followed by a check of the live state, whatever the listings say.
   */
  const poll = async (drifted?: string): Promise<'done' | 'unverified'> => {
    const pipeline = { ...options.pipeline, ignoreNics: options.ignoreNics };
    // In sync, a poll reads only the listings; more follows when they change, and at least every FULL_READ_MS.
    const settled = applied !== undefined && applied.pendingRemovals === 0;
    const kind = readKind({ now: host.now(), last: lastRead, settled, drifted: drifted !== undefined });
    // (`listings` implies both: said again for the compiler.)
    if (kind === 'listings' && applied !== undefined && lastRead !== undefined) {
      const listings = await metadataListings(host, pipeline);
      if (listings !== undefined && listings === lastRead.listings) {
        onEvent({
          level: 'debug',
          event: 'unchanged',
          msg: 'metadata listings unchanged',
          modelHash: short(applied.hash),
        });
        return 'done';
      }
    }
    let read: Awaited<ReturnType<typeof readModelAndListings>>;
    const previous = afterListings({ now: host.now(), last: lastRead }) === 'refresh' ? lastRead : undefined;
    try {
      read = await readModelAndListings(host, pipeline, previous?.tree);
    } catch (error) {
      // The change may be what cut the metadata off: repair toward the model last verified, then report the error.
      if (drifted !== undefined && isMetadataError(error)) await checkLive(drifted);
      throw error;
    }
    const { model: next, listings, tree } = read;
    lastRead = { listings, tree, at: host.now(), completeAt: previous?.completeAt ?? host.now() };
    model = next;
    context.onModel?.(next);
    const hash = modelHash(next);
    if (applied?.hash === hash && applied.pendingRemovals === 0) {
      onEvent({ level: 'debug', event: 'unchanged', msg: 'metadata unchanged', modelHash: short(hash) });
      // The safety net under the watch: at each full read, the live state is compared as well.
      await checkLive(drifted ?? 'periodic check');
      return 'done';
    }
    if (failed?.hash !== hash && checkedStateFor !== hash) {
      // One read of the state file per new model: a model that failed before a restart stays failed.
      checkedStateFor = hash;
      const state = await loadState(host, options.pipeline.root);
      if (state.failedModelHash === hash) failed = { ...failedModel(state, hash), reported: false };
    }
    if (failed?.hash === hash && host.now() < failed.retryAt) {
      if (!failed.reported) {
        onEvent({
          level: 'warn',
          event: 'skip-failed',
          msg: `not retrying yet a model that failed verification; ${retryWhen(failed)} (to retry it now: systemctl stop eip-agent, eip-agent apply, systemctl start eip-agent)`,
          modelHash: short(hash),
        });
        failed.reported = true;
      }
      return 'done';
    }
    if (control.stopped) return 'done';
    const result = await applyModel(host, options.pipeline, next);
    const changed = result.outcome.filesWritten.length + result.outcome.runtimeApplied.length > 0;
    const fields = {
      modelHash: short(hash),
      filesWritten: result.outcome.filesWritten,
      runtimeApplied: result.outcome.runtimeApplied,
      pendingRemovals: result.pendingRemovals,
    };
    let outcome: 'done' | 'unverified' = 'done';
    if (result.rolledBack) {
      applied = undefined;
      failed = await failedFromState(hash);
      const checks = failedChecks(result);
      const kept =
        result.keptRemovals !== undefined
          ? `every change rolled back but the removals two reads agreed on (${result.keptRemovals.join('; ')})`
          : 'every change rolled back';
      onEvent({
        level: 'error',
        event: 'rollback',
        msg: `verification failed, ${kept}; ${retryWhen(failed)} (${checks.join('; ')})`,
        ...fields,
        failedChecks: checks,
      });
    } else if (result.unverified !== undefined) {
      // Kept and owned, but not known good: the next poll (after the backoff) applies again, which verifies again.
      applied = undefined;
      failed = undefined;
      onEvent({
        level: 'warn',
        event: 'unverified',
        msg: `${describeApply(result)}, but ${describeUnverified(result)}`,
        ...fields,
      });
      await follow(result.plan);
      outcome = 'unverified';
    } else {
      applied = { hash, pendingRemovals: result.pendingRemovals };
      failed = undefined;
      onEvent({ level: 'info', event: changed ? 'apply' : 'in-sync', msg: describeApply(result), ...fields });
      await follow(result.plan);
      // What the apply itself changed shows in the watch too; it was just verified.
      drift = undefined;
    }
    if (changed || result.rolledBack || firstConverge) await writeMetrics();
    firstConverge = false;
    return outcome;
  };

  onEvent({
    level: 'info',
    event: 'start',
    msg: `watching ${options.pipeline.metadataFile ?? options.pipeline.metadataUrl} every ${options.intervalMs / 1000} s (target ${options.pipeline.target}, routing ${options.pipeline.routing}, root ${options.pipeline.root})`,
    pid: host.pid,
  });
  while (!control.stopped) {
    if (control.takeReload() && context.reload !== undefined) {
      try {
        options = await context.reload();
        // Routing, target or ignored NICs may differ while the metadata does not: converge again. The metadata
        // URL may differ too: the next read is a complete one.
        applied = undefined;
        lastRead = undefined;
        checkedStateFor = undefined;
        onEvent({
          level: 'info',
          event: 'reload',
          msg: `configuration reloaded: every ${options.intervalMs / 1000} s, routing ${options.pipeline.routing}, target ${options.pipeline.target}`,
        });
      } catch (error) {
        onEvent({
          level: 'error',
          event: 'reload-error',
          msg: `configuration not reloaded, keeping the current one: ${error instanceof AgentError ? error.userLine : (error as Error).message}`,
        });
      }
    }
    try {
      if (drift !== undefined && reactToDrift()) {
        // Let the rest of a burst of changes arrive, then look once.
        await host.sleep(DRIFT_DEBOUNCE_MS, control.signal);
        const why = drift;
        drift = undefined;
        failures = (await poll(why)) === 'unverified' ? failures + 1 : 0;
      } else {
        drift = undefined;
        failures = (await poll()) === 'unverified' ? failures + 1 : 0;
      }
    } catch (error) {
      failures += 1;
      const delay = pollDelay(options.intervalMs, failures, 0.5);
      const line = error instanceof AgentError ? error.userLine : `internal error: ${(error as Error).message}`;
      if (isMetadataError(error)) {
        try {
          const state = await loadState(host, options.pipeline.root);
          await saveState(host, options.pipeline.root, stateAfterMetadataError(state, iso(), line));
        } catch (stateError) {
          onEvent({
            level: 'warn',
            event: 'state-error',
            msg: `could not record the error in the state file: ${(stateError as Error).message}`,
          });
        }
      }
      onEvent({
        level: 'error',
        event: isMetadataError(error) ? 'metadata-error' : 'apply-error',
        msg: `${line}; ${isMetadataError(error) ? 'nothing changed, ' : ''}retrying in about ${Math.round(delay / 1000)} s`,
        failures,
      });
      await writeMetrics();
    }
    if (control.stopped) break;
    await control.sleep(host, pollDelay(options.intervalMs, failures, random()));
  }
  watch?.stop();
  onEvent({ level: 'info', event: 'stop', msg: `stopped (${control.reason})` });
}
