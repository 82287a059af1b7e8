import { beforeEach, describe, expect, it } from 'vitest';
import { EXIT, main } from '../../src/cli/main.js';
import { renderUnit, UNIT_PATH } from '../../src/daemon/unit.js';
import type { RunOptions, RunResult } from '../../src/host/host.js';
import { createTestHost, vol } from '../helpers/host.js';

const PATHS = ['--node', '/usr/bin/node', '--bin', '/opt/eip-agent/bin/eip-agent.js'];
const UNIT = { node: '/usr/bin/node', bin: '/opt/eip-agent/bin/eip-agent.js' };

/** A recording `systemctl`: answers --version with `version`, fails the commands listed in `fail`. */
function systemctl(version = 'systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT\n', fail: string[] = []) {
  const calls: string[] = [];
  const run = async (argv: readonly string[], _options?: RunOptions): Promise<RunResult> => {
    const line = argv.join(' ');
    calls.push(line);
    if (argv[0] !== 'systemctl') throw new Error(`unexpected process ${line}`);
    if (fail.includes(line)) return { exitCode: 1, stdout: '', stderr: 'Failed to enable unit: Access denied\n' };
    return { exitCode: 0, stdout: argv[1] === '--version' ? version : '', stderr: '' };
  };
  return { calls, run };
}

