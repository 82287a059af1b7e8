// One agent at a time: `run`, `apply` and `rollback` all hold the same lock file while they work.
import { underRoot } from './root.js';
import { HostError } from '../errors.js';
import { windowsAgentDir, type Host } from '../host/host.js';

/**
 * The lock file (under --root). It lives in /run/eip-agent/, which the unit creates with
 * RuntimeDirectory=, so the sandboxed service needs no write access to the rest of /run.
 */
export const LOCK_PATH = '/run/eip-agent/lock';

/** The lock of this host and root: on Windows with the default root, in the agent's directory under %ProgramData%. */
export function lockPath(host: Host, root: string): string {
  if (host.platform === 'win32' && root === '/') return `${windowsAgentDir(host)}\\lock`;
  return underRoot(root, LOCK_PATH);
}

/** Who holds the lock: a pid, and its start time (clock ticks since boot) so a reused pid is not mistaken for the holder. */
export interface LockHolder {
  pid: number;
  startTime?: string;
}

/** How long to wait for a holder that has created the file but not yet written its pid. */
const EMPTY_LOCK_RETRIES = 5;
const EMPTY_LOCK_WAIT_MS = 20;

/** Fields of /proc/<pid>/stat after the command name, which may itself contain spaces and parentheses. */
function statFields(stat: string): string[] {
  return stat
    .slice(stat.lastIndexOf(')') + 2)
    .trim()
    .split(' ');
}

async function readStat(host: Host, pid: number): Promise<string[] | null> {
  // /proc is the live kernel's, never under --root (like /proc/sys for sysctls).
  const stat = await host.fs.readText(`/proc/${pid}/stat`);
  return stat === null ? null : statFields(stat);
}

/** The lock file's content: the pid on the first line (as in any pid file), its start time on the second. */
export async function lockContent(host: Host): Promise<string> {
  const fields = await readStat(host, host.pid);
  // Field 22 of /proc/<pid>/stat is the start time; fields[0] is field 3.
  const start = fields?.[19];
  return `${host.pid}\n${start ?? ''}\n`;
}

/** Parses a lock file; undefined when it holds no pid (being written, or garbage). */
export function parseLock(text: string): LockHolder | undefined {
  const [pidLine = '', startLine = ''] = text.split('\n');
  if (!/^[1-9]\d{0,9}$/.test(pidLine.trim())) return undefined;
  const start = startLine.trim();
  return { pid: Number(pidLine.trim()), ...(/^\d+$/.test(start) ? { startTime: start } : {}) };
}

/**
 * Whether the holder still runs: its /proc entry exists, is not a zombie, and started when the
 * lock says. On Windows, whether a process with that pid runs. Elsewhere without a readable /proc nothing can be
 * told, so the holder counts as alive.
 */
async function holderAlive(host: Host, holder: LockHolder): Promise<boolean> {
  // Our own pid in the file is a leftover (a restarted container's pid 1, say): this process holds no lock yet.
  if (holder.pid === host.pid) return false;
  // No /proc: a lock survives reboots on Windows, so the holder must be a running process (its pid may have been reused;
  // then the next run after that process ends takes the lock over).
  if (host.platform === 'win32') return host.isRunning(holder.pid);
  const fields = await readStat(host, holder.pid);
  if (fields === null) return (await readStat(host, host.pid)) === null;
  if (fields[0] === 'Z' || fields[0] === 'X') return false;
  return holder.startTime === undefined || fields[19] === holder.startTime;
}

/** Reads the holder, waiting briefly while the file exists but its pid is not written yet. */
async function readHolder(host: Host, path: string): Promise<{ text: string; holder?: LockHolder } | null> {
  for (let i = 0; ; i++) {
    const text = await host.fs.readText(path);
    if (text === null) return null;
    const holder = parseLock(text);
    if (holder !== undefined || i >= EMPTY_LOCK_RETRIES) return holder === undefined ? { text } : { text, holder };
    await host.sleep(EMPTY_LOCK_WAIT_MS);
  }
}

async function create(host: Host, path: string, content: string): Promise<boolean> {
  try {
    return await host.fs.createExclusive(path, content);
  } catch (error) {
    throw new HostError(`cannot create the lock ${path}: ${(error as Error).message} (run as root)`, { cause: error });
  }
}

/** Takes the lock or throws a HostError naming the pid that holds it; a lock left by a dead process is taken over. */
async function acquire(
  host: Host,
  path: string,
  content: string,
  onTakeover: (message: string) => void,
): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await create(host, path, content)) return;
    const found = await readHolder(host, path);
    if (found === null) continue; // released meanwhile
    const { text, holder } = found;
    if (holder !== undefined && (await holderAlive(host, holder))) {
      throw new HostError(
        `another eip-agent is running: pid ${holder.pid} holds the lock ${path}; wait for it to finish (or \`systemctl stop eip-agent\` if it is the service)`,
      );
    }
    // Remove only the stale file read above: if another agent replaced it meanwhile, its lock stays.
    // (Two agents taking over the same stale lock at the same instant can still race; the window is one read.)
    if ((await host.fs.readText(path)) !== text) continue;
    await host.fs.remove(path);
    onTakeover(
      holder === undefined
        ? `took over the lock ${path}, which held no pid`
        : `took over the lock ${path} from pid ${holder.pid}, which is no longer running`,
    );
  }
  throw new HostError(`could not take the lock ${path}: other agents keep taking it; try again`);
}

/** Removes the lock if it is still ours. */
async function release(host: Host, path: string, content: string): Promise<void> {
  if ((await host.fs.readText(path)) === content) await host.fs.remove(path);
}

/** Options of withLock. */
export interface LockOptions {
  /** Where to say that a stale lock was taken over; default host.log. */
  onTakeover?: (message: string) => void;
}

/**
 * Runs fn while holding the agent lock (`<root>/run/eip-agent/lock`, an O_EXCL pid file), and
 * releases it however fn ends. A second agent fails at once with a message naming the holder's pid.
 */
export async function withLock<T>(
  host: Host,
  root: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const path = lockPath(host, root);
  const content = await lockContent(host);
  await acquire(host, path, content, options.onTakeover ?? ((message) => host.log(`eip-agent: ${message}`)));
  try {
    return await fn();
  } finally {
    await release(host, path, content);
  }
}
