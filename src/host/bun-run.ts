// Processes on Bun (the release executable): Bun.spawn is native, where node:child_process on Bun is a layer over
// it; for the 240 pings of a verification on the 8 x 30 guest that is half the CPU and a third of the memory.
import type { RunOptions, RunResult, WatchHandle } from './host.js';
import { MAX_TOOL_OUTPUT_BYTES, cappedOutput, outputCapError, type CappedOutput } from './capped-output.js';

/** The part of Bun's spawn API the runner uses. */
interface BunSubprocess {
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly exited: Promise<number>;
  readonly exitCode: number | null;
  readonly signalCode: string | null;
  kill(signal?: string): void;
}

export interface BunSpawner {
  spawn(options: {
    cmd: string[];
    stdin: 'ignore' | Uint8Array;
    stdout: 'pipe';
    stderr: 'pipe' | 'ignore';
    env?: Record<string, string | undefined>;
  }): BunSubprocess;
}

/**
 * The host's `run` over Bun.spawn, with node's contract: argv as is (no shell), input on stdin (closed when there
 * is none), ENOENT kept on a missing program, SIGKILL after the timeout, a rejection when a signal ended it.
 */
export function bunRun(bun: BunSpawner): (argv: readonly string[], options?: RunOptions) => Promise<RunResult> {
  return async (argv, options = {}) => {
    const file = argv[0];
    if (file === undefined) throw new Error('empty argv');
    // A missing program throws here, with code ENOENT, as spawn's error event does on node.
    // env given explicitly: Bun looks a program up on the PATH of the env it is handed, and its default is the
    // environment the process started with, not process.env as the agent completed it (see withSystemPath).
    const child = bun.spawn({
      cmd: [...argv],
      stdin: options.input === undefined ? 'ignore' : new TextEncoder().encode(options.input),
      stdout: 'pipe',
      stderr: 'pipe',
      env: process.env,
    });
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, options.timeoutMs);
    const cap = options.maxOutputBytes ?? MAX_TOOL_OUTPUT_BYTES;
    const stop = () => child.kill('SIGKILL');
    const out = cappedOutput(cap, stop);
    const err = cappedOutput(cap, stop);
    // Read chunk by chunk, so that past the cap the child is killed instead of its output held whole.
    const drain = async (stream: ReadableStream<Uint8Array>, into: CappedOutput): Promise<string> => {
      for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) into.add(chunk);
      return into.text();
    };
    try {
      const [stdout, stderr] = await Promise.all([drain(child.stdout, out), drain(child.stderr, err), child.exited]);
      if (out.over || err.over) throw outputCapError(file, cap);
      if (child.exitCode === null)
        throw new Error(
          timedOut ? `${file} timed out after ${options.timeoutMs} ms` : `${file} was killed by ${child.signalCode}`,
        );
      return { exitCode: child.exitCode, stdout, stderr };
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * The host's `watch` over Bun.spawn, with node's contract: the child's stdout split into lines as it comes (a
 * trailing CR dropped, a last line without a newline delivered), stderr ignored, and a missing program an ended
 * watch rather than a throw. On Bun, node:readline and node:child_process are never loaded: each would cost the
 * daemon memory it keeps.
 */
export function bunWatch(bun: BunSpawner): (argv: readonly string[], onLine: (line: string) => void) => WatchHandle {
  return (argv, onLine) => {
    if (argv.length === 0) throw new Error('empty argv');
    let child: BunSubprocess;
    try {
      child = bun.spawn({ cmd: [...argv], stdin: 'ignore', stdout: 'pipe', stderr: 'ignore', env: process.env });
    } catch {
      return { stop: () => undefined, exited: Promise.resolve() };
    }
    const read = async () => {
      const decoder = new TextDecoder();
      let partial = '';
      for await (const chunk of child.stdout as unknown as AsyncIterable<Uint8Array>) {
        const lines = (partial + decoder.decode(chunk, { stream: true })).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
      }
      const rest = partial + decoder.decode();
      if (rest !== '') onLine(rest);
    };
    const exited = Promise.all([read().catch(() => undefined), child.exited]).then(() => undefined);
    return {
      stop: () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      },
      exited,
    };
  };
}
