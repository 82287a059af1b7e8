// The daemon: poll the metadata every interval, and only when the validated model changed, plan -> apply -> verify.
import { AgentError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { InstanceModel } from '../model/types.js';
import type { DaemonControl } from './control.js';
import { Converger } from './converger.js';
import { DRIFT_DEBOUNCE_MS, DriftGuard } from './drift-guard.js';
import { DriftWatch } from './live-watch.js';
import type { LogEvent } from './log.js';
import type { DaemonOptions } from './options.js';

export type { DaemonOptions } from './options.js';

/** The longest wait between polls after errors (unless the interval itself is longer). */
export const MAX_BACKOFF_MS = 60_000;
/**
 * Each wait is 90-100% of the nominal delay, so that guests started together do not poll in step, and the interval
 * stays the longest a change waits for the poll that sees it.
 */
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

/**
 * The wait before the next poll: the interval, or after n consecutive failures the interval doubled n times, capped;
 * less up to a tenth of it, at random.
 */
export function pollDelay(intervalMs: number, failures: number, random: number): number {
  const longest = Math.max(MAX_BACKOFF_MS, intervalMs);
  const nominal = failures === 0 ? intervalMs : Math.min(intervalMs * 2 ** failures, longest);
  return Math.round(nominal * (1 - JITTER * random));
}

/**
 * Runs until control.stop(): polls (see Converger), at once when the live-state watch saw drift (after a short
 * debounce, unless something keeps undoing the repairs), else every interval with jitter; errors back off exponentially
 * up to a minute and never change anything. SIGHUP's reload takes effect before the next poll.
 */
export async function runDaemon(host: Host, initial: DaemonOptions, context: DaemonContext): Promise<void> {
  const { control, onEvent } = context;
  const random = context.random ?? Math.random;
  const guard = new DriftGuard();
  const watch = new DriftWatch(host, control, guard);
  const converger = new Converger(host, initial, { control, watch, guard, onEvent, onModel: context.onModel });
  let failures = 0;
  onEvent({ level: 'info', event: 'start', msg: startLine(initial), pid: host.pid });
  while (!control.stopped) {
    if (control.takeReload() && context.reload !== undefined) await reload(converger, context.reload, onEvent);
    try {
      let drifted: string | undefined;
      if (watch.pending && reactToDrift(guard, host.now(), onEvent)) {
        // Let the rest of a burst of changes arrive, then look once.
        await host.sleep(DRIFT_DEBOUNCE_MS, control.signal);
        drifted = watch.take();
      }
      watch.take();
      failures = (await converger.poll(drifted)) === 'unverified' ? failures + 1 : 0;
    } catch (error) {
      failures += 1;
      await converger.failed(error, failures, pollDelay(converger.settings.intervalMs, failures, 0));
    }
    if (control.stopped) break;
    await control.sleep(host, pollDelay(converger.settings.intervalMs, failures, random()));
  }
  watch.stop();
  onEvent({ level: 'info', event: 'stop', msg: `stopped (${control.reason})` });
}

function startLine({ pipeline, intervalMs }: DaemonOptions): string {
  const source = pipeline.metadataFile ?? pipeline.metadataUrl;
  const how = `target ${pipeline.target}, routing ${pipeline.routing}, root ${pipeline.root}`;
  return `watching ${source} every ${intervalMs / 1000} s (${how})`;
}

/** Takes new options from the config file, or keeps the current ones when it cannot be read. */
async function reload(
  converger: Converger,
  read: () => Promise<DaemonOptions>,
  onEvent: (event: LogEvent) => void,
): Promise<void> {
  try {
    const options = await read();
    converger.reconfigure(options);
    const { pipeline, intervalMs } = options;
    const msg = `configuration reloaded: every ${intervalMs / 1000} s, routing ${pipeline.routing}, target ${pipeline.target}`;
    onEvent({ level: 'info', event: 'reload', msg });
  } catch (error) {
    const why = error instanceof AgentError ? error.userLine : (error as Error).message;
    onEvent({
      level: 'error',
      event: 'reload-error',
      msg: `configuration not reloaded, keeping the current one: ${why}`,
    });
  }
}

/** Whether drift is repaired at once: not while something keeps undoing the repairs (said once per episode). */
function reactToDrift(guard: DriftGuard, now: number, onEvent: (event: LogEvent) => void): boolean {
  const decision = guard.react(now);
  if (!decision.react && decision.flapping !== undefined) {
    onEvent({ level: 'warn', event: 'drift-flapping', msg: decision.flapping });
  }
  return decision.react;
}
