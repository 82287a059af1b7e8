// Namespaces, processes and temp dirs of a lab must not outlive the test process, even one that crashes or is
// killed: live labs are torn down on exit and on signals, and labs of dead processes are swept at the next start.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Something torn down synchronously, because an 'exit' handler cannot wait. */
export interface SyncTeardown {
  teardownSync(): void;
}

/** Names of this process's namespaces and temp dirs start with this; the pid is how a sweep tells them apart. */
export const OWN_PREFIX = `eipt${process.pid}-`;
const ANY_LAB = /^eipt(\d+)-/;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** Where `ip netns add` mounts named namespaces. */
const NETNS_DIR = '/run/netns';

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

/** Named namespaces, as `ip netns list` shows them. */
export function listNamespaces(): string[] {
  // Read directly: `ip netns list` also asks each namespace for its id, and complains about one being deleted.
  try {
    return readdirSync(NETNS_DIR);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Kills every process left in the namespace (an emulator, a backgrounded agent) and deletes it. The processes are
 * killed first because a namespace with a process in it outlives `ip netns del`, interfaces and all.
 */
export function deleteNamespaceSync(ns: string): void {
  let pids: number[] = [];
  try {
    pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter((line) => /^\d+$/.test(line))
      .map(Number);
  } catch {
    return; // No such namespace.
  }
  for (const pid of pids) signalQuietly(pid, 'SIGKILL');
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    // Another process's sweep may have deleted it meanwhile; only a namespace still there is a failure.
    if (listNamespaces().includes(ns)) throw error;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but is not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed run whose parent has not reaped it yet still answers signal 0, as a zombie.
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Deletes `eipt<N>-*` namespaces and temp dirs whose process N is gone (a crashed or killed run); returns their names. */
export function sweepStaleLabs(): string[] {
  const stale = (name: string): boolean => {
    const pid = ANY_LAB.exec(name)?.[1];
    return pid !== undefined && Number(pid) !== process.pid && !alive(Number(pid));
  };
  const removed: string[] = [];
  for (const ns of listNamespaces().filter(stale)) {
    try {
      deleteNamespaceSync(ns);
      removed.push(ns);
    } catch {
      // Best effort: a stale namespace that resists must not stop a new lab; its name cannot clash.
    }
  }
  for (const name of readdirSync(tmpdir()).filter(stale)) {
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
    removed.push(join(tmpdir(), name));
  }
  return removed;
}
