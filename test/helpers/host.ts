import { dirname } from 'node:path';
import { Volume, createFsFromVolume } from 'memfs';
import type { Host, HostFs } from '../../src/host/host.js';
import {
  MAX_FILE_BYTES,
  kindOf,
  notRegularRefusal,
  symlinkRefusal,
  tooLargeRefusal,
} from '../../src/host/file-guard.js';
import { httpClient, nodeConnect } from '../../src/host/http-get.js';
import { abortableSleep } from '../../src/host/node.js';

/** The in-memory file system behind createTestHost's fs; tests seed it (vol.fromJSON) and reset it (vol.reset()). */
export const vol = new Volume();
const fs = createFsFromVolume(vol).promises;

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** HostFs over memfs, with the same contract as the real one (missing -> null, the same refusals). */
const memFs: HostFs = {
  async readText(path, options = {}) {
    let stat;
    try {
      stat = await fs.lstat(path);
      if (stat.isSymbolicLink()) {
        if (!options.follow) throw symlinkRefusal(path);
        stat = await fs.stat(path);
      }
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    if (!stat.isFile()) throw notRegularRefusal(path, kindOf(stat));
    if (Number(stat.size) > MAX_FILE_BYTES) throw tooLargeRefusal(path);
    return (await fs.readFile(path, 'utf8')) as string;
  },
  async meta(path) {
    try {
      const stat = await fs.lstat(path);
      return { mode: Number(stat.mode) & 0o7777, uid: Number(stat.uid), gid: Number(stat.gid) };
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  },
  async realpath(path) {
    const rest: string[] = [];
    let existing = path;
    for (;;) {
      try {
        const real = String(await fs.realpath(existing));
        return [real, ...rest.reverse()].join('/').replace(/\/\/+/g, '/');
      } catch (error) {
        if (!isMissing(error) || dirname(existing) === existing) throw error;
        rest.push(existing.slice(dirname(existing).length + 1));
        existing = dirname(existing);
      }
    }
  },
  async list(path) {
    try {
      return ((await fs.readdir(path)) as string[]).map(String);
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  },
  async writeAtomic(path, content, mode, owner) {
    await fs.mkdir(dirname(path), { recursive: true });
    const temp = `${path}.tmp-${process.pid}`;
    await fs.writeFile(temp, content, { mode });
    await fs.chmod(temp, mode);
    if (owner !== undefined) await fs.chown(temp, owner.uid, owner.gid);
    await fs.rename(temp, path);
  },
  async remove(path) {
    await fs.rm(path, { force: true });
  },
  async removeEmptyDir(path) {
    await fs.rmdir(path).catch((error: { code?: string }) => {
      if (error.code !== 'ENOENT' && error.code !== 'ENOTEMPTY') throw error;
    });
  },
  async createExclusive(path, content) {
    await fs.mkdir(dirname(path), { recursive: true });
    try {
      await fs.writeFile(path, content, { flag: 'wx', mode: 0o644 });
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === 'EEXIST') return false;
      throw error;
    }
  },
};

/** A Host for tests: real HTTP and timers, memfs files, no processes unless `run` is overridden. */
export function createTestHost(overrides: Partial<Host> = {}): Host {
  return {
    fs: memFs,
    run: async () => {
      throw new Error('no process in this test');
    },
    runDetached: () => undefined,
    watch: () => ({ stop: () => undefined, exited: new Promise<void>(() => undefined) }),
    httpGet: httpClient(nodeConnect),
    now: () => Date.now(),
    sleep: abortableSleep,
    pid: 4242,
    isRunning: () => false,
    env: {},
    platform: 'linux',
    isPrivileged: () => false,
    log: () => undefined,
    ...overrides,
  };
}
