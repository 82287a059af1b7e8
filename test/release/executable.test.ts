// The release executable (`npm run release`): what it needs from the system, and that it behaves exactly like the
// development CLI. The lab tests run against it as well (the `release` project in vitest.config.ts).
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startMetadataEmulator, type MetadataFaults } from '../../src/sandbox/emulator.js';
import { IP8, NIC1, manualTree } from '../metadata/fixture.js';
import { releaseExecutable } from './paths.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const EXE = releaseExecutable();
const built = existsSync(EXE);
if (!built && process.env.CI === 'true') throw new Error(`${EXE} is missing: npm test builds it with \`npm run release\` before the tests`);
if (!built) console.warn(`skipping the release executable tests: ${EXE} is missing (npm run release)`);

const PLAN = ['plan', '--metadata-file', join(REPO, 'examples', 'manual.json'), '--root', join(REPO, 'examples', 'centos7-root')];

describe.skipIf(!built)('the release executable', () => {
  it('needs no glibc newer than 2.17 (CentOS 7, TencentOS 2.4)', () => {
    const symbols = execFileSync('objdump', ['-T', EXE], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const versions = [...new Set([...symbols.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])] as const))];
    expect(versions.length).toBeGreaterThan(0);
    const highest = versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]).at(-1)!;
    console.log(`release executable: highest required GLIBC_${highest.join('.')}`);
    expect(highest[0] * 1000 + highest[1]).toBeLessThanOrEqual(2 * 1000 + 17);
  });

  it('runs with an empty environment and no node on PATH, and prints the same plan as the development CLI', () => {
    const release = spawnSync(EXE, PLAN, { env: {}, encoding: 'utf8' });
    const dev = spawnSync(process.execPath, [join(REPO, 'bin', 'eip-agent.js'), ...PLAN], { encoding: 'utf8' });
    expect(release.error).toBeUndefined();
    expect(release.status).toBe(2);
    expect(release.status).toBe(dev.status);
    expect(release.stdout).toBe(dev.stdout);
    expect(release.stderr).toBe(dev.stderr);
  });

  it('says its version, and its one-line errors are the CLI\'s', () => {
    const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(spawnSync(EXE, ['--version'], { env: {}, encoding: 'utf8' }).stdout).toBe(`eip-agent ${version}\n`);
    const bad = spawnSync(EXE, ['plan', '--root', 'relative'], { env: {}, encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe('eip-agent: config: --root "relative" must be an absolute path\n');
  });

  it('is listed in SHA256SUMS with its digest', () => {
    const sums = readFileSync(join(EXE, '..', 'SHA256SUMS'), 'utf8');
    const digest = execFileSync('sha256sum', [EXE], { encoding: 'utf8' }).split(' ')[0];
    expect(sums).toContain(`${digest}  ${EXE.split('/').at(-1)}\n`);
  });
});

/** Runs a command without blocking this process (the emulator answers from here). */
function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, encoding: 'utf8' }, (error, stdout, stderr) => resolve({ status: error === null ? 0 : Number(error.code ?? -1), stdout, stderr }));
  });
}

describe.skipIf(!built)('the release executable reading the metadata over HTTP', () => {
  // Bun.connect on one side, node:net on the other: the same answers and the same one-line failures (each fault on
  // one item, so that both name the same one).
  const faults: [string, MetadataFaults | 'closed', RegExp][] = [
    ['a healthy service', {}, /^$/],
    ['HTTP 503 on every try', { status: { code: 503, match: `${NIC1}primary-local-ipv4` } }, /: HTTP 503 after 2 attempts \(http:/],
    ['a body cut short', { truncate: { match: 'meta-data/mac' } }, /^eip-agent: metadata: mac: truncated body \(.+\) after 2 attempts \(http:/],
    ['a hang', { hang: { match: `${IP8}subnet-mask` } }, /: timed out after 400 ms \(2 attempts\) at http:/],
    ['an answer over the cap', { body: { match: 'instance-id', base64: Buffer.from('i'.repeat(70_000)).toString('base64') } }, /^eip-agent: metadata: instance-id: answer larger than 65536 bytes \(metadataMaxBytes\) \(http:/],
    ['invalid UTF-8', { body: { match: 'placement/region', base64: Buffer.from([0xff, 0xfe]).toString('base64') } }, /: body is not valid UTF-8 \(http:/],
    ['a refused connection', 'closed', /: connection failed \(ECONNREFUSED\) after 2 attempts \(http:/],
  ];

  it.each(faults)('%s', async (_name, fault, stderr) => {
    const emulator = await startMetadataEmulator({ tree: manualTree() });
    const dir = mkdtempSync(join(tmpdir(), 'eip-release-http-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ metadataRetries: 1, metadataTimeoutMs: 400 }));
      if (fault === 'closed') await emulator.close();
      else emulator.setFaults(structuredClone(fault));
      const args = ['plan', '--metadata-url', emulator.url, '--root', join(REPO, 'examples', 'centos7-root'), '--config', join(dir, 'config.json')];
      const release = await run(EXE, args, {});
      if (fault !== 'closed') emulator.setFaults(structuredClone(fault));
      const dev = await run(process.execPath, [join(REPO, 'bin', 'eip-agent.js'), ...args], {});
      expect(release.stderr).toMatch(stderr);
      expect(release).toEqual(dev);
      expect(release.status).toBe(fault === 'closed' || Object.keys(fault).length > 0 ? 1 : 2);
    } finally {
      if (fault !== 'closed') await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!built)('install --systemd from the release executable', () => {
  it('writes a unit that runs the executable itself, no node (or refuses a path the service cannot see)', () => {
    const image = mkdtempSync(join(tmpdir(), 'eip-install-'));
    try {
      const run = spawnSync(EXE, ['install', '--systemd', '--root', image, '--systemd-version', '252'], { env: {}, encoding: 'utf8' });
      const hidden = ['/home/', '/root/', '/run/user/', '/tmp/', '/var/tmp/'].find((dir) => EXE.startsWith(dir));
      if (hidden !== undefined) {
        // A checkout under /tmp (say): the sandboxed service could not see the executable there.
        expect(run.status).toBe(1);
        expect(run.stderr).toBe(`eip-agent: config: --executable ${EXE}: the service cannot see ${hidden.slice(0, -1)} (ProtectHome=, PrivateTmp=); install eip-agent elsewhere (e.g. /usr/local/lib) and give that path\n`);
        return;
      }
      expect(run.status, run.stderr).toBe(0);
      const unit = readFileSync(join(image, 'etc/systemd/system/eip-agent.service'), 'utf8');
      expect(unit).toMatch(new RegExp(`^ExecStart=${EXE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} run$`, 'm'));
      expect(unit).not.toMatch(/--max-semi-space-size|bin\/eip-agent\.js/);
      expect(unit).toMatch(/^Environment=BUN_JSC_useDFGJIT=0$/m);
      expect(unit).toMatch(/^Environment=BUN_GC_TIMER_DISABLE=1$/m);
    } finally {
      rmSync(image, { recursive: true, force: true });
    }
  });
});
