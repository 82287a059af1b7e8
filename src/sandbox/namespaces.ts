// Network namespace housekeeping shared by the sandbox, the lab tests and the benchmarks: each names what it creates
// with its own prefix (`eips-<name>-`; `eipt<pid>-`, `eipb<pid>-` with the pid of the run) and uses these to remove it.
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NETNS_DIR = '/run/netns';

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
export function killAndDeleteNamespace(ns: string): void {
  let pids: number[] = [];
  try {
    pids = process
      .getBuiltinModule('node:child_process')
      .execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter((line) => /^\d+$/.test(line))
      .map(Number);
  } catch {
    return; // No such namespace.
  }
  for (const pid of pids) signalQuietly(pid, 'SIGKILL');
  try {
    process
      .getBuiltinModule('node:child_process')
      .execFileSync('ip', ['netns', 'del', ns], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    // Another process's sweep may have deleted it meanwhile; only a namespace still there is a failure.
    if (listNamespaces().includes(ns)) throw error;
  }
}

/** Whether a process is running (a zombie, killed but not yet reaped, is not). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but is not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Deletes the namespaces and temp dirs whose name matches `owner` (its first group is the creating
 * pid) and whose creator is gone (a crashed or killed run); returns their names. Never those of `keep`.
 */
export function sweepStale(owner: RegExp, keep: readonly number[]): string[] {
  const stale = (name: string): boolean => {
    const pid = owner.exec(name)?.[1];
    return pid !== undefined && !keep.includes(Number(pid)) && !processAlive(Number(pid));
  };
  const removed: string[] = [];
  for (const ns of listNamespaces().filter(stale)) {
    try {
      killAndDeleteNamespace(ns);
      removed.push(ns);
    } catch {
      // Best effort: a stale namespace that resists must not stop a new run; its name cannot clash.
    }
  }
  for (const name of readdirSync(tmpdir()).filter(stale)) {
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
    removed.push(join(tmpdir(), name));
  }
  return removed;
}
