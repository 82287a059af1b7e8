import type { Host } from '../host/host.js';

/**
 * How the outside talks to a running daemon: stop (SIGTERM, SIGINT) and reload (SIGHUP). Both
 * cut a sleep short; neither interrupts a step in progress, so an apply always finishes (or rolls back).
 */
export class DaemonControl {
  readonly #stop = new AbortController();
  #wake = new AbortController();
  #reload = false;
  #reason = '';

  /** Aborted once stop() was called. */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  get stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  /** Why the daemon was stopped, e.g. `SIGTERM`. */
  get reason(): string {
    return this.#reason;
  }

  stop(reason = 'stop requested'): void {
    if (this.stopped) return;
    this.#reason = reason;
    this.#stop.abort();
  }

  requestReload(): void {
    this.#reload = true;
    this.#wake.abort();
  }

  /** Cuts the current sleep short (the live state changed under the daemon); the next one sleeps again. */
  wake(): void {
    this.#wake.abort();
  }

  /** True once after each requestReload(). */
  takeReload(): boolean {
    const pending = this.#reload;
    this.#reload = false;
    return pending;
  }

  /** Sleeps on the host's clock until ms have passed, stop() is called or a reload is requested. */
  async sleep(host: Host, ms: number): Promise<void> {
    if (this.stopped || this.#reload) return;
    this.#wake = new AbortController();
    await host.sleep(ms, AbortSignal.any([this.#stop.signal, this.#wake.signal]));
  }
}
