// Whether the daemon repairs drift the moment the watch sees it: yes, unless something keeps undoing its repairs,
// then only at its regular reads until that stops. Pure: the clock is passed in.

/** How long after the first sign of drift the daemon waits for the rest of it (a network restart is many events). */
export const DRIFT_DEBOUNCE_MS = 300;
/** More repairs than this within DRIFT_WINDOW_MS means something keeps undoing them: stop reacting at once, poll as usual. */
export const MAX_REPAIRS_PER_WINDOW = 5;
export const DRIFT_WINDOW_MS = 60_000;

/** The repairs of the last DRIFT_WINDOW_MS, and whether the flapping was said. */
export class DriftGuard {
  private readonly repairs: number[] = [];
  private reported = false;

  /** A repair was made at `now`. */
  repaired(now: number): void {
    this.repairs.push(now);
  }

  /** How many repairs the last DRIFT_WINDOW_MS holds. */
  recent(now: number): number {
    while (this.repairs.length > 0 && now - (this.repairs[0] ?? 0) > DRIFT_WINDOW_MS) this.repairs.shift();
    return this.repairs.length;
  }

  /**
   * Whether to react to drift at once; `flapping` is the warning to log, once per episode, when not.
   */
  react(now: number): { react: true } | { react: false; flapping?: string } {
    const count = this.recent(now);
    if (count < MAX_REPAIRS_PER_WINDOW) {
      this.reported = false;
      return { react: true };
    }
    if (this.reported) return { react: false };
    this.reported = true;
    return {
      react: false,
      flapping:
        `${count} repairs in the last ${DRIFT_WINDOW_MS / 1000} s: something keeps changing the addresses, rules or routes the agent manages; ` +
        `repairing only at each full metadata read until it stops`,
    };
  }
}
