// What the bench runs inside a namespace, as `ip netns exec NS node <bench bundle> --child MODE ...`: the product's
// own code (src/) on the real host, wrapped only to record which processes it starts and which files it writes.
import { applyRuntime } from '../src/targets/linux/runtime.js';
import type { RuntimeChange } from '../src/plan/plan.js';
import { main } from '../src/cli/main.js';
import type { Host } from '../src/host/host.js';
import { createNodeHost } from '../src/host/node.js';
import { fileMetadataSource } from '../src/metadata/index.js';
import { buildModel } from '../src/model/index.js';
import { getTarget } from '../src/targets/index.js';
import { now } from './util.js';

export const RESULT_MARK = 'EIPB-RESULT ';

/** HostFs methods that only read; every other one (writeAtomic, remove, createExclusive, whatever is added) is recorded. */
const FS_READS = /^(read|list|stat|exists|meta|realpath)/;

/** A Host whose processes and file writes are recorded; everything still goes to the real host. */
export function recordingHost(inner: Host): { host: Host; runs: string[][]; fileWrites: string[] } {
  const runs: string[][] = [];
  const fileWrites: string[] = [];
  const fs = Object.fromEntries(
    Object.entries(inner.fs).map(([name, fn]) => {
      if (typeof fn !== 'function' || FS_READS.test(name)) return [name, fn];
      return [
        name,
        (path: string, ...rest: unknown[]) => {
          fileWrites.push(`${name} ${path}`);
          return (fn as (...args: unknown[]) => unknown).call(inner.fs, path, ...rest);
        },
      ];
    }),
  ) as unknown as Host['fs'];
  const host: Host = {
    ...inner,
    run: (argv, options) => {
      runs.push([...argv]);
      return inner.run(argv, options);
    },
    fs,
  };
  return { host, runs, fileWrites };
}

/** The agent's lock file (under /run/eip-agent/): taken and released by every apply, not configuration. */
export function isLockFile(write: string): boolean {
  return /\/run\/eip-agent\//.test(write);
}

/** Whether a recorded process changes the system: any `ip` that is not a `-j` read, any `sysctl -w`, anything else. */
export function isWrite(argv: readonly string[]): boolean {
  const [tool, ...args] = argv;
  if (tool === 'ip') return !args.includes('-j');
  if (tool === 'sysctl') return args.includes('-w');
  if (tool === 'ping') return false;
  // The connection marks' reads: the agent's nftables table (`nft list table`), or its iptables chains.
  if (tool === 'nft') return args[0] !== 'list';
  if (tool === 'iptables') return !args.some((a) => a === '-S' || a === '-L' || a === '--list-rules');
  if (tool === 'iptables-save') return false;
  return true;
}

async function applyStep(scope: string, mode: string, treeFile: string, root: string): Promise<unknown> {
  const real = createNodeHost();
  const model = buildModel(await fileMetadataSource(real, treeFile).read());
  const plan = await (
    await getTarget('centos')
  ).plan(real, model, { root, routing: 'policy', runtime: true, requireNics: true });
  const changes: RuntimeChange[] =
    scope === 'addresses' ? plan.runtime.filter((c) => c.kind === 'address') : plan.runtime;
  const { host, runs } = recordingHost(real);
  const started = now();
  if (mode === 'agent') {
    await applyRuntime(host, changes);
  } else {
    // One process per change, as a shell script of `ip addr add` lines (and `sysctl -w` lines) would do it.
    for (const change of changes) {
      // The connection marks are one script for their tool, as a shell script would pipe it.
      const marks = change.marks;
      const argv =
        change.batch !== undefined
          ? ['ip', ...change.batch.split(' ')]
          : marks !== undefined
            ? marks.tool === 'nft'
              ? ['nft', '-f', '-']
              : ['iptables-restore', '--noflush']
            : ['sysctl', '-q', '-w', `${change.sysctl?.key}=${change.sysctl?.value}`];
      const result = await host.run(argv, marks === undefined ? {} : { input: marks.script });
      if (result.exitCode !== 0) throw new Error(`${argv.join(' ')}: exit ${result.exitCode}: ${result.stderr.trim()}`);
    }
  }
  const elapsed = now() - started;
  return {
    ms: elapsed,
    changes: changes.length,
    kinds: Object.fromEntries(
      ['link', 'address', 'route', 'rule', 'sysctl'].map((k) => [k, changes.filter((c) => c.kind === k).length]),
    ),
    processes: runs.length,
  };
}

async function recordCli(args: string[]): Promise<unknown> {
  const { host, runs, fileWrites } = recordingHost(createNodeHost());
  let out = '';
  let err = '';
  const started = now();
  const exitCode = await main(args, host, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { exitCode, ms: now() - started, runs, fileWrites, out: out.slice(-4000), err: err.slice(-4000) };
}

/** Entry of `--child MODE ...`: prints one result line; a failure prints the error and exits 1. */
export async function runChild(argv: string[]): Promise<void> {
  const [mode, ...rest] = argv;
  let result: unknown;
  if (mode === 'apply-step') result = await applyStep(rest[0] ?? '', rest[1] ?? '', rest[2] ?? '', rest[3] ?? '/');
  else if (mode === 'record-cli') result = await recordCli(rest);
  else throw new Error(`unknown child mode ${mode}`);
  process.stdout.write(`\n${RESULT_MARK}${JSON.stringify(result)}\n`);
}

/** The result line of a child's stdout. */
export function childResult<T>(stdout: string, what: string): T {
  const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
  if (line === undefined) throw new Error(`${what}: no result line in its output: ${stdout.slice(-2000)}`);
  return JSON.parse(line.slice(RESULT_MARK.length)) as T;
}
