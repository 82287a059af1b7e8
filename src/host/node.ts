import { constants } from 'node:fs';
import { lstat, open, readdir, realpath, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { MAX_FILE_BYTES, kindOf, notRegularRefusal, symlinkRefusal, tooLargeRefusal } from './file-guard.js';
import { makeDirectories, processRunning, writeFileAtomic } from './atomic-write.js';
import { bunGlobal } from './bun.js';
import { bunRun, bunWatch } from './bun-run.js';
import { bunConnect, httpClient, nodeConnect } from './http-get.js';
import type { Host, HostFs, RunOptions, RunResult, WatchHandle } from './host.js';
import { MAX_TOOL_OUTPUT_BYTES, cappedOutput, outputCapError } from './capped-output.js';

function isMissing(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** The first buffer of a read whose file gives no size (/proc and /sys files say 0): a sysctl or a counter fits. */
const FIRST_READ_BYTES = 4096;

/**
 * Reads to the end through `read` (bytes read into `buffer` at `offset`, 0 at the end) as UTF-8, or undefined past
 * `cap` bytes. The buffer starts at the size the file gives (one byte more, to see the end) and doubles while the
 * file goes on: an ifcfg file costs its own size, not the cap (a 1 MiB buffer per read was 15 ms of the daemon's
 * once-a-minute check and as many MB in flight as files read at once).
 */
export async function readCapped(
  read: (buffer: Buffer, offset: number) => Promise<number>,
  size: number,
  cap: number,
): Promise<string | undefined> {
  let buffer = Buffer.allocUnsafe(Math.min(size > 0 ? size + 1 : FIRST_READ_BYTES, cap + 1));
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      const grown = Buffer.allocUnsafe(Math.min(buffer.length * 2, cap + 1));
      buffer.copy(grown, 0, 0, length);
      buffer = grown;
    }
    const bytesRead = await read(buffer, length);
    if (bytesRead === 0) break;
    length += bytesRead;
    if (length > cap) return undefined;
  }
  // Only the bytes read are seen: the rest of the buffer was never cleared.
  return buffer.toString('utf8', 0, length);
}

/** The real file system. */
export const nodeFs: HostFs = {
  async readText(path, options = {}) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: a link is refused, not followed.
    const flags = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (options.follow ? 0 : (constants.O_NOFOLLOW ?? 0));
    let handle;
    try {
      handle = await open(path, flags);
    } catch (error) {
      if (isMissing(error)) return null;
      if ((error as { code?: string }).code === 'ELOOP') throw symlinkRefusal(path);
      throw error;
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw notRegularRefusal(path, kindOf(stat));
      if (stat.size > MAX_FILE_BYTES) throw tooLargeRefusal(path);
      const text = await readCapped(
        (buffer, offset) => handle.read(buffer, offset, buffer.length - offset, null).then((r) => r.bytesRead),
        stat.size,
        MAX_FILE_BYTES,
      );
      if (text === undefined) throw tooLargeRefusal(path);
      return text;
    } finally {
      await handle.close();
    }
  },
  async meta(path) {
    try {
      const stat = await lstat(path);
      return { mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid };
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  },
  async realpath(path) {
    let existing = path;
    const rest: string[] = [];
    for (;;) {
      try {
        return join(await realpath(existing), ...rest.reverse());
      } catch (error) {
        if (!isMissing(error) || dirname(existing) === existing) throw error;
        rest.push(basename(existing));
        existing = dirname(existing);
      }
    }
  },
  async list(path) {
    try {
      return await readdir(path);
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  },
  writeAtomic: writeFileAtomic,
  async remove(path) {
    await rm(path, { force: true });
  },
  async removeEmptyDir(path) {
    await rmdir(path).catch((error: NodeJS.ErrnoException) => {
      // Best effort: a mount point (systemd's StateDirectory=) or a read-only tree keeps its directory.
      if (!['ENOENT', 'ENOTEMPTY', 'EEXIST', 'EBUSY', 'EROFS', 'EPERM', 'EACCES'].includes(error.code ?? ''))
        throw error;
    });
  },
  async createExclusive(path, content) {
    await makeDirectories(dirname(path));
    let handle;
    try {
      handle = await open(path, 'wx', 0o644);
    } catch (error) {
      if ((error as { code?: string }).code === 'EEXIST') return false;
      throw error;
    }
    try {
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } catch (error) {
      // A half-written file would look like someone else's: leave nothing behind.
      await handle.close().catch(() => undefined);
      await rm(path, { force: true });
      throw error;
    }
    await handle.close();
    return true;
  },
};

/** setTimeout as a promise that an AbortSignal cuts short (resolving, not rejecting). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs a program: argv only, never a shell; non-zero exits are results, not exceptions. Plain
 * child_process rather than execa: the agent needs argv, stdin, a timeout and the exit code, and
 * execa's ~300 KB of modules cost every start about a sixth of its time (see the benchmarks).
 */
function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) return reject(new Error('empty argv'));
    const child = process.getBuiltinModule('node:child_process').spawn(file, args, {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const cap = options.maxOutputBytes ?? MAX_TOOL_OUTPUT_BYTES;
    const stop = () => child.kill('SIGKILL');
    const stdout = cappedOutput(cap, stop);
    const stderr = cappedOutput(cap, stop);
    child.stdout?.on('data', (chunk: Buffer) => stdout.add(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.add(chunk));
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, options.timeoutMs);
    // Could not start (ENOENT keeps its code for the caller's "install ..." message).
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (stdout.over || stderr.over) {
        reject(outputCapError(file, cap));
        return;
      }
      if (code === null) {
        reject(
          new Error(timedOut ? `${file} timed out after ${options.timeoutMs} ms` : `${file} was killed by ${signal}`),
        );
        return;
      }
      resolve({ exitCode: code, stdout: stdout.text(), stderr: stderr.text() });
    });
    // A program that exits without reading all its input must not crash the agent with EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input);
  });
}

