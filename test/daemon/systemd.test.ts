// The unit file: the shipped one is what the renderer writes, systemd itself accepts it, and its
// sandbox keeps systemd-analyze's exposure score low. systemd-analyze must exist in CI (.ci/run installs it).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_UNIT_OPTIONS,
  parseSystemdVersion,
  renderUnit,
  type UnitOptions,
  requireVisibleToService,
} from '../../src/daemon/unit.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'bin', 'eip-agent.js');
/** The exposure score README reports; a change to the sandbox that raises it must update both. */
const MAX_EXPOSURE = 2.8;

const analyzeAvailable = spawnSync('systemd-analyze', ['--version']).status === 0;
const inCi = process.env.CI === 'true';

describe('the shipped unit', () => {
  it('systemd/eip-agent.service is renderUnit for the default install paths', () => {
    expect(readFileSync(join(REPO, 'systemd', 'eip-agent.service'), 'utf8')).toBe(renderUnit(DEFAULT_UNIT_OPTIONS));
  });

  it('has the service settings the daemon relies on', () => {
    const lines = renderUnit(DEFAULT_UNIT_OPTIONS).split('\n');
    for (const line of [
      'After=network-online.target',
      'Wants=network-online.target',
      'ExecStart=/usr/bin/node --max-semi-space-size=1 --expose-gc --v8-pool-size=1 /usr/lib/node_modules/eip-agent/bin/eip-agent.js run',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'Restart=always',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ReadWritePaths=-/etc/sysconfig/network-scripts -/etc/sysctl.d -/etc/NetworkManager/system-connections -/etc/cloud/cloud.cfg.d -/etc/netplan -/etc/systemd/network -/run/systemd/network -/run/systemd/system -/run/udev/rules.d -/var/lib/node_exporter/textfile_collector',
      'StateDirectory=eip-agent',
      'RuntimeDirectory=eip-agent',
      'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW',
      'AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW',
      'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET',
      'SystemCallFilter=@system-service',
      'ProtectHome=yes',
      'PrivateTmp=yes',
    ]) {
      expect(lines).toContain(line);
    }
    // /proc/sys must stay writable for `sysctl -w`.
    expect(lines.filter((l) => /^(ProtectKernelTunables|ProcSubset)=/.test(l))).toEqual([]);
  });
});

