// The packages `npm run release` builds, checked with the real package tools: rpm installs the RPM into a temp root
// (as an image build would), upgrades and erases it; the scriptlets run in a private mount namespace against a
// recording systemctl; the tarball is unpacked.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM module of the release script, no type declarations
import { DEB_DEPENDS, MAINTAINER_SCRIPTS } from '../../scripts/deb.mjs';
// @ts-expect-error plain ESM module of the release script, no type declarations
import { RPM_REQUIRES, SCRIPTLETS, buildRpm } from '../../scripts/rpm.mjs';
import { releaseExecutable } from './paths.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const EXE = releaseExecutable();
const DIR = join(EXE, '..');
const RPM = existsSync(DIR) ? readdirSync(DIR).find((n) => n.endsWith('.x86_64.rpm')) : undefined;
const haveRpm = spawnSync('rpm', ['--version']).status === 0;
const ready = RPM !== undefined && haveRpm;
if (!ready && process.env.CI === 'true') throw new Error(`the RPM or rpm is missing (${RPM ?? 'no RPM in release/'}; rpm ${haveRpm ? 'found' : 'not found'}): npm test runs npm run release first`);

const rpmPath = RPM === undefined ? '' : join(DIR, RPM);
const scratch = mkdtempSync(join(tmpdir(), 'eip-packages-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** rpm with Debian's "use alien" notice silenced. */
function rpm(args: string[]): string {
  return execFileSync('rpm', ['--force-debian', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe.skipIf(!ready)('the RPM', () => {
  it('holds the executable, the unit and the config, and requires only what the agent runs', () => {
    expect(rpm(['-qpl', rpmPath]).trim().split('\n')).toEqual(['/etc/eip-agent', '/etc/eip-agent/config.json', '/usr/bin/eip-agent', '/usr/lib/systemd/system/eip-agent.service']);
    expect(rpm(['-qpc', rpmPath]).trim()).toBe('/etc/eip-agent/config.json');
    const requires = rpm(['-qp', '--requires', rpmPath]).trim().split('\n').filter((r) => !r.startsWith('rpmlib(') && r !== '/bin/sh');
    expect(requires.sort()).toEqual([...RPM_REQUIRES].sort());
    const scripts = rpm(['-qp', '--scripts', rpmPath]);
    expect(scripts).toContain(`postinstall scriptlet (using /bin/sh):\n${SCRIPTLETS.post}`);
    expect(scripts).toContain(`preuninstall scriptlet (using /bin/sh):\n${SCRIPTLETS.preun}`);
    expect(scripts).toContain(`postuninstall scriptlet (using /bin/sh):\n${SCRIPTLETS.postun}`);
  });

  it('installs into an image root; its unit runs the packaged executable, which plans the manual\'s example', () => {
    const root = join(scratch, 'image');
    mkdirSync(root);
    rpm(['--root', root, '--nodeps', '--noscripts', '-i', rpmPath]);
    const unit = readFileSync(join(root, 'usr/lib/systemd/system/eip-agent.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/eip-agent run$/m);
    expect(unit).not.toMatch(/\/usr\/bin\/node|node_modules|--max-semi-space-size/);
    // Not stripped: the executable is the release one, byte for byte.
    expect(readFileSync(join(root, 'usr/bin/eip-agent')).equals(readFileSync(EXE))).toBe(true);
    const plan = spawnSync(join(root, 'usr/bin/eip-agent'), ['plan', '--metadata-file', join(REPO, 'examples/manual.json'), '--root', join(REPO, 'examples/centos7-root')], { env: {}, encoding: 'utf8' });
    expect(plan.status, plan.stderr).toBe(2);
    expect(plan.stdout).toContain('+IPADDR1=10.0.0.3');
  });

  it('an upgrade keeps a changed config; an erase removes the unit and the executable and keeps the state', { timeout: 120_000 }, () => {
    const root = join(scratch, 'upgrade');
    mkdirSync(root);
    rpm(['--root', root, '--nodeps', '--noscripts', '-i', rpmPath]);
    writeFileSync(join(root, 'etc/eip-agent/config.json'), '{"interval": 10}\n');
    mkdirSync(join(root, 'var/lib/eip-agent'), { recursive: true });
    writeFileSync(join(root, 'var/lib/eip-agent/state.json'), '{"version": 1}\n');
    const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    const next = buildRpm({ executable: EXE, unit: readFileSync(join(root, 'usr/lib/systemd/system/eip-agent.service'), 'utf8'), version, release: '2', outDir: join(scratch, 'next') }) as string;
    rpm(['--root', root, '--nodeps', '--noscripts', '-U', next]);
    expect(rpm(['--root', root, '-q', 'eip-agent']).trim()).toBe(`eip-agent-${version}-2.x86_64`);
    expect(readFileSync(join(root, 'etc/eip-agent/config.json'), 'utf8')).toBe('{"interval": 10}\n');
    rpm(['--root', root, '--nodeps', '--noscripts', '-e', 'eip-agent']);
    expect(existsSync(join(root, 'usr/lib/systemd/system/eip-agent.service'))).toBe(false);
    expect(existsSync(join(root, 'usr/bin/eip-agent'))).toBe(false);
    expect(readFileSync(join(root, 'var/lib/eip-agent/state.json'), 'utf8')).toBe('{"version": 1}\n');
  });
});

/**
 * Runs a scriptlet as rpm (`sh SCRIPT $1`) or a maintainer script as dpkg (`SCRIPT ACTION [VERSION]`) would, in a
 * private mount namespace with its own /run and /etc/systemd.
 */
function scriptlet(script: string, arg: number | string, options: { systemdRunning: boolean; systemdVersion: number }): { calls: string[]; dropIn: string | null; stateKept: boolean } {
  const dir = mkdtempSync(join(scratch, 'scriptlet-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> '${dir}/calls'\n[ "$1" = --version ] && echo 'systemd ${options.systemdVersion} (${options.systemdVersion})'\nexit 0\n`);
  chmodSync(join(bin, 'systemctl'), 0o755);
  writeFileSync(join(dir, 'script'), script);
  // The agent's state, in a /var/lib of the namespace's own: what is left of it after the script.
  const setup = ['mount -t tmpfs tmpfs /run', 'mount -t tmpfs tmpfs /etc/systemd/system', 'mount -t tmpfs tmpfs /var/lib', 'mkdir /var/lib/eip-agent', 'echo {} > /var/lib/eip-agent/state.json', ...(options.systemdRunning ? ['mkdir -p /run/systemd/system'] : [])].join(' && ');
  const body = `${setup} && PATH='${bin}':$PATH sh '${dir}/script' ${arg}; cat /etc/systemd/system/eip-agent.service.d/10-eip-agent-old-systemd.conf > '${dir}/dropin' 2>/dev/null || true; [ -e /var/lib/eip-agent/state.json ] && touch '${dir}/state-kept' || true`;
  execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', body]);
  const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : null);
  return { calls: (read('calls') ?? '').split('\n').filter(Boolean), dropIn: read('dropin') || null, stateKept: existsSync(join(dir, 'state-kept')) };
}

const canUnshare = process.getuid?.() === 0 && spawnSync('unshare', ['--mount', 'true']).status === 0;
describe.skipIf(!canUnshare && process.env.CI !== 'true')('the RPM scriptlets', () => {
  it('first install: enable --now where systemd runs; only enable in a chroot or image build', () => {
    expect(scriptlet(SCRIPTLETS.post, 1, { systemdRunning: true, systemdVersion: 252 }).calls).toEqual(['--version', 'daemon-reload', 'enable --now eip-agent.service']);
    expect(scriptlet(SCRIPTLETS.post, 1, { systemdRunning: false, systemdVersion: 252 }).calls).toEqual(['--version', 'enable eip-agent.service']);
  });

  it('upgrade: try-restart a running service; never enables again', () => {
    expect(scriptlet(SCRIPTLETS.post, 2, { systemdRunning: true, systemdVersion: 252 }).calls).toEqual(['--version', 'daemon-reload', 'try-restart eip-agent.service']);
  });

  it('systemd 219 (CentOS 7): a drop-in resets SystemCallFilter= and ExecStartPre=; 239 needs none', () => {
    expect(scriptlet(SCRIPTLETS.post, 1, { systemdRunning: true, systemdVersion: 219 }).dropIn).toBe('# Written by the eip-agent package for systemd 219 (< 239).\n[Service]\nSystemCallFilter=\nExecStartPre=\n');
    expect(scriptlet(SCRIPTLETS.post, 1, { systemdRunning: true, systemdVersion: 239 }).dropIn).toBeNull();
  });

  it('erase stops and disables; an upgrade\'s removal of the old package does not', () => {
    expect(scriptlet(SCRIPTLETS.preun, 0, { systemdRunning: true, systemdVersion: 252 }).calls).toEqual(['disable --now eip-agent.service']);
    expect(scriptlet(SCRIPTLETS.preun, 1, { systemdRunning: true, systemdVersion: 252 }).calls).toEqual([]);
    expect(scriptlet(SCRIPTLETS.postun, 1, { systemdRunning: true, systemdVersion: 252 }).calls).toEqual([]);
    expect(scriptlet(SCRIPTLETS.postun, 0, { systemdRunning: true, systemdVersion: 252 }).calls).toEqual(['daemon-reload']);
  });
});

describe.skipIf(!existsSync(DIR))('the tarball', () => {
  it('holds the executable, the default config and an install script that parses', () => {
    const name = EXE.split('/').at(-1)!;
    const listing = execFileSync('tar', ['-tzvf', join(DIR, `${name}.tar.gz`)], { encoding: 'utf8' }).trim().split('\n');
    expect(listing.map((l) => l.split(/\s+/).at(-1)).sort()).toEqual([`${name}/`, `${name}/config.json`, `${name}/eip-agent`, `${name}/install.sh`]);
    expect(listing.every((l) => l.includes(' 0/0 '))).toBe(true);
    const out = join(scratch, 'tarball');
    mkdirSync(out);
    execFileSync('tar', ['-C', out, '-xzf', join(DIR, `${name}.tar.gz`)]);
    expect(spawnSync('sh', ['-n', join(out, name, 'install.sh')]).status).toBe(0);
    expect(readFileSync(join(out, name, 'eip-agent')).equals(readFileSync(EXE))).toBe(true);
  });
});

describe.skipIf(!existsSync(DIR))('the tarball\'s install.sh where systemd does not run', () => {
  it('installs the executable and the config, says why no service was installed, and exits 0', () => {
    const name = EXE.split('/').at(-1)!;
    const out = join(scratch, 'tarball-nosystemd');
    mkdirSync(out);
    execFileSync('tar', ['-C', out, '-xzf', join(DIR, `${name}.tar.gz`)]);
    // A PATH with only what the script needs, and no systemctl; DESTDIR keeps it inside the scratch directory.
    const bin = join(out, 'bin');
    mkdirSync(bin);
    for (const tool of ['install', 'dirname']) execFileSync('ln', ['-s', execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool)]);
    const image = join(out, 'image');
    const run = spawnSync('/bin/sh', [join(out, name, 'install.sh')], { env: { PATH: bin, DESTDIR: image }, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^install\.sh: installed .*\/usr\/local\/bin\/eip-agent and .*\/etc\/eip-agent\/config\.json; no service installed, since systemd is not running here: /);
    expect(readFileSync(join(image, 'usr/local/bin/eip-agent')).equals(readFileSync(EXE))).toBe(true);
    expect(readFileSync(join(image, 'etc/eip-agent/config.json'), 'utf8')).toBe(readFileSync(join(out, name, 'config.json'), 'utf8'));
    // A second run keeps the config an operator edited.
    writeFileSync(join(image, 'etc/eip-agent/config.json'), '{"routing": "policy"}\n');
    expect(spawnSync('/bin/sh', [join(out, name, 'install.sh')], { env: { PATH: bin, DESTDIR: image } }).status).toBe(0);
    expect(readFileSync(join(image, 'etc/eip-agent/config.json'), 'utf8')).toBe('{"routing": "policy"}\n');
  });
});

const ZIP = existsSync(DIR) ? readdirSync(DIR).find((n) => n.endsWith('-windows-x64.zip')) : undefined;
describe.skipIf(ZIP === undefined && process.env.CI !== 'true')('the Windows zip', () => {
  it('holds node.exe, the agent, a config and an install script that parses as Windows PowerShell 5.1', async () => {
    expect(ZIP).toBeDefined();
    const zip = join(DIR, ZIP ?? '');
    const top = (ZIP ?? '').replace(/\.zip$/, '');
    const names = execFileSync('unzip', ['-Z1', zip], { encoding: 'utf8' }).trim().split('\n').filter((n) => !n.endsWith('/')).sort();
    expect(names).toEqual(['bin/eip-agent.js', 'config.json', 'dist/eip-agent.js', 'install.ps1', 'node.exe', 'package.json'].map((n) => `${top}/${n}`));
    const out = join(scratch, 'zip');
    mkdirSync(out);
    execFileSync('unzip', ['-q', zip, '-d', out]);
    expect(readFileSync(join(out, top, 'node.exe')).subarray(0, 2).toString('latin1')).toBe('MZ');
    const script = readFileSync(join(out, top, 'install.ps1'), 'utf8');
    expect(script.startsWith('\uFEFF')).toBe(true);
    const { parsePowerShell, syntaxProblems, invocations } = await import('../windows/powershell.js');
    const tree = await parsePowerShell(script.slice(1));
    expect(syntaxProblems(tree)).toEqual([]);
    // Nothing that only PowerShell 7 reads: ternary, null-coalescing, pipeline chains.
    expect(script).not.toMatch(/\?\?|\?\.|&&|\|\||\s\?\s/);
    const commands = invocations(tree.rootNode).map((i) => i.name.toLowerCase());
    expect(commands).toEqual(expect.arrayContaining(['icacls.exe', 'copy-item', 'new-item']));
    expect(script).toContain('install --windows-task --node $node --bin $bin');
    expect(script).toContain("/inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F'");
  });
});

const DEB = existsSync(DIR) ? readdirSync(DIR).find((n) => n.endsWith('_amd64.deb')) : undefined;
const haveLintian = spawnSync('lintian', ['--version']).status === 0;
if ((DEB === undefined || !haveLintian) && process.env.CI === 'true') throw new Error(`the .deb or lintian is missing (${DEB ?? 'no .deb in release/'}; lintian ${haveLintian ? 'found' : 'not found'}): npm test runs npm run release first, .ci/run installs lintian`);

describe.skipIf(DEB === undefined)('the .deb', () => {
  const deb = join(DIR, DEB ?? '');
  it('holds the executable, the unit and the config as a conffile, depends only on what the agent runs', () => {
    const listing = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' }).trim().split('\n');
    expect(listing.filter((l) => !l.startsWith('d')).map((l) => l.split(/\s+/).at(-1)).sort()).toEqual([
      './etc/eip-agent/config.json',
      './lib/systemd/system/eip-agent.service',
      './usr/bin/eip-agent',
      './usr/share/doc/eip-agent/changelog.gz',
      './usr/share/doc/eip-agent/copyright',
      './usr/share/lintian/overrides/eip-agent',
    ]);
    expect(listing.every((l) => l.includes(' root/root '))).toBe(true);
    expect(execFileSync('dpkg-deb', ['-f', deb, 'Depends'], { encoding: 'utf8' }).trim()).toBe(DEB_DEPENDS.join(', '));
    const out = join(scratch, 'deb');
    execFileSync('dpkg-deb', ['-R', deb, out]);
    expect(readFileSync(join(out, 'DEBIAN/conffiles'), 'utf8')).toBe('/etc/eip-agent/config.json\n');
    expect(readFileSync(join(out, 'usr/bin/eip-agent')).equals(readFileSync(EXE))).toBe(true);
    expect(readFileSync(join(out, 'lib/systemd/system/eip-agent.service'), 'utf8')).toContain('\nExecStart=/usr/bin/eip-agent run\n');
  });

  it.skipIf(!haveLintian)('lintian (Debian\'s package checker) reports no error', () => {
    const run = spawnSync('lintian', ['--tag-display-limit', '0', deb], { encoding: 'utf8' });
    const errors = run.stdout.split('\n').filter((l) => l.startsWith('E:'));
    console.log(`lintian on ${DEB}: ${run.stdout.split('\n').filter(Boolean).length} lines, ${errors.length} errors\n${run.stdout}`);
    expect(errors).toEqual([]);
  });
});

describe.skipIf(!canUnshare && process.env.CI !== 'true')('the .deb maintainer scripts', () => {
  it('install: enable --now where systemd runs, only enable in a chroot or image build; upgrade: try-restart', () => {
    expect(scriptlet(MAINTAINER_SCRIPTS.postinst, 'configure', { systemdRunning: true, systemdVersion: 252 }).calls).toEqual(['daemon-reload', 'enable --now eip-agent.service']);
    expect(scriptlet(MAINTAINER_SCRIPTS.postinst, 'configure', { systemdRunning: false, systemdVersion: 252 }).calls).toEqual(['enable eip-agent.service']);
    expect(scriptlet(MAINTAINER_SCRIPTS.postinst, 'configure 0.0.9', { systemdRunning: true, systemdVersion: 252 }).calls).toEqual(['daemon-reload', 'try-restart eip-agent.service']);
  });

  it('remove stops and disables, an upgrade does not; remove keeps the state, purge clears it', () => {
    expect(scriptlet(MAINTAINER_SCRIPTS.prerm, 'remove', { systemdRunning: true, systemdVersion: 252 }).calls).toEqual(['disable --now eip-agent.service']);
    expect(scriptlet(MAINTAINER_SCRIPTS.prerm, 'upgrade 0.2.0', { systemdRunning: true, systemdVersion: 252 }).calls).toEqual([]);
    expect(scriptlet(MAINTAINER_SCRIPTS.postrm, 'remove', { systemdRunning: true, systemdVersion: 252 })).toMatchObject({ calls: ['daemon-reload'], stateKept: true });
    expect(scriptlet(MAINTAINER_SCRIPTS.postrm, 'purge', { systemdRunning: true, systemdVersion: 252 })).toMatchObject({ stateKept: false });
    expect(scriptlet(MAINTAINER_SCRIPTS.postrm, 'upgrade 0.2.0', { systemdRunning: true, systemdVersion: 252 })).toMatchObject({ calls: [], stateKept: true });
  });
});
