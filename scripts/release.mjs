// `npm run release`: into release/, with SHA-256 sums: the self-contained Linux executable (Bun's runtime with the
// bundled CLI and its precompiled templates inside; needs glibc 2.17, no Node, npm or network), an RPM, and a
// tarball with an install script for other distributions.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildRpm } from './rpm.mjs';

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

// The unit the packages install, rendered by the agent's own `install --systemd` for the packaged path.
const scratch = mkdtempSync(join(tmpdir(), 'eip-release-'));
execFileSync(process.execPath, [join(repo, 'bin', 'eip-agent.js'), 'install', '--systemd', '--root', scratch, '--executable', '/usr/bin/eip-agent'], { stdio: 'ignore' });
const unit = readFileSync(join(scratch, 'etc/systemd/system/eip-agent.service'), 'utf8');
rmSync(scratch, { recursive: true, force: true });
const config = '{}\n';

buildRpm({ executable, unit, config, version, release: '1', outDir: out });

// Other distributions: the executable, the default config and an install script, in one tarball.
const name = `eip-agent-${version}-linux-x64`;
const stage = mkdtempSync(join(tmpdir(), 'eip-tarball-'));
mkdirSync(join(stage, name));
copyFileSync(executable, join(stage, name, 'eip-agent'));
writeFileSync(join(stage, name, 'config.json'), config);
writeFileSync(join(stage, name, 'install.sh'), readFileSync(join(repo, 'scripts', 'tarball-install.sh'), 'utf8'));
chmodSync(join(stage, name, 'install.sh'), 0o755);
execFileSync('tar', ['-C', stage, '--owner=0', '--group=0', '--numeric-owner', '-czf', join(out, `${name}.tar.gz`), name]);
rmSync(stage, { recursive: true, force: true });

const sums = readdirSync(out)
  .filter((file) => file !== 'SHA256SUMS' && statSync(join(out, file)).isFile())
  .sort()
  .map((file) => `${createHash('sha256').update(readFileSync(join(out, file))).digest('hex')}  ${file}\n`);
writeFileSync(join(out, 'SHA256SUMS'), sums.join(''));
process.stdout.write(`release: ${sums.join('').trim().replaceAll('\n', '\nrelease: ')}\n`);
