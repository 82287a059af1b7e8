import { readFileSync } from 'node:fs';
import type { Node } from 'web-tree-sitter';
import { describe, expect, it } from 'vitest';
import type { MetaTree } from '../../src/metadata/tree.js';
import { buildModel } from '../../src/model/index.js';
import type { InstanceModel } from '../../src/model/types.js';
import type { WindowsFlavor } from '../../src/targets/windows/constants.js';
import { UTF8_BOM, WINDOWS_EXIT } from '../../src/targets/windows/constants.js';
import { renderWindows } from '../../src/targets/windows/render.js';
import { renderTaskInstall, renderTaskUninstall } from '../../src/targets/windows/task.js';
import { aclScript } from '../../src/host/windows-acl.js';
import { manualTree, threeNicTree } from '../lab/fixtures.js';
import type { PsValue } from './powershell.js';
import {
  ancestor,
  assignedValue,
  descendants,
  invocations,
  parsePowerShell,
  powershell7Only,
  syntaxProblems,
} from './powershell.js';

const METADATA_URL = 'http://169.254.0.23/latest/meta-data/';
/** The PowerShell script's fixed logic, the plain file the script ends with. */
const LOGIC_FILE = new URL('../../templates/windows/eip-agent-logic.ps1', import.meta.url);
/** RFC 5737 documentation addresses stand in for explicit DNS servers. */
const DNS = ['192.0.2.53', '198.51.100.53'];

const fixtures: [string, () => MetaTree][] = [
  ['manual', manualTree],
  ['three-nic', threeNicTree],
];
const flavors: WindowsFlavor[] = ['powershell', 'netsh'];

function render(tree: MetaTree, flavor: WindowsFlavor, dnsServers?: string[]) {
  const model = buildModel(tree);
  const state = renderWindows(model, { flavor, metadataUrl: METADATA_URL, ...(dnsServers ? { dnsServers } : {}) });
  return { model, state, content: state.files[0]!.content };
}

/** What the model asks for, per NIC, in the data block's terms: secondaries then direct EIPs as /32. */
function expectedNics(model: InstanceModel): PsValue[] {
  return model.nics.map((nic) => ({
    Mac: nic.mac,
    Role: nic.isPrimaryNic ? 'primary' : 'secondary',
    PrefixLength: nic.prefixLength,
    Gateway: nic.gateway,
    Primary: nic.addresses[0]!.ip,
    Secondary: [
      ...nic.addresses.slice(1).map((a) => ({ IP: a.ip, PrefixLength: nic.prefixLength })),
      ...nic.addresses.filter((a) => a.publicMode === 'direct').map((a) => ({ IP: a.publicIp!, PrefixLength: 32 })),
    ],
    RouteMetric: nic.isPrimaryNic ? 0 : 100 * nic.index,
    Dns: [],
  }));
}

const ADAPTER_CMDLETS = /^(Get|New|Set|Remove)-(NetIPAddress|NetRoute|NetIPInterface|DnsClientServerAddress)$/;

describe('Windows renderer golden files', () => {
  for (const [name, tree] of fixtures) {
    it.each(flavors)(`${name} / %s`, async (flavor) => {
      const { state, content } = render(tree(), flavor);
      expect(state.files.map((f) => [f.path, f.mode])).toEqual([
        [flavor === 'powershell' ? '/eip-agent.ps1' : '/eip-agent.netsh.ps1', 0o644],
      ]);
      await expect(content).toMatchFileSnapshot(`__golden__/${name}${state.files[0]!.path}`);
    });
  }

  it('task scripts', async () => {
    const install = renderTaskInstall({
      node: 'C:\\Program Files\\nodejs\\node.exe',
      agent: 'C:\\ProgramData\\eip-agent\\eip-agent.js',
      flavor: 'powershell',
      intervalMinutes: 5,
    });
    await expect(install.content).toMatchFileSnapshot('__golden__/task/install-task.ps1');
    await expect(renderTaskUninstall().content).toMatchFileSnapshot('__golden__/task/uninstall-task.ps1');
  });
});

