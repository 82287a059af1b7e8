import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { Host, HostFs, RunOptions, RunResult } from './host.js';

function isMissing(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** fsync of the directory makes the rename itself durable across a power cut. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The real file system. */
export const nodeFs: HostFs = {
  async readText(path) {
    try {
      return await readFile(path, 'utf8');
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
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
  async writeAtomic(path, content, mode) {
    await mkdir(dirname(path), { recursive: true });
    // write-file-atomic: temp file in the same directory, fsync, rename.
    await writeFileAtomic(path, content, { mode, fsync: true });
    await syncDirectory(dirname(path));
  },
  async remove(path) {
    await rm(path, { force: true });
  },
};

/** Runs a program with execa: argv only, never a shell; non-zero exits are results, not exceptions. */
async function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('empty argv');
  const { execa } = await import('execa');
  const result = await execa(file, args, {
    reject: false,
    stripFinalNewline: false,
    ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' }),
    ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {}),
  });
  if (result.failed && result.exitCode === undefined) {
    // Could not start or was killed: surface the cause (ENOENT keeps its code).
    throw result.cause ?? new Error(result.message);
  }
  return { exitCode: result.exitCode ?? 1, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
}

/** The host of a real run: real files, processes, HTTP and clock. */
export function createNodeHost(): Host {
  return {
    fs: nodeFs,
    run,
    fetch: globalThis.fetch.bind(globalThis),
    now: () => Date.now(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    env: process.env,
    platform: process.platform,
    isPrivileged: () => typeof process.getuid === 'function' && process.getuid() === 0,
    log: (message) => process.stderr.write(`${message}\n`),
  };
}
