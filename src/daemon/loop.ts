// The daemon: poll the metadata, and only when the validated model changed, plan -> apply -> verify.
import { loadState, saveState } from '../apply/state.js';
import { stateAfterMetadataError } from '../apply/state-update.js';
import { AgentError, MetadataError, ValidationError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { InstanceModel } from '../model/types.js';
import { applyModel, metadataListings, modelHash, readModelAndListings, type ApplyResult, type PipelineOptions } from '../pipeline.js';
import type { DaemonControl } from './control.js';
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
  const nominal = failures === 0 ? intervalMs : Math.min(intervalMs * 2 ** failures, Math.max(MAX_BACKOFF_MS, intervalMs));
  const jittered = nominal * (1 + JITTER * (2 * random - 1));
  return Math.round(failures === 0 ? jittered : Math.min(jittered, Math.max(MAX_BACKOFF_MS, intervalMs)));
}

function short(hash: string): string {
  return hash.slice(0, 12);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function describeApply(result: ApplyResult): string {
  const files = result.outcome.filesWritten.length;
  const runtime = result.outcome.runtimeApplied.length;
  const pending = result.pendingRemovals > 0 ? `; ${plural(result.pendingRemovals, 'item')} no longer in the metadata, removed on the next read if it agrees` : '';
  if (files === 0 && runtime === 0) return `in sync with the metadata: nothing to change${result.report ? ', verified' : ''}${pending}`;
  return `applied: ${plural(files, 'file')} written, ${plural(runtime, 'runtime change')}${result.report ? ', verified' : ''}${pending}`;
}

/**
 * Longest time between two full metadata reads while in sync. Between them a poll reads only the
 * listings (a handful of requests), which show an attached or detached ENI and an added, removed or
 * moved private IP at once; a change inside an address (an EIP bound in direct mode, a new gateway)
 * is picked up by the next full read.
 */
export const FULL_READ_MS = 60_000;

/** Whether an error is about the metadata itself (unreachable or invalid), as opposed to applying it. */
function isMetadataError(error: unknown): boolean {
  return error instanceof MetadataError || error instanceof ValidationError;
}

/**
 * Runs until control.stop(): reads the metadata every interval (with jitter), and applies only
 * when the validated model differs from the one this process last applied and verified, or when
 * removals are pending. An unchanged model costs one metadata read: no process, no write. A model
 * whose apply failed verification is not retried until the metadata changes. Errors back off
 * exponentially up to a minute and never change anything. The first poll always applies, so a
 * restart (after a crash or a reboot) converges whatever happened while the agent was not running.
 */
export async function runDaemon(host: Host, initial: DaemonOptions, context: DaemonContext): Promise<void> {
  const { control, onEvent } = context;
  const random = context.random ?? Math.random;
  let options = initial;
  /** What this process last applied and verified. */
  let applied: { hash: string; pendingRemovals: number } | undefined;
  /** A model known to fail verification (from this process or the state file), and whether that was said. */
  let failed: { hash: string; reported: boolean } | undefined;
  let checkedStateFor: string | undefined;
  let firstConverge = true;
  let failures = 0;
  let model: InstanceModel | undefined;
  /** The listings of the last full read, and when it was. */
  let lastRead: { listings: string; at: number } | undefined;
  const iso = () => new Date(host.now()).toISOString();

  const writeMetrics = async () => {
    if (options.metricsTextfile === undefined) return;
    try {
      const state = await loadState(host, options.pipeline.root);
      await writeMetricsTextfile(host, options.pipeline.root, options.metricsTextfile, formatMetrics(await collectMetrics(host, model, state)));
    } catch (error) {
      onEvent({ level: 'warn', event: 'metrics-error', msg: `could not write the metrics to ${options.metricsTextfile}: ${(error as Error).message}` });
    }
  };

  /** One poll; returns normally when it went well (including "nothing to do"), throws otherwise. */
  const poll = async (): Promise<void> => {
    const pipeline = { ...options.pipeline, ignoreNics: options.ignoreNics };
    // In sync, a poll reads only the listings; a full read follows when they change, and at least every FULL_READ_MS.
    if (applied !== undefined && applied.pendingRemovals === 0 && lastRead !== undefined && host.now() - lastRead.at < FULL_READ_MS) {
      const listings = await metadataListings(host, pipeline);
      if (listings !== undefined && listings === lastRead.listings) {
        onEvent({ level: 'debug', event: 'unchanged', msg: 'metadata listings unchanged', modelHash: short(applied.hash) });
        return;
      }
    }
    const { model: next, listings } = await readModelAndListings(host, pipeline);
    lastRead = { listings, at: host.now() };
    model = next;
    context.onModel?.(next);
    const hash = modelHash(next);
    if (applied?.hash === hash && applied.pendingRemovals === 0) {
      onEvent({ level: 'debug', event: 'unchanged', msg: 'metadata unchanged', modelHash: short(hash) });
      return;
    }
    if (failed?.hash !== hash && checkedStateFor !== hash) {
      // One read of the state file per new model: a model that failed before a restart stays failed.
      checkedStateFor = hash;
      const state = await loadState(host, options.pipeline.root);
      if (state.failedModelHash === hash) failed = { hash, reported: false };
    }
    if (failed?.hash === hash) {
      if (!failed.reported) {
        onEvent({ level: 'warn', event: 'skip-failed', msg: 'not retrying a model that failed verification; waiting for the metadata to change (to retry it now: systemctl stop eip-agent, eip-agent apply, systemctl start eip-agent)', modelHash: short(hash) });
        failed.reported = true;
      }
      return;
    }
    if (control.stopped) return;
    const result = await applyModel(host, options.pipeline, next);
    const changed = result.outcome.filesWritten.length + result.outcome.runtimeApplied.length > 0;
    const fields = {
      modelHash: short(hash),
      filesWritten: result.outcome.filesWritten,
      runtimeApplied: result.outcome.runtimeApplied,
      pendingRemovals: result.pendingRemovals,
    };
    if (result.rolledBack) {
      applied = undefined;
      failed = { hash, reported: true };
      const checks = (result.report?.checks ?? []).filter((c) => !c.ok).map((c) => `${c.kind} ${c.subject}: ${c.detail}`);
      onEvent({ level: 'error', event: 'rollback', msg: `verification failed, every change rolled back; not retried until the metadata changes (${checks.join('; ')})`, ...fields, failedChecks: checks });
    } else {
      applied = { hash, pendingRemovals: result.pendingRemovals };
      failed = undefined;
      onEvent({ level: 'info', event: changed ? 'apply' : 'in-sync', msg: describeApply(result), ...fields });
    }
    if (changed || result.rolledBack || firstConverge) await writeMetrics();
    firstConverge = false;
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
        // Routing, target or ignored NICs may differ while the metadata does not: converge again.
        applied = undefined;
        checkedStateFor = undefined;
        onEvent({ level: 'info', event: 'reload', msg: `configuration reloaded: every ${options.intervalMs / 1000} s, routing ${options.pipeline.routing}, target ${options.pipeline.target}` });
      } catch (error) {
        onEvent({ level: 'error', event: 'reload-error', msg: `configuration not reloaded, keeping the current one: ${error instanceof AgentError ? error.line : (error as Error).message}` });
      }
    }
    try {
      await poll();
      failures = 0;
    } catch (error) {
      failures += 1;
      const delay = pollDelay(options.intervalMs, failures, 0.5);
      const line = error instanceof AgentError ? error.line : `internal error: ${(error as Error).message}`;
      if (isMetadataError(error)) {
        try {
          const state = await loadState(host, options.pipeline.root);
          await saveState(host, options.pipeline.root, stateAfterMetadataError(state, iso(), line));
        } catch (stateError) {
          onEvent({ level: 'warn', event: 'state-error', msg: `could not record the error in the state file: ${(stateError as Error).message}` });
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
  onEvent({ level: 'info', event: 'stop', msg: `stopped (${control.reason})` });
}
