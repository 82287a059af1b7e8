import { chmod, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
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

/** Removes temp files that a killed agent left in dir (their writer is gone; the real file was never replaced). */
async function removeStaleTemps(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const match = TEMP.exec(name);
    if (match && !processRunning(Number(match[2]))) await rm(join(dir, name), { force: true });
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
export async function writeFileAtomic(path: string, content: string, mode: number, owner?: { uid: number; gid: number }): Promise<void> {
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
