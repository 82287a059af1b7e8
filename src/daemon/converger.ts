// One poll of the daemon, through the pipeline: read the metadata as cheaply as the schedule allows, and apply only when
// the validated model changed, removals wait or the live state drifted. It remembers what it applied and verified, and
// which model failed verification and when that one is tried again.
import { AgentError, MissingNicError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { MetadataSource, MetaTree } from '../metadata/tree.js';
import type { InstanceModel } from '../model/types.js';
import {
  applyModel,
  metadataListings,
  metadataSource,
  modelHash,
  planModel,
  readModelAndListings,
  type ApplyResult,
} from '../pipeline.js';
import { planChanges } from '../plan/plan.js';
import { loadState, saveState, type AgentState } from '../plan/record.js';
import { stateAfterMetadataError } from '../plan/record-update.js';
import type { DaemonControl } from './control.js';
import type { DriftGuard } from './drift-guard.js';
import type { DriftWatch } from './live-watch.js';
import type { LogEvent } from './log.js';
import { describeApply, describeUnverified, failedChecks, isMetadataError, retryWhen, short } from './messages.js';
import { collectMetrics, formatMetrics, writeMetricsTextfile } from './metrics.js';
import { afterListings, readKind, type LastRead } from './read-schedule.js';
import type { DaemonOptions } from './options.js';

/** How a poll that did not throw ended: `unverified` when verification could not finish (checked after the backoff). */
export type PollOutcome = 'done' | 'unverified';

/** What the converger works with besides the host. */
export interface ConvergerParts {
  control: DaemonControl;
  watch: DriftWatch;
  guard: DriftGuard;
  onEvent(event: LogEvent): void;
  /** Each model read successfully (for the metrics endpoint). */
  onModel?: (model: InstanceModel) => void;
}

/** A model known to fail verification (from this process or the state file), when it is tried again, and whether that was said. */
interface FailedModel {
  hash: string;
  retryAt: number;
  reported: boolean;
}

/** A model the state file records as failed, and when it may be tried again (0: now, as for an older state file). */
function failedIn(state: AgentState, hash: string, reported: boolean): FailedModel {
  const retryAt = state.failedModelHash === hash && state.retryAfter !== undefined ? Date.parse(state.retryAfter) : 0;
  return { hash, retryAt: Number.isNaN(retryAt) ? 0 : retryAt, reported };
}

/**
 * Applies only when the validated model differs from the one this process last applied and verified, or when removals
 * are pending. An unchanged model costs one metadata read: no process, no write. A model whose apply failed
 * verification is tried again after a backoff (at once when the metadata changes); one whose verification could not
 * finish is kept and verified again after the backoff. The first poll always applies, so a restart (after a crash or a
 * reboot) converges whatever happened while the agent was not running.
 */
export class Converger {
  /** What this process last applied and verified. */
  #applied: { hash: string; pendingRemovals: number } | undefined;
  #failed: FailedModel | undefined;
  /** The model whose failure the state file was last asked about. */
  #checkedStateFor: string | undefined;
  #firstConverge = true;
  #model: InstanceModel | undefined;
  /** The last read of more than the listings: its listings, its raw tree (a refresh reuses its fixed keys), when. */
  #lastRead: (LastRead & { listings: string; tree: MetaTree }) | undefined;
  /** The options' metadata source, kept from poll to poll: it remembers the answers of the last listings read. */
  #source: MetadataSource | undefined;

  constructor(
    private readonly host: Host,
    private options: DaemonOptions,
    private readonly parts: ConvergerParts,
  ) {}

  get settings(): DaemonOptions {
    return this.options;
  }

  /** New options (a reload): routing, target or ignored NICs may differ while the metadata does not, so converge again. */
  reconfigure(options: DaemonOptions): void {
    this.options = options;
    this.#applied = undefined;
    // The metadata URL may differ too: the next read is a complete one.
    this.#lastRead = undefined;
    this.#source = undefined;
    this.#checkedStateFor = undefined;
  }

  /**
   * One poll; returns when it went well (including "nothing to do"), throws otherwise. `drifted` (what the watch saw)
   * makes it a full read followed by a check of the live state, whatever the listings say.
   */
  async poll(drifted?: string): Promise<PollOutcome> {
    const pipeline = { ...this.options.pipeline, ignoreNics: this.options.ignoreNics };
    const source = (this.#source ??= metadataSource(this.host, pipeline));
    const applied = this.#applied;
    const now = this.host.now();
    // In sync, a poll reads only the listings; more follows when they change, and at least every FULL_READ_MS.
    const settled = applied !== undefined && applied.pendingRemovals === 0;
    const kind = readKind({ now, last: this.#lastRead, settled, drifted: drifted !== undefined });
    if (kind === 'listings' && applied !== undefined && this.#lastRead !== undefined) {
      const listings = await metadataListings(source);
      if (listings !== undefined && listings === this.#lastRead.listings) {
        this.#debug('metadata listings unchanged', applied.hash);
        return 'done';
      }
    }
    const previous =
      afterListings({ now: this.host.now(), last: this.#lastRead }) === 'refresh' ? this.#lastRead : undefined;
    let read: Awaited<ReturnType<typeof readModelAndListings>>;
    try {
      read = await readModelAndListings(this.host, pipeline, previous?.tree, source);
    } catch (error) {
      // The change may be what cut the metadata off: repair toward the model last verified, then report the error.
      if (drifted !== undefined && isMetadataError(error)) await this.checkLive(drifted);
      throw error;
    }
    const { model, listings, tree } = read;
    const at = this.host.now();
    this.#lastRead = { listings, tree, at, completeAt: previous?.completeAt ?? at };
    this.#model = model;
    this.parts.onModel?.(model);
    const hash = modelHash(model);
    if (applied?.hash === hash && applied.pendingRemovals === 0) {
      this.#debug('metadata unchanged', hash);
      // The safety net under the watch: at each full read, the live state is compared as well.
      await this.checkLive(drifted ?? 'periodic check');
      return 'done';
    }
    if (await this.#waitingAfterFailure(hash)) return 'done';
    if (this.parts.control.stopped) return 'done';
    return this.#converge(hash, await applyModel(this.host, this.options.pipeline, model));
  }

  /**
   * Compares the live state with the model last applied (no metadata read) and, when it drifted, applies that plan.
   * Only when nothing is pending removal: a removal needs a second metadata read, never a repair.
   */
  async checkLive(why: string): Promise<void> {
    const applied = this.#applied;
    const model = this.#model;
    if (applied === undefined || applied.pendingRemovals > 0 || model === undefined) return;
    const pipeline = this.options.pipeline;
    const state = await loadState(this.host, pipeline.root);
    let plan;
    try {
      // As applyModel plans (the daemon's runtime is on, so every NIC must be there): applied as it is below.
      plan = await planModel(this.host, pipeline, model, state);
    } catch (error) {
      // An ENI that went away is the metadata's to say (the next read), not something to repair.
      if (!(error instanceof MissingNicError)) throw error;
      this.#debug(`live state checked (${why}): ${error.message}; waiting for the metadata`);
      return;
    }
    await this.parts.watch.follow(pipeline, plan);
    if (!planChanges(plan)) {
      // The plan (every file rendered, the live state read) is garbage now: collected here, not at the next pass.
      this.host.collectGarbage?.();
      return this.#debug(`live state checked (${why}): in sync`, applied.hash);
    }
    if (this.parts.control.stopped) return;
    const result = await applyModel(this.host, pipeline, model, { state, plan });
    this.parts.guard.repaired(this.host.now());
    const fields = { ...this.#fields(applied.hash, result), cause: why };
    if (result.rolledBack) {
      this.#failed = failedIn(await loadState(this.host, pipeline.root), applied.hash, true);
      this.#applied = undefined;
      const checks = failedChecks(result);
      const msg = `repairing drift failed verification, rolled back; ${this.#retryWhen()} (${checks.join('; ')})`;
      this.parts.onEvent({ level: 'error', event: 'rollback', msg, ...fields, failedChecks: checks });
    } else if (result.unverified !== undefined) {
      this.#applied = undefined;
      const msg = `the live state drifted from the metadata (${why}); ${describeApply(result)}, but ${describeUnverified(result)}`;
      this.parts.onEvent({ level: 'warn', event: 'unverified', msg, ...fields });
    } else {
      const msg = `the live state drifted from the metadata (${why}); ${describeApply(result)}`;
      this.parts.onEvent({ level: 'warn', event: 'repair', msg, ...fields });
    }
    await this.writeMetrics();
  }

  /**
   * A poll that threw: a metadata error is recorded in the state file (nothing changed); either is logged with when the
   * next try is, and the metrics say so.
   */
  async failed(error: unknown, failures: number, retryInMs: number): Promise<void> {
    const line = error instanceof AgentError ? error.userLine : `internal error: ${(error as Error).message}`;
    const metadata = isMetadataError(error);
    if (metadata) {
      try {
        const root = this.options.pipeline.root;
        const at = new Date(this.host.now()).toISOString();
        await saveState(this.host, root, stateAfterMetadataError(await loadState(this.host, root), at, line));
      } catch (stateError) {
        const msg = `could not record the error in the state file: ${(stateError as Error).message}`;
        this.parts.onEvent({ level: 'warn', event: 'state-error', msg });
      }
    }
    this.parts.onEvent({
      level: 'error',
      event: metadata ? 'metadata-error' : 'apply-error',
      msg: `${line}; ${metadata ? 'nothing changed, ' : ''}retrying in about ${Math.round(retryInMs / 1000)} s`,
      failures,
    });
    await this.writeMetrics();
  }

  /** Rewrites the node_exporter textfile, if one is configured; a failure is logged, never thrown. */
  async writeMetrics(): Promise<void> {
    const { metricsTextfile: path, pipeline } = this.options;
    if (path === undefined) return;
    try {
      const state = await loadState(this.host, pipeline.root);
      const text = formatMetrics(await collectMetrics(this.host, pipeline.target, this.#model, state));
      await writeMetricsTextfile(this.host, pipeline.root, path, text);
    } catch (error) {
      const msg = `could not write the metrics to ${path}: ${(error as Error).message}`;
      this.parts.onEvent({ level: 'warn', event: 'metrics-error', msg });
    }
  }

  /** Whether `hash` failed verification and its backoff has not ended (said once). */
  async #waitingAfterFailure(hash: string): Promise<boolean> {
    if (this.#failed?.hash !== hash && this.#checkedStateFor !== hash) {
      // One read of the state file per new model: a model that failed before a restart stays failed.
      this.#checkedStateFor = hash;
      const state = await loadState(this.host, this.options.pipeline.root);
      if (state.failedModelHash === hash) this.#failed = failedIn(state, hash, false);
    }
    const failed = this.#failed;
    if (failed?.hash !== hash || this.host.now() >= failed.retryAt) return false;
    if (!failed.reported) {
      const retry = 'to retry it now: systemctl stop eip-agent, eip-agent apply, systemctl start eip-agent';
      const msg = `not retrying yet a model that failed verification; ${this.#retryWhen()} (${retry})`;
      this.parts.onEvent({ level: 'warn', event: 'skip-failed', msg, modelHash: short(hash) });
      failed.reported = true;
    }
    return true;
  }

  /** Takes in the result of applying a newly read model. */
  async #converge(hash: string, result: ApplyResult): Promise<PollOutcome> {
    const changed = result.outcome.filesWritten.length + result.outcome.runtimeApplied.length > 0;
    const fields = this.#fields(hash, result);
    let outcome: PollOutcome = 'done';
    if (result.rolledBack) {
      this.#applied = undefined;
      this.#failed = failedIn(await loadState(this.host, this.options.pipeline.root), hash, true);
      const checks = failedChecks(result);
      const kept =
        result.keptRemovals !== undefined
          ? `every change rolled back but the removals two reads agreed on (${result.keptRemovals.join('; ')})`
          : 'every change rolled back';
      const msg = `verification failed, ${kept}; ${this.#retryWhen()} (${checks.join('; ')})`;
      this.parts.onEvent({ level: 'error', event: 'rollback', msg, ...fields, failedChecks: checks });
    } else if (result.unverified !== undefined) {
      // Kept and owned, but not known good: the next poll (after the backoff) applies again, which verifies again.
      this.#applied = undefined;
      this.#failed = undefined;
      const msg = `${describeApply(result)}, but ${describeUnverified(result)}`;
      this.parts.onEvent({ level: 'warn', event: 'unverified', msg, ...fields });
      await this.parts.watch.follow(this.options.pipeline, result.plan);
      outcome = 'unverified';
    } else {
      this.#applied = { hash, pendingRemovals: result.pendingRemovals };
      this.#failed = undefined;
      const event = changed ? 'apply' : 'in-sync';
      this.parts.onEvent({ level: 'info', event, msg: describeApply(result), ...fields });
      await this.parts.watch.follow(this.options.pipeline, result.plan);
      // What the apply itself changed shows in the watch too; it was just verified.
      this.parts.watch.take();
    }
    if (changed || result.rolledBack || this.#firstConverge) await this.writeMetrics();
    this.#firstConverge = false;
    return outcome;
  }

  #fields(hash: string, result: ApplyResult) {
    return {
      modelHash: short(hash),
      filesWritten: result.outcome.filesWritten,
      runtimeApplied: result.outcome.runtimeApplied,
      pendingRemovals: result.pendingRemovals,
    };
  }

  #retryWhen(): string {
    return retryWhen(this.#failed?.retryAt ?? 0, this.host.now());
  }

  #debug(msg: string, hash?: string): void {
    this.parts.onEvent({
      level: 'debug',
      event: 'unchanged',
      msg,
      ...(hash !== undefined ? { modelHash: short(hash) } : {}),
    });
  }
}
