import { chmod, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Temp files start with a dot: initscripts read every `ifcfg-*` in network-scripts and would take a
 * leftover `ifcfg-eth0.<suffix>` (what generic atomic-write helpers leave after a crash) for the
 * config of a VLAN interface. A dotfile matches no `ifcfg-*`, `route-*`, `rule-*` or `*.conf` glob.
 */
const TEMP = /^\.(.+)\.eip-agent-tmp-(\d+)-\d+$/;
let sequence = 0;

/** The temp file name for a file named base, written by process pid. */
export function tempName(base: string, pid: number, seq: number): string {
  return `.${base}.eip-agent-tmp-${pid}-${seq}`;
}

/** Whether a process with this pid exists (signal 0; EPERM: it exists, owned by someone else). */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

/** Clock ticks per second of /proc/<pid>/stat's start time (USER_HZ, 100 on every Linux architecture that matters). */
const USER_HZ = 100;

/**
 * Whether the process pid can still be the writer of a temp file last changed at mtimeMs: it runs, is not a zombie
 * (killed, not yet reaped by its parent), and started before that time (else the pid was reused by another process).
 * Where /proc cannot say (not Linux), whether the pid runs.
 */
async function writerAlive(pid: number, mtimeMs: number): Promise<boolean> {
  if (!processRunning(pid)) return false;
  try {
    const [stat, procStat] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile('/proc/stat', 'utf8')]);
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return false;
    const bootTime = Number(/^btime (\d+)$/m.exec(procStat)?.[1]);
    const startedMs = (bootTime + Number(fields[19]) / USER_HZ) * 1000;
    // btime is whole seconds: a margin of 2 s keeps a writer that started just before its temp file.
    return !(Number.isFinite(startedMs) && startedMs > mtimeMs + 2000);
  } catch {
    return true;
  }
}

/** Removes temp files that a killed agent left in dir (their writer is gone; the real file was never replaced). */
async function removeStaleTemps(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const match = TEMP.exec(name);
    if (match === null) continue;
    const info = await stat(join(dir, name)).catch(() => null);
    if (info !== null && !(await writerAlive(Number(match[2]), info.mtimeMs)))
      await rm(join(dir, name), { force: true });
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** mkdir -p with mode 0755 for every directory it creates, whatever the umask (the service runs with UMask=0077). */
export async function makeDirectories(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  for (let d = dir; ; d = dirname(d)) {
    await chmod(d, 0o755);
    if (d === first || dirname(d) === d) break;
  }
}

/**
 * Replaces path with content so that a crash at any point leaves either the old or the new file:
 * temp file in the same directory, fsync, rename over, fsync the directory (so the rename itself
 * survives a power cut).
 */
export async function writeFileAtomic(
  path: string,
  content: string,
  mode: number,
  owner?: { uid: number; gid: number },
): Promise<void> {
  const dir = dirname(path);
  await makeDirectories(dir);
  await removeStaleTemps(dir);
  const temp = join(dir, tempName(basename(path), process.pid, sequence++));
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.chmod(mode); // open's mode is filtered by the umask
    if (owner !== undefined && process.platform !== 'win32') await handle.chown(owner.uid, owner.gid);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  // Windows cannot open a directory to fsync it; its rename is already journaled by NTFS.
  if (process.platform !== 'win32') await syncDirectory(dir);
}