async function cli(argv: string[], run = systemctl().run): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, createTestHost({ run }), { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

function read(path: string): string | null {
  return vol.existsSync(path) ? String(vol.readFileSync(path, 'utf8')) : null;
}

beforeEach(() => vol.reset());

describe('eip-agent install --systemd', () => {
  it('on the live system: writes the unit for this installation, reloads systemd, enables and starts it', async () => {
    const sys = systemctl();
    const run = await cli(['install', '--systemd', ...PATHS], sys.run);
    expect(run.err).toBe('');
    expect(run.code).toBe(EXIT.ok);
    expect(sys.calls).toEqual([
      'systemctl --version',
      'systemctl daemon-reload',
      'systemctl enable --now eip-agent.service',
    ]);
    expect(read(UNIT_PATH)).toBe(renderUnit({ ...UNIT, systemdVersion: 252 }));
    expect(run.out).toBe(
      `wrote ${UNIT_PATH}\nran systemctl daemon-reload\nran systemctl enable --now eip-agent.service\n`,
    );
    expect(vol.statSync(UNIT_PATH).mode & 0o777).toBe(0o644);
  });

  it('leaves the system call allow-list out on CentOS 7 (systemd 219)', async () => {
    const run = await cli(['install', '--systemd', ...PATHS], systemctl('systemd 219\n+PAM\n').run);
    expect(run.code).toBe(EXIT.ok);
    expect(read(UNIT_PATH)).toBe(renderUnit({ ...UNIT, systemdVersion: 219 }));
    expect(read(UNIT_PATH)).not.toMatch(/^SystemCallFilter=/m);
  });

  it('under --root: writes the unit there and runs nothing', async () => {
    const sys = systemctl();
    const run = await cli(['install', '--systemd', '--root', '/image', '--systemd-version', '219', ...PATHS], sys.run);
    expect(run.code).toBe(EXIT.ok);
    expect(sys.calls).toEqual([]);
    expect(read(`/image${UNIT_PATH}`)).toBe(renderUnit({ ...UNIT, systemdVersion: 219 }));
    expect(read(UNIT_PATH)).toBeNull();
    expect(run.out).toBe(
      `wrote /image${UNIT_PATH}\n--root is not /: not enabling it here (in that system: systemctl daemon-reload && systemctl enable --now eip-agent.service)\n`,
    );
  });

  it('passes --config to run and opens the metrics directory of that config', async () => {
    vol.fromJSON({ '/srv/eip.json': JSON.stringify({ metricsTextfile: '/srv/metrics/eip.prom' }) });
    const run = await cli(['install', '--systemd', '--root', '/image', '--config', '/srv/eip.json', ...PATHS]);
    expect(run.code, run.err).toBe(EXIT.ok);
    expect(read(`/image${UNIT_PATH}`)).toBe(
      renderUnit({ ...UNIT, config: '/srv/eip.json', metricsTextfile: '/srv/metrics/eip.prom' }),
    );
  });

  it("replaces its own unit (an upgrade) but not someone else's", async () => {
    vol.fromJSON({ [`/image${UNIT_PATH}`]: '# Managed by eip-agent (old)\n[Service]\n' });
    expect((await cli(['install', '--systemd', '--root', '/image', ...PATHS])).code).toBe(EXIT.ok);
    expect(read(`/image${UNIT_PATH}`)).toBe(renderUnit(UNIT));

    vol.writeFileSync(`/image${UNIT_PATH}`, '[Service]\nExecStart=/usr/local/bin/my-agent\n');
    const run = await cli(['install', '--systemd', '--root', '/image', ...PATHS]);
    expect(run.code).toBe(EXIT.error);
    expect(run.err).toBe(
      `eip-agent: config: /image${UNIT_PATH} exists and was not written by eip-agent (no "# Managed by eip-agent" first line): move it away first\n`,
    );
    expect(read(`/image${UNIT_PATH}`)).toBe('[Service]\nExecStart=/usr/local/bin/my-agent\n');
  });

  it.each([
    ['without --systemd', ['install', ...PATHS], /^eip-agent: config: install: say what to install: --systemd\b.*\n$/],
    [
      'a node path with a space',
      ['install', '--systemd', '--root', '/image', '--node', '/opt/my node/node', '--bin', '/b.js'],
      'eip-agent: config: --node "/opt/my node/node": a unit file needs an absolute path of letters, digits and . _ + @ : / - only\n',
    ],
    [
      'a relative --root',
      ['install', '--systemd', '--root', 'image', ...PATHS],
      'eip-agent: config: --root "image" must be an absolute path\n',
    ],
  ] as [string, string[], string | RegExp][])('refuses %s, writing nothing', async (_name, argv, message) => {
    const sys = systemctl();
    const run = await cli(argv, sys.run);
    expect(run.code).toBe(EXIT.error);
    if (typeof message === 'string') expect(run.err).toBe(message);
    else expect(run.err).toMatch(message);
    expect(vol.toJSON()).toEqual({});
    expect(sys.calls).toEqual([]);
  });

  it('reports a failing systemctl with its message', async () => {
    const run = await cli(
      ['install', '--systemd', ...PATHS],
      systemctl(undefined, ['systemctl enable --now eip-agent.service']).run,
    );
    expect(run.code).toBe(EXIT.error);
    expect(run.err).toBe(
      'eip-agent: host: `systemctl enable --now eip-agent.service` failed (exit 1): Failed to enable unit: Access denied\n',
    );
  });

  it('names the package when systemctl is missing', async () => {
    const run = await cli(['install', '--systemd', ...PATHS], async () => {
      throw Object.assign(new Error('spawn systemctl ENOENT'), { code: 'ENOENT' });
    });
    expect(run.err).toBe('eip-agent: host: `systemctl` was not found on PATH: install systemd\n');
    expect(read(UNIT_PATH)).toBeNull();
  });
});

describe('eip-agent uninstall --systemd', () => {
  it('on the live system: disables and stops it, removes the unit, reloads systemd', async () => {
    vol.fromJSON({ [UNIT_PATH]: renderUnit(UNIT) });
    const sys = systemctl();
    const run = await cli(['uninstall', '--systemd'], sys.run);
    expect(run.code, run.err).toBe(EXIT.ok);
    expect(sys.calls).toEqual(['systemctl disable --now eip-agent.service', 'systemctl daemon-reload']);
    expect(read(UNIT_PATH)).toBeNull();
    expect(run.out).toBe(
      `ran systemctl disable --now eip-agent.service\nremoved ${UNIT_PATH}\nran systemctl daemon-reload\n`,
    );
  });

  it('under --root: removes the unit there and runs nothing', async () => {
    vol.fromJSON({ [`/image${UNIT_PATH}`]: renderUnit(UNIT) });
    const sys = systemctl();
    expect((await cli(['uninstall', '--systemd', '--root', '/image'], sys.run)).code).toBe(EXIT.ok);
    expect(sys.calls).toEqual([]);
    expect(read(`/image${UNIT_PATH}`)).toBeNull();
  });

  it('says so when nothing is installed', async () => {
    const sys = systemctl();
    const run = await cli(['uninstall', '--systemd'], sys.run);
    expect(run.code).toBe(EXIT.ok);
    expect(run.out).toBe(`not installed: ${UNIT_PATH} does not exist\n`);
    expect(sys.calls).toEqual([]);
  });

  it('refuses to remove a unit it did not write', async () => {
    vol.fromJSON({ [UNIT_PATH]: '[Service]\n' });
    const sys = systemctl();
    const run = await cli(['uninstall', '--systemd'], sys.run);
    expect(run.code).toBe(EXIT.error);
    expect(sys.calls).toEqual([]);
    expect(read(UNIT_PATH)).toBe('[Service]\n');
  });
});
