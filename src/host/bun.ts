// Bun's global, where the agent runs on Bun (the release executable; development and tests run on Node): the one place
// it is looked up, typed for the parts the agent uses.
import type { BunSpawner } from './bun-run.js';
import type { BunConnect } from './http-get.js';

/** A hash in progress (Bun.CryptoHasher, node:crypto's Hash). */
export interface Hasher {
  update(text: string): Hasher;
  digest(encoding: 'hex'): string;
}

/** The parts of Bun's global the agent uses. */
export interface BunGlobal extends BunSpawner {
  CryptoHasher: new (algorithm: string) => Hasher;
  connect: BunConnect;
  /** A collection; `true`: a full one, now. */
  gc(force: boolean): void;
  /** Hands the heap's free pages back to the system. */
  shrink?(): void;
  unsafe?: {
    /** Scales JavaScriptCore's JIT tier-up thresholds for the rest of the process (1: the normal policy). */
    setJITPolicy?(scale: number): void;
  };
}

/** Bun's global when this runs on Bun, else undefined. */
export function bunGlobal(): BunGlobal | undefined {
  return (globalThis as { Bun?: BunGlobal }).Bun;
}
