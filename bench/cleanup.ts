// Everything the bench creates outside its own process (namespaces, helper processes, temp dirs) is named
// `eipb<pid>-...`, registered here and removed in `finally`, on exit and on SIGINT/SIGTERM/SIGHUP; leftovers of a
// bench that was killed outright are swept at the next start (the lab tests' convention, with their own prefix).
import { mkdtempSync, rmSync } from 'node:fs';
import { killAndDeleteNamespace, listNamespaces, sweepStale as sweepStaleOf } from '../src/sandbox/namespaces.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PREFIX = `eipb${process.pid}-`;
const ANY = /^eipb(\d+)-/;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

const live = new Set<() => void>();

function teardownAll(): void {
  for (const fn of [...live].reverse()) {
    try {
      fn();
    } catch {
      // Best effort: the next run's sweep removes what is left.
    }
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  process.stderr.write(`[bench] ${signal}: cleaning up\n`);
  teardownAll();
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off('exit', teardownAll);
  process.kill(process.pid, signal);
}

/** Registers a synchronous teardown; returns the function that runs it now and forgets it (idempotent). */
export function registerCleanup(fn: () => void): () => void {
  if (!process.listeners('exit').includes(teardownAll)) {
    process.on('exit', teardownAll);
    for (const s of SIGNALS) process.on(s, onSignal);
  }
  let done = false;
  const once = (): void => {
    if (done) return;
    done = true;
    live.delete(once);
    fn();
  };
  live.add(once);
  return once;
}

/** A temp dir named after this run, removed by the returned function (also on exit and signals). */
export function tempDir(tag: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `${PREFIX}${tag}-`));
  return { path, remove: registerCleanup(() => rmSync(path, { recursive: true, force: true })) };
}

/** Kills one process this bench started, by pid; a process already gone is fine. */
export function killQuietly(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

export { listNamespaces };

/** Kills the processes inside one of the bench's namespaces (all started by the bench), then deletes it. */
export function deleteNamespaceSync(ns: string): void {
  if (!ANY.test(ns)) throw new Error(`refusing to delete namespace ${ns}: not one of the bench's`);
  killAndDeleteNamespace(ns);
}

/** Removes `eipb<N>-*` namespaces and temp dirs whose bench process N is gone; returns their names. */
export function sweepStale(): string[] {
  return sweepStaleOf(ANY, [process.pid, process.ppid]);
}

/** This run's namespaces still present (should be none at the end). */
export function ownNamespaces(): string[] {
  return listNamespaces().filter((ns) => ns.startsWith(PREFIX));
}