/** Fire and forget: the child outlives nobody's wait, and a missing program is ignored (it is best effort). */
function runDetached(argv: readonly string[]): void {
  const [file, ...args] = argv;
  if (file === undefined) return;
  const child = process.getBuiltinModule('node:child_process').spawn(file, args, { detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
}

/** A child whose stdout is read line by line; it dies with the agent's pipe (SIGPIPE) if the agent is killed. */
function watch(argv: readonly string[], onLine: (line: string) => void): WatchHandle {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('empty argv');
  const child = process
    .getBuiltinModule('node:child_process')
    .spawn(file, args, { stdio: ['ignore', 'pipe', 'ignore'], windowsHide: true });
  const exited = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', () => resolve());
  });
  process.getBuiltinModule('node:readline').createInterface({ input: child.stdout }).on('line', onLine);
  return {
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
    exited,
  };
}

/** Where Linux keeps system tools (`sysctl` and `ip` are in an sbin on most distributions). */
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * PATH with the system directories it lacks appended: cron, `env -i` or a bare unit may start the agent with an
 * empty or user PATH, where `sysctl` (in /sbin or /usr/sbin) would not be found. The caller's directories come first.
 */
export function withSystemPath(path: string | undefined): string {
  const dirs = (path ?? '').split(':').filter((d) => d !== '');
  return [...dirs, ...SYSTEM_DIRS.filter((d) => !dirs.includes(d))].join(':');
}

/**
 * The runtime's own full collection: Bun's (the release executable) followed by `Bun.shrink()`, which hands the
 * freed heap pages back to the system (the daemon's anonymous memory in sync: 14.2-14.4 -> 10.8-10.9 MB); node's
 * when it runs with --expose-gc; undefined where there is none.
 */
export function garbageCollector(): (() => void) | undefined {
  const bun = bunGlobal();
  if (bun !== undefined)
    return () => {
      bun.gc(true);
      bun.shrink?.();
    };
  const nodeGc = (globalThis as { gc?: () => void }).gc;
  return nodeGc === undefined ? undefined : () => nodeGc();
}

/** How much more reluctant to compile the daemon makes JavaScriptCore's JIT on Bun (see reluctantJit). */
export const DAEMON_JIT_POLICY = 100;

/**
 * On Bun (the release executable), makes JavaScriptCore's JIT DAEMON_JIT_POLICY times more reluctant to compile, for
 * the rest of the process (Bun.unsafe.setJITPolicy); whether it could. The daemon's code runs a few times a second
 * at most, its one long pass once: compiling it costs more memory than the interpreter costs CPU. On the 8 x 30
 * guest at --interval 1: peak RSS 53.9 -> 51.5-51.7 MB, in sync 50.1 -> 49.1-49.2 MB (see the benchmarks). Node's
 * V8 has no such switch.
 */
export function reluctantJit(): boolean {
  const unsafe = bunGlobal()?.unsafe;
  if (unsafe?.setJITPolicy === undefined) return false;
  unsafe.setJITPolicy(DAEMON_JIT_POLICY);
  return true;
}

/** The host of a real run: real files, processes, HTTP and clock. */
export function createNodeHost(): Host {
  const bun = bunGlobal();
  // Every child (node's spawn and Bun.spawn alike) is looked up on the process's PATH.
  if (process.platform !== 'win32') process.env.PATH = withSystemPath(process.env.PATH);
  return {
    fs: nodeFs,
    // Short-lived processes (ip, ping, sysctl...) through the runtime's own spawn; long-lived ones stay on node's API.
    run: bun === undefined ? run : bunRun(bun),
    runDetached,
    watch: bun === undefined ? watch : bunWatch(bun),
    // HTTP over each runtime's own sockets: node:net on Node, Bun.connect on Bun (the release executable).
    httpGet: httpClient(bun === undefined ? nodeConnect : bunConnect((options) => bun.connect(options))),
    now: () => Date.now(),
    sleep: abortableSleep,
    pid: process.pid,
    isRunning: processRunning,
    env: process.env,
    platform: process.platform,
    isPrivileged: () => typeof process.getuid === 'function' && process.getuid() === 0,
    log: (message) => process.stderr.write(`${message}\n`),
  };
}