describe('every generated PowerShell script parses with a real PowerShell grammar', () => {
  const scripts: [string, () => string][] = [
    ...fixtures.flatMap(([name, tree]): [string, () => string][] => [
      [`${name} eip-agent.ps1`, () => render(tree(), 'powershell').content],
      [`${name} eip-agent.ps1 with DNS servers`, () => render(tree(), 'powershell', DNS).content],
      [`${name} eip-agent.netsh.ps1 with DNS servers`, () => render(tree(), 'netsh', DNS).content],
    ]),
    [
      'install-task.ps1',
      () =>
        renderTaskInstall({
          node: 'C:\\Program Files (x86)\\nodejs\\node.exe',
          agent: 'D:\\eip agent\\eip-agent.js',
          flavor: 'netsh',
          intervalMinutes: 1,
          metadataUrl: METADATA_URL,
        }).content,
    ],
    ['uninstall-task.ps1', () => renderTaskUninstall().content],
  ];

  it.each(scripts)('%s: no ERROR or MISSING node', async (_name, script) => {
    const content = script();
    expect(content.startsWith(UTF8_BOM)).toBe(true);
    expect(syntaxProblems(await parsePowerShell(content.slice(1)))).toEqual([]);
  });

  it.each(scripts)(
    '%s: nothing Windows PowerShell 5.1 cannot run (the engine under test is PowerShell 7)',
    async (_name, script) => {
      expect(powershell7Only(await parsePowerShell(script().slice(1)))).toEqual([]);
    },
  );

  it.each(flavors)(
    'the fixed logic is a plain PowerShell file that parses on its own, and the %s script is its data block, then it unchanged',
    async (flavor) => {
      const logic = readFileSync(LOGIC_FILE, 'utf8');
      expect(logic).not.toContain('{{');
      expect(syntaxProblems(await parsePowerShell(logic))).toEqual([]);
      expect(powershell7Only(await parsePowerShell(logic))).toEqual([]);
      const script = render(manualTree(), flavor).content;
      const written = logic.replace(/\r?\n/g, '\r\n');
      expect(script.endsWith(written)).toBe(true);
      // Every metadata value is in the data block before it: the MACs and addresses appear only there.
      const data = script.slice(0, script.length - written.length);
      for (const value of ['52:54:00:8A:7A:64', '10.0.0.3', METADATA_URL]) {
        expect(data).toContain(value);
        expect(logic).not.toContain(value);
      }
    },
  );

  it('the config ACL check (src/host/windows-acl.ts) parses and needs nothing past PowerShell 5.1', async () => {
    const tree = await parsePowerShell(aclScript(['C:\\ProgramData\\eip-agent\\config.json', "D:\\配置\\it's"]));
    expect(syntaxProblems(tree)).toEqual([]);
    expect(powershell7Only(tree)).toEqual([]);
  });

  it('the 5.1 check finds a ternary, ??, ?., &&, || and PowerShell 7 parameters', async () => {
    const content = render(manualTree(), 'powershell').content.slice(1);
    const added = [
      '$a = $x ? 1 : 2',
      "$b = $y ?? 'z'",
      '$c = ${y}?.Name',
      'Get-Date && Get-Date',
      'Get-Date || Get-Date',
      "$d = '{}' | ConvertFrom-Json -AsHashtable",
      '1..3 | ForEach-Object -Parallel { $_ }',
    ];
    const problems = powershell7Only(
      await parsePowerShell(
        content.replace('Set-StrictMode -Version 2.0\r\n', `Set-StrictMode -Version 2.0\r\n${added.join('\r\n')}\r\n`),
      ),
    );
    // Set-StrictMode is line 17: the added lines are 18 to 24.
    for (const line of [18, 19, 20, 21, 22, 23, 24])
      expect(
        problems.some((p) => p.startsWith(`${line}:`)),
        `line ${line}: ${problems.join('; ')}`,
      ).toBe(true);
  });

  it('the check finds a broken script (a lost closing brace, an unterminated string)', async () => {
    const content = render(manualTree(), 'powershell').content.slice(1);
    expect(
      syntaxProblems(
        await parsePowerShell(content.replace('Set-StrictMode -Version 2.0\r\n', 'function Broken {\r\n')),
      ),
    ).not.toEqual([]);
    expect(syntaxProblems(await parsePowerShell(content.replace("'10.0.0.3'", "'10.0.0.3")))).not.toEqual([]);
  });
});

