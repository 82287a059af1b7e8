import { beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/main.js';
import type { Host, RunOptions, RunResult } from '../../src/host/host.js';
import { buildModel } from '../../src/model/index.js';
import { WINDOWS_EXIT } from '../../src/targets/windows/constants.js';
import { agentDirectory, parseScriptResult, windowsTarget } from '../../src/targets/windows/target.js';
import { runCli } from '../helpers/cli.js';
import { createTestHost, vol } from '../helpers/host.js';
import { manualTree } from '../lab/fixtures.js';

const META = ['--metadata-file', '/meta.json'];
const SCRIPT = '/agent/eip-agent.ps1';

interface Call {
  argv: readonly string[];
  options: RunOptions | undefined;
  /** The script file as it was when the process started. */
  script: string | null;
}

/** A Windows host whose processes answer with `exitCode` and a JSON line (or `stdout` verbatim). */
function windowsHost(exitCode: number, json: Record<string, unknown> | string, calls: Call[]): Host {
  return createTestHost({
    platform: 'win32',
    env: { ProgramData: 'C:\\ProgramData' },
    async run(argv, options): Promise<RunResult> {
      const file = argv.indexOf('-File');
      const path = String(argv[file + 1]).replace(/\\/g, '/');
      calls.push({ argv, options, script: vol.existsSync(path) ? String(vol.readFileSync(path, 'utf8')) : null });
      const stdout =
        typeof json === 'string'
          ? json
          : `WARNING: something localized\r\n${JSON.stringify({ exitCode, ...json })}\r\n`;
      return { exitCode, stdout, stderr: '' };
    },
  });
}

const CHANGED = {
  status: 'changed',
  changes: [
    'ifIndex 12 (52:54:00:8A:7A:64): DHCP -> static 10.0.0.2/24',
    'ifIndex 12 (52:54:00:8A:7A:64): add 10.0.0.3/24 (SkipAsSource)',
  ],
  checks: [
    { kind: 'address', subject: '10.0.0.3/24 on ifIndex 12 (52:54:00:8A:7A:64)', ok: true, detail: 'Preferred' },
    { kind: 'ping', subject: 'gateway 10.0.0.1 from ifIndex 12 (52:54:00:8A:7A:64)', ok: true, detail: 'Success' },
  ],
  errors: [],
};
const IN_SYNC = { status: 'in-sync', changes: [], checks: [], errors: [] };

beforeEach(() => {
  vol.reset();
  vol.fromJSON({ '/meta.json': JSON.stringify(manualTree()) });
  vol.mkdirSync('/agent');
});

describe('Windows target: plan and render work on any OS', () => {
  it('render --out DIR writes DIR/eip-agent.ps1 (UTF-8 with BOM) or DIR/eip-agent.netsh.ps1', async () => {
    const ps = await runCli(['render', '--target', 'windows', ...META, '--out', '/out'], createTestHost());
    expect(ps).toMatchObject({ code: EXIT.ok, out: '/out/eip-agent.ps1\n' });
    expect(String(vol.readFileSync('/out/eip-agent.ps1', 'utf8')).startsWith('\uFEFF# Managed by eip-agent')).toBe(
      true,
    );
    const cmd = await runCli(
      ['render', '--target', 'windows', '--windows-flavor', 'netsh', ...META, '--out', '/out'],
      createTestHost(),
    );
    expect(cmd).toMatchObject({ code: EXIT.ok, out: '/out/eip-agent.netsh.ps1\n' });
    expect(Object.keys(vol.toJSON('/out')).sort()).toEqual(['/out/eip-agent.netsh.ps1', '/out/eip-agent.ps1']);
  });

  it('plan lists the script, compares no runtime, and says the script decides at run time', async () => {
    const { code, out } = await runCli(['plan', '--target', 'windows', ...META, '--root', '/agent'], createTestHost());
    expect(code).toBe(EXIT.pending);
    expect(out).toContain('Plan for target windows, root /agent');
    expect(out).toMatch(/create\s+\/eip-agent\.ps1/);
    expect(out).toContain('(not compared');
    expect(out).toContain('at run time on the guest');
  });

  it.each([
    ['the same script', (s: string) => s, 'unchanged', true, undefined],
    [
      'an older script of the agent (BOM, marker)',
      (s: string) => s.replace('10.0.0.3', '10.0.0.9'),
      'update',
      true,
      undefined,
    ],
    ['a file someone else wrote', () => 'Write-Host hello\r\n', 'update', false, '/eip-agent.ps1.bak'],
  ])('with %s on disk', async (_what, existing, action, previousOwned, backupPath) => {
    const host = createTestHost();
    const rendered = await windowsTarget.plan(host, buildModel(manualTree()), {
      root: '/agent',
      routing: 'policy',
      runtime: false,
      requireNics: false,
    });
    vol.fromJSON({ [SCRIPT]: existing(rendered.files[0]!.content) });
    const plan = await windowsTarget.plan(host, buildModel(manualTree()), {
      root: '/agent',
      routing: 'policy',
      runtime: false,
      requireNics: false,
    });
    expect(
      plan.files.map((f) => ({ action: f.action, previousOwned: f.previousOwned, backupPath: f.backupPath })),
    ).toEqual([{ action, previousOwned, backupPath }]);
    expect(plan).toMatchObject({ runtime: [], runtimePlanned: false, root: '/agent' });
  });

  it('puts the agent directory under %ProgramData% on Windows and previews it elsewhere', () => {
    expect(agentDirectory(createTestHost({ platform: 'win32', env: { ProgramData: 'D:\\Data' } }), '/')).toBe(
      'D:\\Data\\eip-agent',
    );
    expect(agentDirectory(createTestHost(), '/')).toBe('/ProgramData/eip-agent');
    expect(agentDirectory(createTestHost({ platform: 'win32' }), '/x')).toBe('/x');
  });

  it('apply off Windows is a clear error and writes nothing', async () => {
    const { code, err } = await runCli(['apply', '--target', 'windows', ...META, '--root', '/agent'], createTestHost());
    expect(code).toBe(EXIT.error);
    expect(err).toBe(
      'eip-agent: host: applying the Windows target needs Windows; use `plan --target windows` or `render --target windows --out DIR` here\n',
    );
    expect(vol.existsSync(SCRIPT)).toBe(false);
  });

  it('status and rollback ask the target, and the Windows target says in one line what it does not do', async () => {
    const calls: Call[] = [];
    const host = windowsHost(0, {}, calls);
    const status = await runCli(['status', '--target', 'windows', ...META, '--root', '/agent'], host);
    expect(status).toMatchObject({
      code: EXIT.error,
      err: 'eip-agent: host: status reads the live state with `ip`; target windows is not supported yet\n',
    });
    const rollback = await runCli(['rollback', '--root', '/agent'], host);
    expect(rollback.code).toBe(EXIT.error);
    expect(rollback.err).toBe(
      'eip-agent: host: rollback on Windows: the script already rolls back its own change when a step or its verification fails; undoing an apply that succeeded is not supported yet\n',
    );
    // Nothing ran: before, rollback went to the Linux rollback (ip, sysctl) whatever the platform.
    expect(calls).toEqual([]);
  });
});

describe('Windows target: apply on win32 runs the script and maps its result', () => {
  it('runs powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File on the written script', async () => {
    const calls: Call[] = [];
    const { code, out } = await runCli(
      ['apply', '--target', 'windows', ...META, '--root', '/agent'],
      windowsHost(WINDOWS_EXIT.changed, CHANGED, calls),
    );
    expect(calls.map((c) => c.argv)).toEqual([
      [
        'powershell.exe',
        '-NoProfile',
        '-NonInteractive',
        '-ExecutionPolicy',
        'Bypass',
        '-File',
        '\\agent\\eip-agent.ps1',
        '-Mode',
        'Apply',
      ],
    ]);
    expect(calls[0]!.script?.startsWith('\uFEFF# Managed by eip-agent')).toBe(true);
    expect(calls[0]!.options?.timeoutMs).toBeGreaterThan(0);
    expect(code).toBe(EXIT.ok);
    expect(out).toContain('wrote /eip-agent.ps1');
    expect(out).toContain('applied: ifIndex 12 (52:54:00:8A:7A:64): add 10.0.0.3/24 (SkipAsSource)');
    expect(out).toContain('ok   script    eip-agent.ps1 — exit 10: changed and verified');
  });

  it('runs the netsh flavor with powershell.exe too, and removes the .cmd script an older release wrote (only its own)', async () => {
    const calls: Call[] = [];
    const oldScript =
      '@rem Managed by eip-agent: generated from instance metadata, local edits are replaced.\r\n@echo off\r\n';
    // The PowerShell flavor applied before: its script is the agent's, and owned. And an old netsh .cmd is there.
    const before = ['apply', '--target', 'windows', ...META, '--root', '/agent'];
    expect((await runCli(before, windowsHost(WINDOWS_EXIT.inSync, IN_SYNC, []))).code).toBe(EXIT.ok);
    vol.writeFileSync('/agent/eip-agent.netsh.cmd', oldScript);
    const args = ['--target', 'windows', '--windows-flavor', 'netsh', ...META, '--root', '/agent'];
    const preview = await runCli(['plan', ...args], windowsHost(WINDOWS_EXIT.inSync, IN_SYNC, []));
    expect(preview.out).toMatch(/create\s+\/eip-agent\.netsh\.ps1/);
    expect(preview.out).toMatch(/remove\s+\/eip-agent\.ps1/);
    expect(preview.out).toMatch(/remove\s+\/eip-agent\.netsh\.cmd/);
    const { code } = await runCli(['apply', ...args], windowsHost(WINDOWS_EXIT.inSync, IN_SYNC, calls));
    expect(code).toBe(EXIT.ok);
    expect(calls.map((c) => c.argv.slice(-4))).toEqual([['-File', '\\agent\\eip-agent.netsh.ps1', '-Mode', 'Apply']]);
    expect(calls[0]!.script).toContain("Flavor      = 'netsh'");
    expect(Object.keys(vol.toJSON('/agent')).filter((p) => /^\/agent\/[^/]+\.(ps1|cmd)$/.test(p))).toEqual([
      '/agent/eip-agent.netsh.ps1',
    ]);
    // The removed scripts are no longer the agent's to own.
    const state = JSON.parse(String(vol.readFileSync('/agent/var/lib/eip-agent/state.json', 'utf8'))) as {
      owned: { files: string[] };
    };
    expect(state.owned.files).toEqual(['/eip-agent.netsh.ps1']);
  });

  it("leaves a script of the same name that is not the agent's", async () => {
    vol.writeFileSync('/agent/eip-agent.netsh.cmd', '@echo off\r\nrem my own\r\n');
    const { code } = await runCli(
      ['apply', '--target', 'windows', ...META, '--root', '/agent'],
      windowsHost(WINDOWS_EXIT.inSync, IN_SYNC, []),
    );
    expect(code).toBe(EXIT.ok);
    expect(vol.readFileSync('/agent/eip-agent.netsh.cmd', 'utf8')).toBe('@echo off\r\nrem my own\r\n');
  });

  it.each([
    [WINDOWS_EXIT.rolledBack, 'exit 30: a step or the verification failed: rolled back'],
    [
      WINDOWS_EXIT.rollbackFailed,
      'exit 31: a step or the verification failed and the rollback failed too: check the adapters',
    ],
  ])('exit %i: reported as not verified, and the script file is put back as it was', async (exitCode, detail) => {
    const calls: Call[] = [];
    const failed = {
      ...CHANGED,
      status: 'rolled-back',
      checks: [{ kind: 'ping', subject: 'gateway 10.0.0.1', ok: false, detail: 'TimedOut' }],
      errors: ['verification failed'],
    };
    const { code, out, err } = await runCli(
      ['apply', '--target', 'windows', ...META, '--root', '/agent'],
      windowsHost(exitCode, failed, calls),
    );
    expect(code).toBe(EXIT.notVerified);
    expect(out).toContain('FAIL ping      gateway 10.0.0.1 — TimedOut');
    expect(out).toContain(`FAIL script    eip-agent.ps1 — ${detail}; verification failed`);
    expect(err).toContain('rolled back');
    expect(vol.existsSync(SCRIPT)).toBe(false);
  });

  it.each([
    [
      WINDOWS_EXIT.notFound,
      'an adapter was not found by its MAC, or several were: nothing changed (wait until the ENI is attached): 0 adapter(s) have MAC 20:90:6F:F7:93:2E; expected exactly one',
    ],
    [
      WINDOWS_EXIT.refused,
      'a DHCP lease differs from the metadata primary: nothing changed: 0 adapter(s) have MAC 20:90:6F:F7:93:2E; expected exactly one',
    ],
    [
      WINDOWS_EXIT.busy,
      'another run holds the lock: nothing changed: 0 adapter(s) have MAC 20:90:6F:F7:93:2E; expected exactly one',
    ],
    [WINDOWS_EXIT.error, 'error before any change: 0 adapter(s) have MAC 20:90:6F:F7:93:2E; expected exactly one'],
    [7, 'unexpected exit code 7 (x): 0 adapter(s) have MAC 20:90:6F:F7:93:2E; expected exactly one'],
  ])('exit %i: an error naming the cause, nothing left written', async (exitCode, message) => {
    const result = {
      status: 'x',
      changes: [],
      checks: [],
      errors: ['0 adapter(s) have MAC 20:90:6F:F7:93:2E; expected exactly one'],
    };
    const { code, err } = await runCli(
      ['apply', '--target', 'windows', ...META, '--root', '/agent'],
      windowsHost(exitCode, result, []),
    );
    expect(code).toBe(EXIT.error);
    expect(err).toBe(`eip-agent: apply: eip-agent.ps1: ${message}\n`);
    expect(vol.existsSync(SCRIPT)).toBe(false);
  });

  it('a script that prints no JSON is an error that quotes what it said', async () => {
    const { code, err } = await runCli(
      ['apply', '--target', 'windows', ...META, '--root', '/agent'],
      windowsHost(1, 'Set-StrictMode : cannot bind\r\n', []),
    );
    expect(code).toBe(EXIT.error);
    expect(err).toBe(
      'eip-agent: apply: \\agent\\eip-agent.ps1 exited 1 without a JSON result: Set-StrictMode : cannot bind\n',
    );
  });

  it('--no-runtime writes the script and runs nothing', async () => {
    const calls: Call[] = [];
    const { code } = await runCli(
      ['apply', '--no-runtime', '--target', 'windows', ...META, '--root', '/agent'],
      windowsHost(0, {}, calls),
    );
    expect(code).toBe(EXIT.ok);
    expect(calls).toEqual([]);
    expect(vol.existsSync(SCRIPT)).toBe(true);
  });

  it('verify runs a side copy of the rendered script in Verify mode, and removes it', async () => {
    const calls: Call[] = [];
    const notInSync = {
      status: 'not-as-desired',
      changes: [],
      checks: [{ kind: 'script', subject: 'ifIndex 12', ok: false, detail: 'DHCP is enabled' }],
      errors: [],
    };
    const { code, out } = await runCli(
      ['verify', '--target', 'windows', ...META, '--root', '/agent'],
      windowsHost(WINDOWS_EXIT.notAsDesired, notInSync, calls),
    );
    expect(code).toBe(EXIT.notVerified);
    expect(calls.map((c) => c.argv.slice(-3))).toEqual([['\\agent\\.verify-eip-agent.ps1', '-Mode', 'Verify']]);
    expect(calls[0]!.script?.startsWith('\uFEFF# Managed by eip-agent')).toBe(true);
    expect(out).toContain('FAIL script    ifIndex 12 — DHCP is enabled');
    expect(vol.existsSync('/agent/.verify-eip-agent.ps1')).toBe(false);
  });
});

describe('script results', () => {
  it('takes the last JSON line, keeps known check kinds and maps the others to script', () => {
    const stdout =
      'noise\r\n{"exitCode":0}\r\n{"exitCode":10,"status":"changed","changes":["a",3],"checks":[{"kind":"address","subject":"s","ok":true,"detail":"d"},{"kind":"weird","subject":"t","ok":"yes"}],"errors":[]}\r\n';
    expect(parseScriptResult('x.ps1', 10, stdout, '')).toEqual({
      exitCode: 10,
      status: 'changed',
      changes: ['a'],
      errors: [],
      checks: [
        { kind: 'address', subject: 's', ok: true, detail: 'd' },
        { kind: 'script', subject: 't', ok: false, detail: '' },
      ],
    });
  });
});

describe('install / uninstall --windows-task', () => {
  it('off Windows prints the registration script and runs nothing', async () => {
    const { code, out, err } = await runCli(['install', '--windows-task', '--interval', '3'], createTestHost());
    expect(code).toBe(EXIT.ok);
    expect(out.startsWith('# Managed by eip-agent: registers the scheduled task')).toBe(true);
    expect(out).toContain('IntervalMinutes  = 3\r\n');
    expect(out).toContain("Node             = 'C:\\Program Files\\nodejs\\node.exe'");
    expect(err).toContain('not on Windows');
  });

  it('with --root DIR writes DIR/install-task.ps1', async () => {
    const { code, out } = await runCli(
      ['install', '--windows-task', '--root', '/agent', '--windows-flavor', 'netsh'],
      createTestHost(),
    );
    expect({ code, out }).toEqual({ code: EXIT.ok, out: '/agent/install-task.ps1\n' });
    expect(String(vol.readFileSync('/agent/install-task.ps1', 'utf8'))).toContain(
      "Arguments        = 'apply --target windows --windows-flavor netsh --skip-failed'",
    );
  });

  it('on Windows writes the script to the agent directory and runs it', async () => {
    const calls: Call[] = [];
    const host = windowsHost(0, { task: 'eip-agent', status: 'registered' }, calls);
    const { code, out } = await runCli(
      [
        'install',
        '--windows-task',
        '--root',
        '/agent',
        '--node',
        'C:\\node\\node.exe',
        '--bin',
        'C:\\eip-agent\\dist\\eip-agent.js',
      ],
      host,
    );
    expect(code).toBe(EXIT.ok);
    expect(calls.map((c) => c.argv)).toEqual([
      [
        'powershell.exe',
        '-NoProfile',
        '-NonInteractive',
        '-ExecutionPolicy',
        'Bypass',
        '-File',
        '\\agent\\install-task.ps1',
      ],
    ]);
    expect(calls[0]!.script).toContain("Agent            = 'C:\\eip-agent\\dist\\eip-agent.js'");
    expect(out).toBe('scheduled task eip-agent: registered (\\agent\\install-task.ps1)\n');
  });

  it('uninstall on Windows runs the removal script; a failure is one line naming the cause', async () => {
    const ok = await runCli(
      ['uninstall', '--windows-task', '--root', '/agent'],
      windowsHost(0, { task: 'eip-agent', status: 'absent' }, []),
    );
    expect(ok).toMatchObject({
      code: EXIT.ok,
      out: 'scheduled task eip-agent: absent (\\agent\\uninstall-task.ps1)\n',
    });
    const bad = await runCli(
      ['uninstall', '--windows-task', '--root', '/agent'],
      windowsHost(1, { task: 'eip-agent', status: 'error', error: 'Access is denied.' }, []),
    );
    expect(bad).toMatchObject({
      code: EXIT.error,
      err: 'eip-agent: host: removing scheduled task eip-agent failed (exit 1): Access is denied.\n',
    });
  });

  it.each([
    [['install'], 'eip-agent: config: install: say what to install: --systemd or --windows-task\n'],
    [
      ['install', '--windows-task', '--interval', '0'],
      'eip-agent: config: --interval 0 must be a whole number of minutes from 1 to 1440\n',
    ],
    [
      ['install', '--windows-task', '--node', "C:\\x'y\\node.exe"],
      'eip-agent: config: --node "C:\\\\x\'y\\\\node.exe" must be an absolute Windows path (C:\\...) of letters, digits, spaces and . _ ( ) ~ + -\n',
    ],
    [
      ['uninstall', '--windows-task', '--systemd'],
      'eip-agent: config: uninstall: --systemd and --windows-task exclude each other\n',
    ],
  ])('%j is refused', async (argv, message) => {
    const { code, err } = await runCli(argv, createTestHost());
    expect({ code, err }).toEqual({ code: EXIT.error, err: message });
  });
});
