// The daemon's eye on the live state between reads: the target's watch (Linux: one `ip monitor`), and what it saw.
import type { Host } from '../host/host.js';
import { watchLive, type LiveWatch, type PipelineOptions } from '../pipeline.js';
import type { Plan } from '../plan/plan.js';
import type { DaemonControl } from './control.js';
import { MAX_REPAIRS_PER_WINDOW, type DriftGuard } from './drift-guard.js';

/** Follows the plan last applied; wakes the daemon on a change that may concern it, unless repairs are flapping. */
export class DriftWatch {
  #watch: LiveWatch | undefined;
  /** The first change seen since the last take(). */
  #seen: string | undefined;

  constructor(
    private readonly host: Host,
    private readonly control: DaemonControl,
    private readonly guard: DriftGuard,
  ) {}

  /** Whether a change was seen since the last take(). */
  get pending(): boolean {
    return this.#seen !== undefined;
  }

  /** What was seen since the last take(), and forgets it. */
  take(): string | undefined {
    const seen = this.#seen;
    this.#seen = undefined;
    return seen;
  }

  /** Starts the target's watch, or points it at a newer plan. */
  async follow(options: PipelineOptions, plan: Plan): Promise<void> {
    if (this.#watch !== undefined) return this.#watch.update(plan);
    const started = await watchLive(this.host, options, plan, (line) => this.#saw(line));
    if (started === undefined) return;
    this.#watch = started;
    void started.exited.then(() => {
      // The monitor died (killed, OOM): check at once and start a new one with the next plan.
      if (this.#watch === started && !this.control.stopped) {
        this.#watch = undefined;
        this.#seen ??= 'the live-state monitor ended';
        this.control.wake();
      }
    });
  }

  stop(): void {
    this.#watch?.stop();
  }

  #saw(line: string): void {
    this.#seen ??= line;
    if (this.guard.recent(this.host.now()) < MAX_REPAIRS_PER_WINDOW) this.control.wake();
  }
}
