// 2. Runtime apply: 240 addresses into a fresh namespace through the agent's apply path (one `ip -batch`) against one
// `ip addr add` process per address, each in its own fresh namespace, in the same run; then the real CLI twice in a
// fresh guest: the second apply must make no `ip` writes (counted by a recording Host and, if present, strace).
import { seedCentos7Boot } from '../src/sandbox/guest-root.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { childResult, isLockFile, isWrite } from './child.js';
import { tempDir } from './cleanup.js';
import { createGuest, inNs, liveAddressCount } from './lab.js';
import { row, type Row, type SectionResult } from './report.js';
import { addressCount, nicSpecs, treeOf, type NicSpec } from './trees.js';
import { bundlePath, CLI, exec, median, ms, progress, times } from './util.js';

const SECTION = '2 apply';

interface StepResult {
  ms: number;
  changes: number;
  kinds: Record<string, number>;
  processes: number;
}

interface CliRecord {
  exitCode: number;
  ms: number;
  runs: string[][];
  fileWrites: string[];
  err: string;
}

async function step(
  nics: readonly NicSpec[],
  scope: 'addresses' | 'full',
  mode: 'agent' | 'baseline',
  treeFile: string,
  root: string,
): Promise<StepResult> {
  const guest = await createGuest(nics, { dhcp: false });
  try {
    const run = await exec(
      inNs(guest.ns, [process.execPath, bundlePath(), '--child', 'apply-step', scope, mode, treeFile, root]),
    );
    if (run.exitCode !== 0) throw new Error(`apply step ${scope}/${mode}: exit ${run.exitCode}: ${run.stderr.trim()}`);
    const result = childResult<StepResult>(run.stdout, `apply step ${scope}/${mode}`);
    const live = await liveAddressCount(guest.ns, nics);
    if (live !== addressCount(nics))
      throw new Error(`apply step ${scope}/${mode}: ${live} of ${addressCount(nics)} addresses live`);
    return result;
  } finally {
    guest.destroy();
  }
}

async function compare(
  nics: readonly NicSpec[],
  scope: 'addresses' | 'full',
  runs: number,
  treeFile: string,
  root: string,
) {
  const agent: StepResult[] = [];
  const baseline: StepResult[] = [];
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? (['agent', 'baseline'] as const) : (['baseline', 'agent'] as const);
    for (const mode of order) (mode === 'agent' ? agent : baseline).push(await step(nics, scope, mode, treeFile, root));
  }
  const a = median(agent.map((r) => r.ms));
  const b = median(baseline.map((r) => r.ms));
  progress(`apply ${scope}: one ip -batch ${ms(a)}, one process per change ${ms(b)}`);
  return {
    agentMs: agent.map((r) => r.ms),
    baselineMs: baseline.map((r) => r.ms),
    medianAgentMs: a,
    medianBaselineMs: b,
    speedup: b / a,
    changes: agent[0]?.changes ?? 0,
    kinds: agent[0]?.kinds ?? {},
    agentProcesses: agent[0]?.processes ?? 0,
    baselineProcesses: baseline[0]?.processes ?? 0,
  };
}

/** execve calls that succeeded, per process file of `strace -ff -o PREFIX`: each as its argv. */
function straceExecs(dir: string, prefix: string): string[][] {
  const execs: string[][] = [];
  for (const name of readdirSync(dir).filter((n) => n.startsWith(`${prefix}.`))) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      const m = /execve\("[^"]*", \[(.*?)\](?:, 0x[0-9a-f]+)?.* = 0$/.exec(line);
      if (m?.[1] === undefined) continue;
      execs.push([...m[1].matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((x) => x[1] as string));
    }
  }
  return execs;
}

function which(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, tool)));
}

