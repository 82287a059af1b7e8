// `npm run bench`: measures the agent against baselines measured in the same run, prints a markdown table and writes
// bench/results.json. Timing is never part of `npm test`. Options: --only crawl,apply,cold,daemon,churn  --quick (churn
// runs only when named: it takes 10 minutes)
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applySection } from './apply.js';
import { runChild } from './child.js';
import { ownNamespaces, sweepStale } from './cleanup.js';

export { registerCleanup } from './cleanup.js';
import { churnSection } from './churn.js';
import { coldStartSection } from './coldstart.js';
import { crawlSection } from './crawl.js';
import { daemonSections, NOT_IMPLEMENTED, runSupport, unavailable } from './daemon.js';
import { markdownTable, row, type SectionResult } from './report.js';
import { exec, now, progress, REPO } from './util.js';

const SECTIONS = ['crawl', 'apply', 'cold', 'daemon', 'churn'] as const;
type SectionName = (typeof SECTIONS)[number];
/** Run unless --only names them: the churn section takes 10 minutes of its own (`--only churn`, or 1 with --quick). */
const ON_REQUEST: readonly SectionName[] = ['churn'];
/** The whole bench must finish within this; the convergence section sizes itself to what is left. */
const BUDGET_MS = 9.5 * 60_000;

/** Why the namespace sections cannot run here, or undefined when they can. */
async function namespaceProblem(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'needs root (network namespaces): run `sudo npm run bench`';
  try {
    const v = await exec(['ip', '-V']);
    if (v.exitCode !== 0) return '`ip` does not run: install iproute2';
  } catch {
    return '`ip` not found: install iproute2';
  }
  return undefined;
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--', 'src'], {
        cwd: REPO,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() !== '';
    return dirty ? `${head} (src/ modified)` : head;
  } catch {
    return 'unknown';
  }
}

async function guarded(name: string, fn: () => Promise<SectionResult | SectionResult[]>): Promise<SectionResult[]> {
  try {
    const result = await fn();
    return Array.isArray(result) ? result : [result];
  } catch (error) {
    progress(`${name}: failed: ${(error as Error).stack ?? String(error)}`);
    return [
      {
        name,
        rows: [row(name, 'error', { value: (error as Error).message.split('\n')[0] ?? '', met: false })],
        data: { error: String(error) },
      },
    ];
  }
}

export async function runBench(argv: readonly string[]): Promise<number> {
  const started = now();
  const quick = argv.includes('--quick');
  const onlyArg = argv[argv.indexOf('--only') + 1];
  const only = new Set<SectionName>(
    argv.includes('--only') && onlyArg
      ? (onlyArg.split(',') as SectionName[])
      : SECTIONS.filter((s) => !ON_REQUEST.includes(s)),
  );
  for (const name of only)
    if (!SECTIONS.includes(name)) throw new Error(`--only: unknown section ${name} (known: ${SECTIONS.join(', ')})`);
  const runs = quick ? 3 : 5;

  const swept = sweepStale();
  if (swept.length > 0) progress(`removed leftovers of earlier runs: ${swept.join(', ')}`);
  const nsProblem = await namespaceProblem();
  const results: SectionResult[] = [];

  if (only.has('crawl')) results.push(...(await guarded('1 crawl', () => crawlSection({ runs }))));
  if (only.has('apply')) {
    if (nsProblem)
      results.push({
        name: '2 apply',
        unavailable: nsProblem,
        rows: [row('2 apply', 'runtime apply', { value: `not available: ${nsProblem}` })],
        data: null,
      });
    else results.push(...(await guarded('2 apply', () => applySection({ runs }))));
  }
  if (only.has('cold'))
    results.push(...(await guarded('3 cold start', () => coldStartSection({ runs: quick ? 5 : 11 }))));
  if (only.has('daemon')) {
    const support = await runSupport();
    if (!support.available) results.push(...unavailable(NOT_IMPLEMENTED));
    else if (nsProblem) results.push(...unavailable(`not available: ${nsProblem}`));
    else {
      const footprintSeconds = Number(process.env.EIP_BENCH_FOOTPRINT_SECONDS) || (quick ? 10 : 60);
      const left = BUDGET_MS - (now() - started) - (footprintSeconds + 60) * 1000;
      results.push(
        ...(await guarded('4/5 daemon', () =>
          daemonSections({ support, footprintSeconds, convergenceBudgetMs: Math.max(0, left) }),
        )),
      );
    }
  }

  if (only.has('churn')) {
    if (nsProblem)
      results.push({
        name: '7 churn memory',
        unavailable: nsProblem,
        rows: [row('7 churn memory', 'RSS under churn', { value: `not available: ${nsProblem}` })],
        data: null,
      });
    else
      results.push(
        ...(await guarded('7 churn memory', () =>
          churnSection({ minutes: Number(process.env.EIP_BENCH_CHURN_MINUTES) || (quick ? 1 : 10) }),
        )),
      );
  }

  const rows = results.flatMap((r) => r.rows);
  const withTarget = rows.filter((r) => r.target !== '' && r.met !== null);
  const missed = withTarget.filter((r) => !r.met);
  const leftover = ownNamespaces();
  const elapsed = (now() - started) / 1000;
  const meta = {
    date: new Date().toISOString(),
    commit: gitCommit(),
    node: process.version,
    kernel: release(),
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
    quick,
    runsPerMedian: runs,
    elapsedSeconds: Math.round(elapsed),
  };

  const out: string[] = [];
  out.push(
    `## eip-agent bench (${meta.date}, ${meta.commit}, node ${meta.node}, ${meta.cpus}${quick ? ', --quick' : ''})`,
    '',
  );
  out.push('Each value is the median of several runs; every baseline was measured in this same run.', '');
  out.push(markdownTable(rows), '');
  for (const r of results)
    if (r.unavailable)
      out.push(
        `- ${r.name}: ${r.unavailable.startsWith('not available') ? r.unavailable : `not available: ${r.unavailable}`}`,
      );
  out.push(
    `- targets met: ${withTarget.length - missed.length} of ${withTarget.length}${missed.length > 0 ? `; missed: ${missed.map((r) => `${r.section}: ${r.metric}`).join('; ')}` : ''}`,
  );
  out.push(
    `- finished in ${elapsed.toFixed(0)} s; namespaces left: ${leftover.length === 0 ? 'none' : leftover.join(', ')}`,
  );
  process.stdout.write(`${out.join('\n')}\n`);

  const file = join(REPO, 'bench', 'results.json');
  writeFileSync(
    file,
    `${JSON.stringify({ meta, targets: { met: withTarget.length - missed.length, total: withTarget.length, missed: missed.map((r) => `${r.section}: ${r.metric}`) }, rows, sections: results }, null, 2)}\n`,
  );
  progress(`wrote ${file}`);
  // Missed targets are results, not failures; only a section that could not run, or a leftover, fails the command.
  return rows.some((r) => r.metric === 'error') || leftover.length > 0 ? 1 : 0;
}

// Inside a namespace the bench runs its own bundle as `node <bundle> --child MODE ...`.
if (
  process.argv[1] !== undefined &&
  resolve(process.argv[1]) === fileURLToPath(import.meta.url) &&
  process.argv[2] === '--child'
) {
  runChild(process.argv.slice(3)).catch((error: unknown) => {
    process.stderr.write(`bench child: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  });
}
