// Small helpers shared by the bench sections: processes, clocks, statistics, formatting.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';

export { delay };

/** The repository root (run.mjs sets it; `npm run bench` runs from there anyway). */
export const REPO = process.env.EIP_BENCH_REPO ?? process.cwd();
/** The installed entry point, run exactly as a user runs it. */
export const CLI = join(REPO, 'bin', 'eip-agent.js');
/** The agent binary the daemon sections start; overridable only to check the harness against a stand-in. */
export const AGENT_CLI = process.env.EIP_BENCH_AGENT_CLI ?? CLI;

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export const now = (): number => performance.now();

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs argv (never a shell), feeding `input`; resolves whatever the exit code, with the wall time; throws on timeout. */
export function exec(
  argv: readonly string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; quiet?: boolean } = {},
): Promise<Run> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('exec: empty argv');
  return new Promise((resolve, reject) => {
    const started = now();
    const child = spawn(file, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', opts.quiet ? 'ignore' : 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => void (stdout += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString('utf8')).slice(-65_536)));
    const timeout = opts.timeoutMs ?? 120_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')}: timed out after ${timeout} ms\n${stderr}`));
    }, timeout);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ exitCode: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout, stderr, ms: now() - started });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Like exec, but a non-zero exit is an error naming the command and its stderr. */
export async function must(argv: readonly string[], input?: string): Promise<Run> {
  const result = await exec(argv, input === undefined ? {} : { input });
  if (result.exitCode !== 0) throw new Error(`${argv.join(' ')}: exit ${result.exitCode}: ${result.stderr.trim()}`);
  return result;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 100) return `${Math.round(value)} ms`;
  return `${value.toFixed(1)} ms`;
}

export function times(value: number): string {
  return Number.isFinite(value) ? `${value >= 10 ? value.toFixed(0) : value.toFixed(2)}x` : 'n/a';
}

/** A line of progress on stderr, so the table on stdout stays clean. */
export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** This bundle's own file, the entry of the helper processes (`--child`). */
export function bundlePath(): string {
  return new URL(import.meta.url).pathname;
}

/** What ships (`npm run release`): the release executable and its own runtime (Bun), when both are built. */
export function releaseBuild(): { executable: string; bun: string } | undefined {
  const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  const executable = join(REPO, 'release', `eip-agent-${version}-linux-x64`);
  const bun = join(REPO, 'node_modules', '@oven', 'bun-linux-x64-baseline', 'bin', 'bun');
  return existsSync(executable) && existsSync(bun) ? { executable, bun } : undefined;
}