export async function applySection(opts: { runs: number }): Promise<SectionResult> {
  const nics = nicSpecs(8, 30);
  const total = addressCount(nics);
  const dir = tempDir('apply');
  const rows: Row[] = [];
  try {
    const treeFile = join(dir.path, 'tree.json');
    writeFileSync(treeFile, JSON.stringify(treeOf(nics)));
    const emptyRoot = join(dir.path, 'root-step');
    mkdirSync(emptyRoot);

    const addresses = await compare(nics, 'addresses', opts.runs, treeFile, emptyRoot);
    rows.push(
      row(SECTION, `runtime apply, ${addresses.changes} addresses (8 NICs x 30), fresh namespace`, {
        value: `${ms(addresses.medianAgentMs)} (1 ip -batch)`,
        baseline: `${addresses.baselineProcesses} x ip addr add: ${ms(addresses.medianBaselineMs)}`,
        ratio: `${times(addresses.speedup)} faster`,
        target: '>= 5x faster',
        met: addresses.speedup >= 5,
      }),
    );
    const full = await compare(nics, 'full', Math.max(3, opts.runs - 2), treeFile, emptyRoot);
    const kinds = Object.entries(full.kinds)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${n} ${k}`)
      .join(', ');
    rows.push(
      row(SECTION, `runtime apply, whole plan (${kinds})`, {
        value: `${ms(full.medianAgentMs)} (${full.agentProcesses} processes)`,
        baseline: `1 process per change: ${ms(full.medianBaselineMs)}`,
        ratio: `${times(full.speedup)} faster`,
      }),
    );

    // The real CLI, as a user runs it, inside a fresh guest: first apply, then a second one that must be a no-op.
    const guest = await createGuest(nics, { dhcp: true });
    let cli: Record<string, unknown>;
    try {
      const root = join(dir.path, 'root-cli');
      mkdirSync(root);
      seedCentos7Boot(root);
      const args = ['apply', '--metadata-file', treeFile, '--root', root];
      const first = await exec(inNs(guest.ns, [process.execPath, CLI, ...args]), { timeoutMs: 300_000 });
      if (first.exitCode !== 0)
        throw new Error(`first apply: exit ${first.exitCode}: ${first.stderr.trim().slice(-2000)}`);
      const live = await liveAddressCount(guest.ns, nics);
      if (live !== total) throw new Error(`first apply: ${live} of ${total} addresses live`);
      progress(`apply CLI: first apply ${ms(first.ms)}`);

      const secondRun = await exec(inNs(guest.ns, [process.execPath, bundlePath(), '--child', 'record-cli', ...args]), {
        timeoutMs: 300_000,
      });
      const second = childResult<CliRecord>(secondRun.stdout, 'second apply');
      if (second.exitCode !== 0) throw new Error(`second apply: exit ${second.exitCode}: ${second.err}`);
      const writes = second.runs.filter(isWrite);
      const ipWrites = writes.filter((argv) => argv[0] === 'ip');
      const pings = second.runs.filter((argv) => argv[0] === 'ping').length;
      const readRuns = second.runs.filter((argv) => !isWrite(argv) && argv[0] !== 'ping');
      const named = (argv: readonly string[]) => argv.slice(0, 3).join(' ');
      const otherWrites = writes.filter((argv) => argv[0] !== 'ip').map(named);
      const readTools = [...new Set(readRuns.map(named))].join(', ');
      const fileWrites = second.fileWrites.filter((w) => !isLockFile(w));
      const lockWrites = second.fileWrites.length - fileWrites.length;

      let strace: { ipExecs: number; ipWrites: string[][]; execs: number } | undefined;
      if (which('strace')) {
        const traceDir = join(dir.path, 'strace');
        mkdirSync(traceDir);
        const traced = await exec(
          inNs(guest.ns, [
            'strace',
            '-f',
            '-ff',
            '-qq',
            '-e',
            'trace=execve',
            '-o',
            join(traceDir, 'x'),
            process.execPath,
            CLI,
            ...args,
          ]),
          { timeoutMs: 300_000 },
        );
        if (traced.exitCode !== 0)
          throw new Error(`third apply under strace: exit ${traced.exitCode}: ${traced.stderr.trim().slice(-2000)}`);
        const execs = straceExecs(traceDir, 'x');
        const ips = execs.filter((argv) => argv[0] === 'ip');
        strace = { ipExecs: ips.length, ipWrites: ips.filter((argv) => !argv.includes('-j')), execs: execs.length };
      }
      const plan = await exec(
        inNs(guest.ns, [process.execPath, CLI, 'plan', '--metadata-file', treeFile, '--root', root]),
      );

      rows.push(
        row(SECTION, `CLI apply, fresh guest (${total} addresses, files, verify with ${pings} pings)`, {
          value: ms(first.ms),
          baseline: '',
          ratio: '',
        }),
        row(SECTION, 'second apply in sync: ip writes (recording Host)', {
          value: `${ipWrites.length} (${readRuns.length} reads, ${pings} pings, ${ms(second.ms)})`,
          target: '0 ip writes',
          met: ipWrites.length === 0 && plan.exitCode === 0,
        }),
        row(SECTION, 'second apply in sync: other writes (sysctl -w, files)', {
          value:
            `${otherWrites.length} processes${otherWrites.length > 0 ? ` (${otherWrites.join('; ')})` : ''}, ` +
            `${fileWrites.length} files${lockWrites > 0 ? ` (+ ${lockWrites} lock file create/remove under /run/eip-agent)` : ''}` +
            `${readRuns.length > 0 ? `; reads: ${readTools}` : ''}`,
          target: '0',
          met: otherWrites.length === 0 && fileWrites.length === 0,
        }),
      );
      if (strace) {
        rows.push(
          row(SECTION, 'third apply in sync: ip writes (strace -f execve)', {
            value: `${strace.ipWrites.length} (${strace.ipExecs} ip processes, ${strace.execs} execs in all)`,
            target: '0 ip writes',
            met: strace.ipWrites.length === 0,
          }),
        );
      }
      progress(
        `apply CLI: second apply ${ipWrites.length} ip writes, ${fileWrites.length} file writes (+ ${lockWrites} lock); plan afterwards exit ${plan.exitCode}`,
      );
      cli = {
        firstApplyMs: first.ms,
        secondApplyMs: second.ms,
        secondApplyProcesses: second.runs,
        secondApplyFileWrites: second.fileWrites,
        ipWritesRecorded: ipWrites,
        strace: strace ?? null,
        planAfterExitCode: plan.exitCode,
      };
    } finally {
      guest.destroy();
    }
    return { name: SECTION, rows, data: { addresses, full, cli } };
  } finally {
    dir.remove();
  }
}