describe('PowerShell script semantics (on the parse tree)', () => {
  for (const [name, tree] of fixtures) {
    describe.each(flavors)(`${name}, %s flavor`, (flavor) => {
      const { model, content } = render(tree(), flavor);
      const parsed = parsePowerShell(content.slice(1));

      it('starts with the BOM and the marker, and is pure ASCII', () => {
        expect(content.startsWith(`${UTF8_BOM}# Managed by eip-agent`)).toBe(true);
        expect(/^[\t\r\n\x20-\x7e]*$/.test(content.slice(1))).toBe(true);
        expect(content.slice(1).replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
      });

      it('holds exactly the model in its data block', async () => {
        const root = (await parsed).rootNode;
        expect(assignedValue(root, '$Nics')).toEqual(expectedNics(model));
        expect(assignedValue(root, '$Agent')).toEqual({
          InstanceId: model.instanceId,
          MetadataUrl: METADATA_URL,
          Flavor: flavor,
        });
        expect(assignedValue(root, '$Exit')).toEqual({
          InSync: WINDOWS_EXIT.inSync,
          Error: WINDOWS_EXIT.error,
          Changed: WINDOWS_EXIT.changed,
          NotFound: WINDOWS_EXIT.notFound,
          Busy: WINDOWS_EXIT.busy,
          Refused: WINDOWS_EXIT.refused,
          RolledBack: WINDOWS_EXIT.rolledBack,
          RollbackFailed: WINDOWS_EXIT.rollbackFailed,
          NotAsDesired: WINDOWS_EXIT.notAsDesired,
        });
        expect(assignedValue(root, '$ErrorActionPreference')).toBe('Stop');
      });

      it('adds every secondary IP with Add-Address, its own -PrefixLength and -SkipAsSource $true', async () => {
        const root = (await parsed).rootNode;
        const adds = invocations(root).filter(
          (i) => i.name === 'Add-Address' && i.parameters.get('-skipassource') === '$true',
        );
        // The loop over each NIC's secondaries: the address and prefix come from the loop variable.
        const inLoop = adds.filter((i) => {
          const loop = ancestor(i.node, 'foreach_statement');
          return loop !== null && /^\$\w+\.Secondary$/i.test(loopIterable(loop));
        });
        expect(inLoop).toHaveLength(1);
        const add = inLoop[0]!;
        const loop = ancestor(add.node, 'foreach_statement')!;
        const item = loopVariable(loop);
        const nicVar = loopIterable(loop).split('.')[0]!;
        expect(add.parameters.get('-ip')?.toLowerCase()).toBe(`${item}.ip`.toLowerCase());
        expect(add.parameters.get('-prefixlength')?.toLowerCase()).toBe(`${item}.prefixlength`.toLowerCase());
        expect(add.parameters.get('-ifindex')).toBe('$IfIndex');
        // That loop runs once per NIC, with that NIC's hashtable.
        const fn = ancestor(add.node, 'function_statement')!;
        expect(fn.text).toMatch(new RegExp(`param\\(\\[hashtable\\]\\${nicVar}`, 'i'));
        // And the data it walks gives every secondary of the model with the right prefix (checked above, per NIC).
        const nics = assignedValue(root, '$Nics') as { Secondary: { IP: string; PrefixLength: number }[] }[];
        const secondaries = nics.flatMap((n) => n.Secondary.map((s) => `${s.IP}/${s.PrefixLength}`));
        const fromModel = model.nics.flatMap((nic) => [
          ...nic.addresses.slice(1).map((a) => `${a.ip}/${nic.prefixLength}`),
          ...nic.addresses.filter((a) => a.publicMode === 'direct').map((a) => `${a.publicIp}/32`),
        ]);
        expect(secondaries).toEqual(fromModel);
        expect(secondaries.length).toBeGreaterThan(0);
      });

      it('gives every Add-Address an ifIndex, a prefix length and an explicit SkipAsSource; the primary is a source', async () => {
        const all = invocations((await parsed).rootNode);
        const adds = all.filter((i) => i.name === 'Add-Address');
        expect(adds.length).toBeGreaterThan(2);
        for (const add of adds) {
          expect(
            add.parameters.has('-ifindex') &&
              add.parameters.has('-prefixlength') &&
              add.parameters.has('-skipassource'),
          ).toBe(true);
          if (add.parameters.get('-ip') === '$Nic.Primary') expect(add.parameters.get('-skipassource')).toBe('$false');
        }
        // Add-Address hands all three on to the cmdlet (netsh gets them as name=, mask= and skipassource=).
        expect(all.filter((i) => i.name === 'New-NetIPAddress').map((i) => Object.fromEntries(i.parameters))).toEqual([
          {
            '-interfaceindex': '$IfIndex',
            '-addressfamily': 'IPv4',
            '-ipaddress': '$IP',
            '-prefixlength': '$PrefixLength',
            '-skipassource': '$SkipAsSource',
          },
        ]);
      });

      it('selects adapters by MAC only and works by ifIndex from then on', async () => {
        const root = (await parsed).rootNode;
        const all = invocations(root);
        const byMac = all.filter((i) => i.name === 'Get-NetAdapter' && i.parameters.size === 0);
        expect(byMac).toHaveLength(1);
        // Get-NetAdapter | Where-Object { (ConvertTo-MacKey ([string]$_.MacAddress)) -eq $macKey }
        const pipeline = ancestor(byMac[0]!.node, 'pipeline')!;
        expect(pipeline.text).toMatch(
          /\|\s*Where-Object\s*\{\s*\(ConvertTo-MacKey \(\[string\]\$_\.MacAddress\)\)\s*-eq\s*\$macKey\s*\}/,
        );
        for (const other of all.filter((i) => i.name === 'Get-NetAdapter' && i !== byMac[0]))
          expect([...other.parameters.keys()]).toEqual(['-interfaceindex']);
        expect(
          all
            .filter((i) => ADAPTER_CMDLETS.test(i.name) && !i.parameters.has('-interfaceindex'))
            .map((i) => i.node.text),
        ).toEqual([]);
        const byName = all.filter(
          (i) =>
            /Net|Dns/.test(i.name) &&
            ['-name', '-interfacealias', '-interfacedescription'].some((p) => i.parameters.has(p)),
        );
        expect(byName.map((i) => i.name)).toEqual([]);
        // The MAC key function reduces both spellings to hex digits.
        expect(content).toContain("return ($Mac -replace '[^0-9A-Fa-f]', '').ToUpperInvariant()");
      });

      it('has no adapter name literal anywhere', async () => {
        const strings = descendants((await parsed).rootNode).filter(
          (n) => n.type === 'string_literal' || n.type === 'expandable_string_literal',
        );
        expect(strings.length).toBeGreaterThan(50);
        expect(
          strings.filter((s) => /ethernet|以太网|本地连接|local area connection/i.test(s.text)).map((s) => s.text),
        ).toEqual([]);
      });
    });
  }

  it('uses explicit DNS servers when configured, and only then', async () => {
    const root = (await parsePowerShell(render(manualTree(), 'powershell', DNS).content.slice(1))).rootNode;
    expect((assignedValue(root, '$Nics') as { Dns: string[] }[]).map((n) => n.Dns)).toEqual([DNS, DNS]);
    const sets = invocations(root).filter((i) => i.name === 'Set-DnsServers');
    expect(sets.map((s) => s.parameters.get('-servers'))).toEqual(['$wantDns', '$step.Dns']);
  });
});

function loopVariable(loop: Node): string {
  return loop.namedChildren.find((c) => c?.type === 'variable')?.text ?? '';
}

function loopIterable(loop: Node): string {
  return loop.namedChildren.find((c) => c?.type === 'pipeline')?.text ?? '';
}

describe('scheduled task script semantics', () => {
  it('registers SYSTEM, highest privileges, at startup plus a finite repetition, IgnoreNew, a time limit, StartWhenAvailable', async () => {
    const file = renderTaskInstall({
      node: 'C:\\Program Files\\nodejs\\node.exe',
      agent: 'C:\\ProgramData\\eip-agent\\eip-agent.js',
      flavor: 'netsh',
      intervalMinutes: 7,
    });
    const root = (await parsePowerShell(file.content.slice(1))).rootNode;
    const all = invocations(root);
    const one = (name: string) => {
      const found = all.filter((i) => i.name === name);
      expect(found, name).toHaveLength(1);
      return found[0]!.parameters;
    };
    expect(one('New-ScheduledTaskPrincipal')).toEqual(
      new Map([
        ['-userid', "'S-1-5-18'"],
        ['-logontype', 'ServiceAccount'],
        ['-runlevel', 'Highest'],
      ]),
    );
    const settings = one('New-ScheduledTaskSettingsSet');
    expect(settings.get('-multipleinstances')).toBe('IgnoreNew');
    expect(settings.get('-executiontimelimit')).toBe('(New-TimeSpan -Minutes $Task.TimeLimitMinutes)');
    expect(settings.has('-startwhenavailable')).toBe(true);
    const triggers = all.filter((i) => i.name === 'New-ScheduledTaskTrigger');
    expect(triggers.map((t) => [...t.parameters.keys()].sort())).toEqual([
      ['-atstartup'],
      ['-at', '-once', '-repetitionduration', '-repetitioninterval'],
      ['-at', '-daily'],
    ]);
    expect(triggers[1]!.parameters.get('-repetitionduration')).toBe('(New-TimeSpan -Days 1)');
    const register = one('Register-ScheduledTask');
    expect(register.get('-trigger')).toBe('@($atStartup, $everyFewMinutes)');
    expect(register.has('-force')).toBe(true);
    const icacls = descendants(root).filter((n) => n.type === 'command' && n.text.startsWith('& icacls.exe'));
    expect(icacls.map((n) => n.text.trim())).toEqual([
      "& icacls.exe $stateDir /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F' '*S-1-5-32-545:(OI)(CI)RX'",
    ]);
    const task = assignedValue(root, '$Task') as Record<string, PsValue>;
    expect(task).toMatchObject({
      Name: 'eip-agent',
      IntervalMinutes: 7,
      Arguments: 'apply --target windows --windows-flavor netsh --skip-failed',
    });
  });

  it('removes the task idempotently', async () => {
    const all = invocations((await parsePowerShell(renderTaskUninstall().content.slice(1))).rootNode);
    expect(all.filter((i) => i.name === 'Unregister-ScheduledTask').map((i) => i.parameters.get('-confirm'))).toEqual([
      '$false',
    ]);
    expect(all.filter((i) => i.name === 'Get-ScheduledTask').map((i) => i.parameters.get('-erroraction'))).toEqual([
      'SilentlyContinue',
    ]);
  });
});
