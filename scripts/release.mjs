// `npm run release`: the self-contained Linux executable (Bun's runtime with the bundled CLI and its precompiled
// templates inside; needs glibc 2.17, no Node, npm or network) in release/, with SHA-256 sums.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const out = join(repo, 'release');
// The baseline build runs on x86-64 CPUs without AVX2 too (older hosts under CentOS 7); it needs GLIBC_2.17.
const runtime = join(dirname(createRequire(import.meta.url).resolve('@oven/bun-linux-x64-baseline/package.json')), 'bin', 'bun');

execFileSync(process.execPath, [join(repo, 'scripts', 'build.mjs')], { stdio: 'inherit' });
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const executable = join(out, `eip-agent-${version}-linux-x64`);
execFileSync(runtime, ['build', '--compile', '--target=bun-linux-x64-baseline', join(repo, 'bin', 'eip-agent.js'), '--outfile', executable], { stdio: ['ignore', 'ignore', 'inherit'] });

const sums = readdirSync(out)
  .filter((name) => statSync(join(out, name)).isFile())
  .sort()
  .map((name) => `${createHash('sha256').update(readFileSync(join(out, name))).digest('hex')}  ${name}\n`);
writeFileSync(join(out, 'SHA256SUMS'), sums.join(''));
process.stdout.write(`release: ${sums.join('').trim().replaceAll('\n', '\nrelease: ')}\n`);
