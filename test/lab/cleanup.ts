// Namespaces, processes and temp dirs of a lab must not outlive the test process, even one that crashes or is
// killed: live labs are torn down on exit and on signals, and labs of dead processes are swept at the next start.
import { killAndDeleteNamespace, sweepStale } from '../../src/sandbox/namespaces.js';

/** Something torn down synchronously, because an 'exit' handler cannot wait. */
export interface SyncTeardown {
  teardownSync(): void;
}

/** Names of this process's namespaces and temp dirs start with this; the pid is how a sweep tells them apart. */
export const OWN_PREFIX = `eipt${process.pid}-`;
const ANY_LAB = /^eipt(\d+)-/;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

const live = new Set<SyncTeardown>();

function teardownAll(): void {
  for (const item of live) {
    try {
      item.teardownSync();
    } catch {
      // Best effort: the next run's sweep removes what is left.
    }
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  teardownAll();
  removeHooks();
  // Our listener replaced the default action; if nobody else handles the signal, die of it as we would have.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installHooks(): void {
  if (process.listeners('exit').includes(teardownAll)) return;
  process.on('exit', teardownAll);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function removeHooks(): void {
  process.off('exit', teardownAll);
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

/** Registers a live lab for teardown on exit or signal; the hooks exist only while a lab does. */
export function track(item: SyncTeardown): void {
  live.add(item);
  installHooks();
}

/** Forgets a lab that was torn down normally. */
export function untrack(item: SyncTeardown): void {
  live.delete(item);
  if (live.size === 0) removeHooks();
}

export { listNamespaces } from '../../src/sandbox/namespaces.js';

/** Kills what is left in one of the lab's namespaces and deletes it. */
export function deleteNamespaceSync(ns: string): void {
  killAndDeleteNamespace(ns);
}

/** Deletes `eipt<N>-*` namespaces and temp dirs whose process N is gone (a crashed or killed run); returns their names. */
export function sweepStaleLabs(): string[] {
  return sweepStale(ANY_LAB, [process.pid]);
}
