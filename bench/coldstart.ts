// 3. Cold start: `eip-agent plan` on the quick-start example, as a user runs it, against `node -e 0` in the same run;
// with a breakdown (importing the bundle alone, a CPU profile by package) that shows where the time goes.
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tempDir } from './cleanup.js';
import { row, type Row, type SectionResult } from './report.js';
import { profileByPackage } from './profile.js';
import { CLI, exec, median, ms, progress, releaseBuild, REPO, times } from './util.js';

const SECTION = '3 cold start';

export async function coldStartSection(opts: { runs: number }): Promise<SectionResult> {
  const dir = tempDir('cold');
  try {
    const root = join(dir.path, 'centos7-root');
    cpSync(join(REPO, 'examples', 'centos7-root'), root, { recursive: true });
    const manual = join(REPO, 'examples', 'manual.json');
    const bundle = pathToFileURL(join(REPO, 'dist', 'eip-agent.js')).href;
    // What ships: the release executable (`npm run release`), beside its own runtime's floor (`bun -e 0`).
    const build = releaseBuild();
    const shipped = build !== undefined;
    const executable = build?.executable ?? '';
    const bun = build?.bun ?? '';
    if (!shipped)
      progress('cold start: the release executable is not built (npm run release): measuring the development CLI only');
    const commands = {
      node: [process.execPath, '-e', '0'],
      plan: [process.execPath, CLI, 'plan', '--metadata-file', manual, '--root', root],
      importOnly: [
        process.execPath,
        '--input-type=module',
        '-e',
        `const t = performance.now(); await import(${JSON.stringify(bundle)}); process.stdout.write(String(performance.now() - t));`,
      ],
      ...(shipped
        ? { bun: [bun, '-e', '0'], planRelease: [executable, 'plan', '--metadata-file', manual, '--root', root] }
        : {}),
    } as Record<string, string[]>;
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
    const importMs: number[] = [];
    const names = Object.keys(commands);
    for (let i = -2; i < opts.runs; i++) {
      for (const name of i % 2 === 0 ? names : [...names].reverse()) {
        const argv = commands[name] as string[];
        const run = await exec(argv);
        const ok = name.startsWith('plan') ? run.exitCode === 0 || run.exitCode === 2 : run.exitCode === 0;
        if (!ok) throw new Error(`${argv.join(' ')}: exit ${run.exitCode}: ${run.stderr.trim()}`);
        if (i < 0) continue; // warm-up: page cache, compile cache
        samples[name]!.push(run.ms);
        if (name === 'importOnly') importMs.push(Number(run.stdout));
      }
    }
    const m = Object.fromEntries(names.map((n) => [n, median(samples[n] ?? [])])) as Record<string, number> & {
      node: number;
      plan: number;
      importOnly: number;
    };
    const ratio = m.plan / m.node;
    progress(`cold start: plan ${ms(m.plan)}, node -e 0 ${ms(m.node)} (${times(ratio)})`);
    // Why: one run under --cpu-prof, its samples attributed to the package they fall in.
    const profDir = join(dir.path, 'prof');
    const profiled = await exec([
      process.execPath,
      '--cpu-prof',
      '--cpu-prof-dir',
      profDir,
      '--cpu-prof-interval',
      '100',
      ...(commands.plan ?? []).slice(1),
    ]);
    if (profiled.exitCode !== 0 && profiled.exitCode !== 2)
      throw new Error(`plan under --cpu-prof: exit ${profiled.exitCode}: ${profiled.stderr.trim()}`);
    const profile = profileByPackage(profDir, join(REPO, 'dist', 'eip-agent.js'));
    const top = [...profile]
      .slice(0, 6)
      .map(([name, t]) => `${name} ${t.toFixed(0)} ms`)
      .join('; ');
    const rows: Row[] = [
      row(SECTION, '`eip-agent plan` on examples/manual.json (wall)', {
        value: ms(m.plan),
        baseline: `node -e 0: ${ms(m.node)}`,
        ratio: times(ratio),
        target: '<= 3x node -e 0',
        met: ratio <= 3,
      }),
      row(SECTION, 'breakdown: import of dist/eip-agent.js only', {
        value: `${ms(m.importOnly)} (import itself ${ms(median(importMs))})`,
        baseline: `node -e 0: ${ms(m.node)}`,
        ratio: times(m.importOnly / m.node),
      }),
      row(SECTION, 'breakdown: CPU profile of one `plan`, by bundled package (self time)', { value: top }),
      ...(shipped
        ? [
            row(SECTION, 'release executable: `plan` on examples/manual.json (wall)', {
              value: ms(m.planRelease ?? NaN),
              baseline: `node -e 0: ${ms(m.node)}; bun -e 0: ${ms(m.bun ?? NaN)}`,
              ratio: times((m.planRelease ?? NaN) / m.node),
              target: '<= 2x node -e 0',
              met: (m.planRelease ?? Infinity) <= 2 * m.node,
            }),
          ]
        : []),
    ];
    return {
      name: SECTION,
      rows,
      data: {
        samples,
        importMs,
        medians: m,
        ratio,
        cpuProfileMs: Object.fromEntries([...profile].map(([k, v]) => [k, Math.round(v * 10) / 10])),
      },
    };
  } finally {
    dir.remove();
  }
}
