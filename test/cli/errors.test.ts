// Every way to give the CLI a wrong file, option or value ends in one line naming it, never `internal error`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { STATE_PATH } from '../../src/plan/record.js';
import { EXIT, main } from '../../src/cli/main.js';
import type { Host } from '../../src/host/host.js';
import { createNodeHost } from '../../src/host/node.js';
import { VERSION } from '../../src/version.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { createTestHost, vol } from '../helpers/host.js';
import { NOW, freshKernel, guestFiles } from '../helpers/manual-guest.js';
import packageJson from '../../package.json' with { type: 'json' };

const META = ['--metadata-file', '/meta.json'];

async function cli(
  argv: string[],
  host: Host = createTestHost({ now: () => NOW }),
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, host, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

function oneLine(run: { code: number; out: string; err: string }, line: string | RegExp): void {
  expect(run.code).toBe(EXIT.error);
  expect(run.out).toBe('');
  if (typeof line === 'string') expect(run.err).toBe(`eip-agent: ${line}\n`);
  else expect(run.err).toMatch(line);
  expect(run.err).toMatch(/^[^\n]*\n$/);
  expect(run.err).not.toContain('internal error');
}

beforeEach(() => {
  vol.reset();
  vol.fromJSON(guestFiles());
});

describe('one line naming the file, key or option', () => {
  it('a config file with a __proto__ key', async () => {
    vol.writeFileSync('/cfg.json', '{"__proto__":{}}');
    oneLine(
      await cli(['plan', ...META, '--config', '/cfg.json']),
      /^eip-agent: config: \/cfg\.json: unknown setting "__proto__" \(known: /,
    );
  });

  it.each([
    ['config', ['--config', '/d']],
    ['metadata file', ['--metadata-file', '/d']],
  ])('a directory given as the %s', async (_what, args) => {
    vol.mkdirSync('/d');
    const run = await cli(['plan', ...(args[0] === '--metadata-file' ? [] : META), ...args]);
    oneLine(run, /\/d is a directory, not a regular file: refusing to read it/);
  });

  it('a directory where the state file belongs', async () => {
    vol.mkdirSync(STATE_PATH, { recursive: true });
    oneLine(
      await cli(['rollback']),
      `host: ${STATE_PATH} is a directory, not a regular file: refusing to read it; remove it or give the path of a file`,
    );
  });

  it('render --out naming a file', async () => {
    vol.writeFileSync('/out', 'x');
    oneLine(await cli(['render', ...META, '--out', '/out']), /^eip-agent: config: --out \/out: not a directory/);
  });

  it('a state file with wrong field types: rollback refuses and changes nothing', async () => {
    const kernel = new FakeKernel(freshKernel());
    vol.mkdirSync('/var/lib/eip-agent', { recursive: true });
    vol.writeFileSync(
      STATE_PATH,
      JSON.stringify({
        version: 1,
        owned: { addresses: [{ ifname: 'eth1', mac: 1, cidr: '10.0.0.7/24' }], rules: [], routes: [], files: [] },
        lastSnapshot: {},
      }),
    );
    const before = vol.toJSON();
    oneLine(
      await cli(['rollback', '--original'], createTestHost({ run: kernel.run, isPrivileged: () => true })),
      `apply: state file ${STATE_PATH} has a wrong or missing "owned": nothing was changed; move it aside to start over (the agent will then own nothing it added before)`,
    );
    // The lock's directory aside: it is where the lock comes and goes.
    const { '/run/eip-agent': _lock, ...after } = vol.toJSON();
    expect(after).toEqual(before);
    expect(kernel.calls).toEqual([]);
  });

  it.each([
    [
      ['--metadata-url', 'https://169.254.0.23/latest/meta-data/'],
      '--metadata-url: "https://169.254.0.23/latest/meta-data/": only http:// is supported (the metadata service is plain HTTP)',
    ],
    [
      ['--metadata-url', 'http://169.254.0.23:99999/'],
      '--metadata-url: "http://169.254.0.23:99999/" is not a URL (a port must be from 1 to 65535)',
    ],
  ])('a metadata URL that cannot work (%j), at validation, before any request', async (args, line) => {
    oneLine(await cli(['plan', ...args]), `config: ${line}`);
  });

  it('--systemd-version that is not a number', async () => {
    vol.mkdirSync('/image');
    oneLine(
      await cli([
        'install',
        '--systemd',
        '--root',
        '/image',
        '--bin',
        '/usr/lib/eip-agent/bin/eip-agent.js',
        '--node',
        '/usr/bin/node',
        '--systemd-version',
        'abc',
      ]),
      'config: --systemd-version "abc": expected a number such as 219 or 252',
    );
  });

  it('install --systemd with a --bin the service cannot see names --bin', async () => {
    vol.mkdirSync('/image');
    oneLine(
      await cli([
        'install',
        '--systemd',
        '--root',
        '/image',
        '--node',
        '/usr/bin/node',
        '--bin',
        '/root/eip-agent/bin/eip-agent.js',
      ]),
      /^eip-agent: config: --bin \/root\/eip-agent\/bin\/eip-agent\.js: the service cannot see \/root/,
    );
  });

  it('apply --root naming a directory that does not exist changes nothing', async () => {
    const kernel = new FakeKernel(freshKernel());
    const before = vol.toJSON();
    oneLine(
      await cli(
        ['apply', ...META, '--root', '/srv/typo'],
        createTestHost({ run: kernel.run, isPrivileged: () => true }),
      ),
      'config: --root /srv/typo does not exist: check the path, or create the directory first',
    );
    expect(vol.toJSON()).toEqual(before);
    expect(kernel.calls).toEqual([]);
  });

  it('plan on the live system exits 1 when a metadata NIC is missing, like apply', async () => {
    const state = freshKernel();
    state.links = state.links.filter((l) => l.ifname !== 'eth1');
    const kernel = new FakeKernel(state);
    oneLine(
      await cli(['plan', ...META], createTestHost({ run: kernel.run })),
      /^eip-agent: apply: NIC 20:90:6F:F7:93:2E from the metadata is not present on this system/,
    );
  });
});

describe('metadata serve exits with one line instead of serving half', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eip-serve-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fixture = join(dir, 'tree.json');

  it.each([
    [['--port', '99999'], 'config: --port "99999": expected an integer from 0 to 65535'],
    [['--port', 'abc'], 'config: --port "abc": expected an integer from 0 to 65535'],
    [['--host', '192.0.2.1', '--port', '0'], 'config: --host 192.0.2.1 is not an address of this machine'],
    [
      ['--port', '0', '--control-socket', join(dir, 'missing', 'control.sock')],
      `config: --control-socket ${join(dir, 'missing', 'control.sock')}: directory ${join(dir, 'missing')} does not exist`,
    ],
  ])('%j', async (args, line) => {
    const host = createNodeHost();
    await host.fs.writeAtomic(fixture, JSON.stringify({ mac: '52:54:00:8A:7A:64' }), 0o644);
    oneLine(await cli(['metadata', 'serve', '--fixture', fixture, ...args], host), line);
  });
});

describe('what a command prints', () => {
  it('--version prints the version of package.json', async () => {
    expect(VERSION).toBe(packageJson.version);
    expect(await cli(['--version'])).toEqual({ code: EXIT.ok, out: `eip-agent ${VERSION}\n`, err: '' });
  });

  it('install --systemd --json prints JSON', async () => {
    vol.mkdirSync('/image');
    const run = await cli([
      'install',
      '--systemd',
      '--json',
      '--root',
      '/image',
      '--node',
      '/usr/bin/node',
      '--bin',
      '/usr/lib/eip-agent/bin/eip-agent.js',
      '--systemd-version',
      '219',
    ]);
    expect(run.code, run.err).toBe(EXIT.ok);
    expect(JSON.parse(run.out)).toMatchObject({
      unit: '/image/etc/systemd/system/eip-agent.service',
      enabled: false,
      systemdVersion: 219,
    });
  });

  it('render --target windows prints no preview warnings', async () => {
    vol.mkdirSync('/out');
    const run = await cli(['render', '--target', 'windows', ...META, '--out', '/out']);
    expect(run).toMatchObject({ code: EXIT.ok, err: '' });
  });
});
