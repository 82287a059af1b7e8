import { beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { ConfigError } from '../../src/errors.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { buildModel } from '../../src/model/index.js';
import type { InstanceModel } from '../../src/model/types.js';
import { assertAsciiScript, assertSafeData, windowsPath } from '../../src/targets/windows/guard.js';
import { renderWindows } from '../../src/targets/windows/render.js';
import { renderTaskInstall } from '../../src/targets/windows/task.js';
import { createTestHost, vol } from '../helpers/host.js';
import { manualTree, threeNicTree } from '../lab/fixtures.js';

const URL = 'http://169.254.0.23/latest/meta-data/';
const NIC = 'network/interfaces/macs/52:54:00:8A:7A:64';

/** Values that would break out of a single-quoted PowerShell string or a cmd.exe line, or smuggle a command. */
const HOSTILE = [
  "10.0.0.3'; Remove-Item C:\\ -Recurse #",
  '10.0.0.3$(calc)',
  '10.0.0.3`n',
  '10.0.0.3\u2019; calc',
  '10.0.0.3" & calc',
  '10.0.0.3%PATH%',
  '10.0.0.3\r\nexit',
];

function set(tree: MetaTree, path: string, value: string): MetaTree {
  const names = path.split('/');
  const leaf = names.pop()!;
  let node = tree;
  for (const name of names) node = node[name] as MetaTree;
  node[leaf] = value;
  return tree;
}

function rename(tree: MetaTree, dir: string, from: string, to: string): MetaTree {
  let node = tree;
  for (const name of dir.split('/')) node = node[name] as MetaTree;
  const entries = Object.entries(node).map(([k, v]): [string, MetaTree | string] => [k === from ? to : k, v]);
  for (const key of Object.keys(node)) delete node[key];
  Object.assign(node, Object.fromEntries(entries));
  return tree;
}

const metadataCases: [string, (value: string) => MetaTree][] = [
  ['a secondary IP (listing key)', (v) => rename(manualTree(), `${NIC}/local-ipv4s`, '10.0.0.3', v)],
  ['a gateway', (v) => set(manualTree(), `${NIC}/local-ipv4s/10.0.0.2/gateway`, v)],
  ['a subnet mask', (v) => set(manualTree(), `${NIC}/local-ipv4s/10.0.0.2/subnet-mask`, v)],
  ['an EIP', (v) => set(manualTree(), `${NIC}/local-ipv4s/10.0.0.3/public-ipv4`, v)],
  ['the instance id', (v) => set(manualTree(), 'instance-id', v)],
  ['the subnet id', (v) => set(manualTree(), `${NIC}/subnet-id`, v)],
  ['the MAC', (v) => set(manualTree(), 'mac', v.replace('10.0.0.3', '52:54:00:8A:7A:64'))],
];

describe('no metadata value reaches a Windows script: render fails, nothing is written', () => {
  beforeEach(() => vol.reset());

  const cases = metadataCases.flatMap(([what, make]) =>
    HOSTILE.map((value): [string, string, () => MetaTree] => [what, value, () => make(value)]),
  );
  it.each(cases)('%s = %j', async (_what, _value, tree) => {
    vol.fromJSON({ '/meta.json': JSON.stringify(tree()) });
    for (const flavor of ['powershell', 'netsh']) {
      let err = '';
      const code = await main(
        ['render', '--target', 'windows', '--windows-flavor', flavor, '--metadata-file', '/meta.json', '--out', '/out'],
        createTestHost(),
        { out: () => undefined, err: (t) => (err += t) },
      );
      expect(code).toBe(1);
      // The metadata reader refuses a hostile listing key before the model sees it; the model refuses the rest.
      expect(err).toMatch(/^eip-agent: (validation|metadata): \S/);
      expect(err.trimEnd().split('\n')).toHaveLength(1);
      expect(vol.existsSync('/out')).toBe(false);
    }
  });
});

/** A model that skipped validation, with one value replaced: the renderer's own guard must refuse it. */
function forged(edit: (model: InstanceModel) => void): InstanceModel {
  const model = buildModel(threeNicTree());
  edit(model);
  return model;
}

const forgedCases: [string, (v: string) => InstanceModel][] = [
  ['primary IP', (v) => forged((m) => (m.nics[0]!.addresses[0]!.ip = v))],
  ['secondary IP', (v) => forged((m) => (m.nics[0]!.addresses[1]!.ip = v))],
  ['gateway', (v) => forged((m) => (m.nics[1]!.gateway = v))],
  ['direct EIP', (v) => forged((m) => (m.nics[1]!.addresses[0]!.publicIp = v))],
  ['MAC', (v) => forged((m) => (m.nics[2]!.mac = v))],
  ['instance id', (v) => forged((m) => (m.instanceId = v))],
];

describe("the Windows renderer's guard checks every interpolated value again", () => {
  const cases = forgedCases.flatMap(([what, make]) =>
    HOSTILE.map((value): [string, string, () => InstanceModel] => [what, value, () => make(value)]),
  );
  it.each(cases)('%s = %j', (_what, _value, model) => {
    for (const flavor of ['powershell', 'netsh'] as const) {
      expect(() => renderWindows(model(), { flavor, metadataUrl: URL })).toThrow(
        /^render: windows: .*: refusing to put /,
      );
    }
  });

  it.each([-1, 33, 1.5, Number.NaN])('a prefix length of %s', (prefixLength) => {
    expect(() =>
      renderWindows(
        forged((m) => (m.nics[0]!.prefixLength = prefixLength)),
        { flavor: 'powershell', metadataUrl: URL },
      ),
    ).toThrow(/refusing/);
  });

  it.each(HOSTILE)('a DNS server %j', (value) => {
    expect(() =>
      renderWindows(buildModel(manualTree()), { flavor: 'netsh', metadataUrl: URL, dnsServers: ['192.0.2.53', value] }),
    ).toThrow(/DNS server: refusing/);
  });

  it.each([
    "http://169.254.0.23/latest/meta-data/'+(calc)+'",
    'http://169.254.0.23/a%20b',
    'http://169.254.0.23/?x=1&y=2',
    'http://h/$(calc)',
    'ftp://169.254.0.23/',
  ])('a metadata URL %j is a config error', (url) => {
    expect(() => renderWindows(buildModel(manualTree()), { flavor: 'powershell', metadataUrl: url })).toThrow(
      ConfigError,
    );
  });

  it('catches a template field added without a check of its own', () => {
    expect(() => assertSafeData('data', { nics: [{ mac: '52:54:00:8A:7A:64', note: "it's" }] })).toThrow(
      /data\.note: refusing/,
    );
    expect(() => assertSafeData('data', { count: 1.5 })).toThrow(/data\.count: refusing/);
    expect(() => assertSafeData('data', { nics: [{ mac: '52:54:00:8A:7A:64', ok: true, n: 3 }] })).not.toThrow();
  });

  it('refuses a script that is not pure ASCII', () => {
    expect(() => assertAsciiScript('/eip-agent.ps1', '\uFEFF# ok\r\n$a = \u20182\u2019\r\n')).toThrow(
      /\/eip-agent\.ps1:2: refusing/,
    );
    expect(() => assertAsciiScript('/eip-agent.ps1', '\uFEFF# ok\r\n')).not.toThrow();
  });
});

describe('scheduled task script inputs', () => {
  const good = {
    node: 'C:\\Program Files\\nodejs\\node.exe',
    agent: 'C:\\ProgramData\\eip-agent\\eip-agent.js',
    flavor: 'powershell' as const,
    intervalMinutes: 5,
  };

  it.each([
    ['node', "C:\\x'; calc; '\\node.exe"],
    ['node', 'C:\\$(calc)\\node.exe'],
    ['agent', 'C:\\a"b\\eip-agent.js'],
    ['agent', '\\\\server\\share\\eip-agent.js'],
    ['agent', '/usr/lib/eip-agent.js'],
    ['agent', 'C:\\%TEMP%\\eip-agent.js'],
  ])('--%s %j is a config error', (key, value) => {
    expect(() => renderTaskInstall({ ...good, [key]: value })).toThrow(ConfigError);
  });

  it('refuses a hostile metadata URL and an interval out of range', () => {
    expect(() => renderTaskInstall({ ...good, metadataUrl: "http://x/'; calc" })).toThrow(ConfigError);
    expect(() => renderTaskInstall({ ...good, intervalMinutes: 1441 })).toThrow(/refusing/);
  });
});

describe('the Windows path guard runs in linear time', () => {
  it.each([
    `C:\\Users\\deploy\\AppData\\Roaming\\npm\\node_modules\\@acme\\eip-agent\\bin\\eip-agent.js`,
    `C:\\${'a'.repeat(5000)}'`,
    `C:\\${'ab\\'.repeat(3000)}\u00e9`,
  ])('refuses a long path with one bad character at once: %s', (path) => {
    const started = performance.now();
    expect(() => windowsPath('--bin', path)).toThrow(/--bin/);
    // The old pattern took over 60 s on the first of these; a linear one takes well under a millisecond. The bound
    // is only there to turn a hang into a failure.
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('still accepts ordinary paths', () => {
    expect(windowsPath('--bin', 'C:\\Program Files\\nodejs\\node.exe')).toBe('C:\\Program Files\\nodejs\\node.exe');
    expect(windowsPath('--bin', 'C:\\ProgramData\\eip-agent\\bin\\eip-agent.js')).toBe(
      'C:\\ProgramData\\eip-agent\\bin\\eip-agent.js',
    );
  });
});