describe('renderUnit', () => {
  it('passes --config and makes the metrics directory writable', () => {
    const text = renderUnit({
      node: '/opt/node/bin/node',
      bin: '/opt/eip/bin/eip-agent.js',
      config: '/srv/eip.json',
      metricsTextfile: '/srv/metrics/eip.prom',
    });
    expect(text).toContain(
      '\nExecStart=/opt/node/bin/node --max-semi-space-size=1 --expose-gc --v8-pool-size=1 /opt/eip/bin/eip-agent.js run --config /srv/eip.json\n',
    );
    expect(text).toContain(
      '\nReadWritePaths=-/etc/sysconfig/network-scripts -/etc/sysctl.d -/etc/NetworkManager/system-connections -/etc/cloud/cloud.cfg.d -/etc/netplan -/etc/systemd/network -/run/systemd/network -/run/systemd/system -/run/udev/rules.d -/var/lib/node_exporter/textfile_collector -/srv/metrics\n',
    );
  });

  it('gives the release executable its engine settings, and node none of them', () => {
    const text = renderUnit({ ...DEFAULT_UNIT_OPTIONS, executable: '/usr/bin/eip-agent' });
    expect(text).toContain(
      "\nExecStart=/usr/bin/eip-agent run\n# The release executable's engine without its optimizing JIT tiers and without its collection timer (the daemon\n# collects after each stage itself): less memory and CPU for a daemon that polls.\nEnvironment=BUN_JSC_useDFGJIT=0\nEnvironment=BUN_GC_TIMER_DISABLE=1\nExecReload=",
    );
    expect(renderUnit(DEFAULT_UNIT_OPTIONS)).not.toMatch(/^Environment=/m);
  });

  it('leaves the system call allow-list out for a systemd older than 239 (CentOS 7 has 219)', () => {
    const old = renderUnit({ ...DEFAULT_UNIT_OPTIONS, systemdVersion: 219 });
    expect(old).not.toMatch(/^SystemCallFilter=/m);
    expect(old).toContain(
      '# SystemCallFilter=@system-service needs systemd >= 239; systemd 219 would read it as an empty allow-list.\n',
    );
    expect(renderUnit({ ...DEFAULT_UNIT_OPTIONS, systemdVersion: 239 })).toMatch(/^SystemCallFilter=@system-service$/m);
  });

  it.each([
    ['--node', { node: '/opt/my node/node' }],
    ['--node', { node: 'node' }],
    ['--bin', { bin: '/opt/eip/%n.js' }],
    ['--bin', { bin: '/opt/$HOME/eip.js' }],
    ['--config', { config: '/etc/"x".json' }],
    ['metricsTextfile', { metricsTextfile: '/srv/a b/x.prom' }],
  ] as [string, Partial<UnitOptions>][])('refuses a %s path systemd would read differently: %j', (what, bad) => {
    expect(() => renderUnit({ ...DEFAULT_UNIT_OPTIONS, ...bad })).toThrow(
      new RegExp(`^${what} ".*": a unit file needs an absolute path`),
    );
  });

  it('creates the directories it writes before the sandbox starts, 0755, outside it (ExecStartPre=+, systemd >= 231)', () => {
    expect(renderUnit(DEFAULT_UNIT_OPTIONS)).toMatch(
      /^ExecStartPre=\+\/bin\/mkdir -p -m 0755 \/etc\/sysconfig\/network-scripts \/etc\/sysctl\.d$/m,
    );
    const old = renderUnit({ ...DEFAULT_UNIT_OPTIONS, systemdVersion: 219 });
    expect(old).not.toMatch(/^ExecStartPre=/m);
    expect(old).toContain('# systemd 219 has no ExecStartPre=+ (>= 231)');
  });

  it.each([
    ['--bin', { bin: '/root/eip-agent/bin/eip-agent.js' }, '/root'],
    ['--bin', { bin: '/home/deploy/eip-agent/bin/eip-agent.js' }, '/home'],
    ['--node', { node: '/tmp/node-v22/bin/node' }, '/tmp'],
  ] as [string, Partial<UnitOptions>, string][])('refuses a %s the service cannot see: %j', (what, bad, dir) => {
    expect(() => requireVisibleToService(what, String(Object.values(bad)[0]))).toThrow(
      `${what} ${Object.values(bad)[0]}: the service cannot see ${dir} (ProtectHome=, PrivateTmp=); install eip-agent elsewhere (e.g. /usr/local/lib) and give that path`,
    );
  });

  it.each([
    ['systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT', 252],
    ['systemd 219\n+PAM', 219],
    ['nonsense', undefined],
  ])('parseSystemdVersion(%j) = %j', (output, version) => {
    expect(parseSystemdVersion(output)).toBe(version);
  });
});

describe.skipIf(!analyzeAvailable && !inCi)('systemd-analyze', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eip-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes a unit named eip-agent.service (the name matters to systemd) in its own directory. */
  function unitFile(name: string, text: string): string {
    const path = join(dir, name, 'eip-agent.service');
    spawnSync('mkdir', ['-p', join(dir, name)]);
    writeFileSync(path, text);
    return path;
  }

  function analyze(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync('systemd-analyze', args, { encoding: 'utf8' });
    if (result.error)
      throw new Error(`systemd-analyze: ${result.error.message} (install the systemd package; .ci/run does)`);
    return result;
  }

  const installed: UnitOptions = { node: process.execPath, bin: BIN };

  it('verify accepts the unit as install writes it (node and bin exist here)', () => {
    for (const [name, options] of [
      ['current', installed],
      ['old-systemd', { ...installed, systemdVersion: 219 }],
      ['with-config', { ...installed, config: '/etc/eip-agent/other.json', metricsTextfile: '/srv/metrics/eip.prom' }],
    ] as const) {
      const result = analyze(['verify', unitFile(name, renderUnit(options))]);
      expect(result.status, `${name}: ${result.stderr}`).toBe(0);
      expect(result.stderr, name).not.toContain('eip-agent.service:');
    }
  });

  it('verify rejects a broken unit (the check can fail)', () => {
    const broken = renderUnit(installed)
      .replace('Restart=always', 'Restart=sometimes\nProtectSytem=strict')
      .replace(process.execPath, '/nonexistent/node');
    const result = analyze(['verify', unitFile('broken', broken)]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("Unknown key 'ProtectSytem'");
  });

  it(`security --offline rates the shipped unit at most ${MAX_EXPOSURE}`, () => {
    const result = analyze([
      'security',
      '--offline=yes',
      unitFile('shipped', readFileSync(join(REPO, 'systemd', 'eip-agent.service'), 'utf8')),
    ]);
    expect(result.status, result.stderr).toBe(0);
    const score = /Overall exposure level for eip-agent\.service: (\d+\.\d+)/.exec(result.stdout)?.[1];
    expect(score, result.stdout.slice(-300)).toBeDefined();
    expect(Number(score)).toBeLessThanOrEqual(MAX_EXPOSURE);
  });
});
