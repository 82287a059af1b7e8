// The cases every process runner of the host must answer alike (node:child_process on Node, Bun.spawn on Bun).
import type { RunOptions, RunResult, WatchHandle } from '../../src/host/host.js';

export const RUN_CASES: { name: string; argv: string[]; options?: RunOptions }[] = [
  { name: 'argv as is', argv: ['printf', '%s|%s', 'a b', '$(echo no)'] },
  { name: 'stdout, stderr, exit code', argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] },
  { name: 'input on stdin', argv: ['cat'], options: { input: 'address add 10.0.0.3/24 dev eth0\n' } },
  { name: 'stdin closed without input', argv: ['cat'] },
  { name: 'a missing program', argv: ['eip-agent-no-such-program'] },
  { name: 'a timeout', argv: ['sleep', '5'], options: { timeoutMs: 100 } },
  { name: 'input never read', argv: ['true'], options: { input: 'x\n'.repeat(1 << 20) } },
  { name: 'a signal', argv: ['sh', '-c', 'kill -TERM $$'] },
  { name: 'a large output', argv: ['head', '-c', String(4 << 20), '/dev/zero'] },
  {
    name: 'an output over the cap',
    argv: ['head', '-c', String(4 << 20), '/dev/zero'],
    options: { maxOutputBytes: 1 << 20 },
  },
];

/** What a runner did with one case: its result, or how it failed (the code when there is one, else the message). */
export async function outcome(
  run: (argv: readonly string[], options?: RunOptions) => Promise<RunResult>,
  c: (typeof RUN_CASES)[number],
): Promise<unknown> {
  try {
    const result = await run(c.argv, c.options);
    return { ...result, stdout: result.stdout.length > 1000 ? `${result.stdout.length} characters` : result.stdout };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? { code } : { message: (error as Error).message };
  }
}

/** The cases every `watch` of the host must answer alike: the lines it delivered, in order. */
export const WATCH_CASES: { name: string; argv: string[]; stopOnFirstLine?: boolean }[] = [
  {
    name: 'lines across writes, CRLF, a last line without a newline',
    argv: ['sh', '-c', 'printf a; sleep 0.1; printf "b\\nc\\r\\n"; sleep 0.1; printf d'],
  },
  { name: 'a character split across writes', argv: ['sh', '-c', 'printf "\\303"; sleep 0.1; printf "\\251t\\n"'] },
  { name: 'stderr ignored', argv: ['sh', '-c', 'echo err >&2; echo out'] },
  { name: 'a missing program', argv: ['eip-agent-no-such-program'] },
  { name: 'stopped', argv: ['sh', '-c', 'echo first; exec sleep 30'], stopOnFirstLine: true },
];

/** What a watch delivered before its process ended. */
export async function watchOutcome(
  watch: (argv: readonly string[], onLine: (line: string) => void) => WatchHandle,
  c: (typeof WATCH_CASES)[number],
): Promise<string[]> {
  const lines: string[] = [];
  const handle = watch(c.argv, (line) => {
    lines.push(line);
    if (c.stopOnFirstLine === true) handle.stop();
  });
  await handle.exited;
  return lines;
}
