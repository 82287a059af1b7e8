import { describe, expect, it } from 'vitest';
import type { MetaTree } from '../../src/metadata/tree.js';
import { buildModel } from '../../src/model/index.js';
import { renderWindows } from '../../src/targets/windows/render.js';
import { manualTree, threeNicTree } from '../lab/fixtures.js';
import { parsePowerShell, powershell7Only, syntaxProblems } from './powershell.js';

const METADATA_URL = 'http://169.254.0.23/latest/meta-data/';

const fixtures: [string, () => MetaTree][] = [
  ['manual', manualTree],
  ['three-nic', threeNicTree],
];

function render(tree: MetaTree, dnsServers?: string[]) {
  const model = buildModel(tree);
  const content = renderWindows(model, {
    flavor: 'netsh',
    metadataUrl: METADATA_URL,
    ...(dnsServers ? { dnsServers } : {}),
  }).files[0]!.content;
  return { model, content, lines: content.split('\r\n') };
}

function mask(prefix: number): string {
  const bits = (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 0xff).join('.');
}

/** The PowerShell each one-line query runs, with cmd's %variables% replaced by values of the same shape. */
function embeddedPowerShell(lines: string[]): string[] {
  const snippets: string[] = [];
  for (const line of lines) {
    const ask = /^call :ask \w+ "(.*)"$/.exec(line);
    const loop = /\(`%PS% "(.*)"`\)/.exec(line);
    const code = ask?.[1] ?? loop?.[1];
    if (code !== undefined) snippets.push(code);
  }
  return snippets;
}

function substitute(code: string): string {
  return code
    .replace(/'%~\d'/g, "'10.0.0.3'")
    .replace(/%~\d/g, '24')
    .replace(/%IDX%/g, '12')
    .replace(/%METADATA_URL%/g, METADATA_URL);
}

describe.each(fixtures)('netsh script for %s', (_name, tree) => {
  const { model, content, lines } = render(tree());

  it('is pure ASCII with CRLF line ends and no BOM (cmd.exe cannot skip one), and starts with the marker', () => {
    expect(/^[\t\r\n\x20-\x7e]*$/.test(content)).toBe(true);
    expect(content.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    expect(lines.slice(0, 2)).toEqual([
      '@rem Managed by eip-agent: generated from instance metadata, local edits are replaced.',
      '@echo off',
    ]);
  });

  it('jumps and calls only to labels that exist, and can undo every kind of change it records', () => {
    const labels = new Set(lines.filter((l) => /^:\w+$/.test(l)).map((l) => l.slice(1)));
    const targets = [...content.matchAll(/(?:goto|call) :(\w+)/g)].map((m) => m[1]!).filter((t) => t !== 'undo_');
    expect(targets.filter((t) => !labels.has(t))).toEqual([]);
    const kinds = [...content.matchAll(/call :undo (\w+)/g)].map((m) => m[1]!);
    expect(new Set(kinds)).toEqual(new Set(['dhcp', 'deladdr', 'addaddr', 'setroute', 'delroute', 'dns']));
    expect(kinds.filter((k) => !labels.has(`undo_${k}`))).toEqual([]);
  });

  it('runs PowerShell that parses with a real PowerShell grammar, with nothing cmd would reinterpret', async () => {
    const snippets = embeddedPowerShell(lines);
    expect(snippets.length).toBeGreaterThan(10);
    for (const code of snippets) {
      expect(code, code).not.toMatch(/["^!]/);
      const ps = substitute(code);
      expect(ps, ps).not.toMatch(/%/);
      const tree = await parsePowerShell(ps);
      expect(syntaxProblems(tree), ps).toEqual([]);
      expect(powershell7Only(tree), ps).toEqual([]);
    }
  });

  it('resolves every NIC by MAC, and refers to adapters by ifIndex in every netsh command', () => {
    expect(lines.filter((l) => l.startsWith('call :resolve '))).toEqual(
      model.nics.map((n) => `call :resolve IDX${n.index} ${n.mac.replace(/:/g, '')} ${n.mac}`),
    );
    const netsh = lines.filter((l) => /\bnetsh interface ipv4 (set|add|delete) /.test(l));
    expect(netsh.length).toBeGreaterThan(10);
    for (const line of netsh) expect(line, line).toMatch(/ (name|interface)=(%IDX%|%~1) /);
    expect(content).not.toMatch(/ethernet|以太网|name="/i);
  });

  it('switches DHCP to static with the primary address and mask, and adds every secondary with skipassource=true', () => {
    expect(lines.filter((l) => l.includes('set address name=%IDX% source=static'))).toEqual(
      model.nics.map(
        (n) =>
          `call :run netsh interface ipv4 set address name=%IDX% source=static address=${n.addresses[0]!.ip} mask=${n.netmask} gateway=${n.gateway} gwmetric=${n.isPrimaryNic ? 0 : 100 * n.index} || goto :change_failed`,
      ),
    );
    const expected = model.nics.flatMap((n) => [
      ...n.addresses
        .slice(1)
        .map(
          (a) =>
            `call :addsecondary %IDX% ${n.mac.replace(/:/g, '')} ${a.ip} ${n.prefixLength} ${n.netmask} || goto :change_failed`,
        ),
      ...n.addresses
        .filter((a) => a.publicMode === 'direct')
        .map(
          (a) =>
            `call :addsecondary %IDX% ${n.mac.replace(/:/g, '')} ${a.publicIp} 32 ${mask(32)} || goto :change_failed`,
        ),
    ]);
    expect(lines.filter((l) => l.startsWith('call :addsecondary '))).toEqual(expected);
    expect(lines).toContain(
      'call :run netsh interface ipv4 add address name=%~1 address=%~3 mask=%~5 skipassource=true && goto :addsecondary_added',
    );
  });

  it('adds a default route per NIC, the primary NIC with the lowest metric', () => {
    const routes = lines.filter((l) => l.startsWith('call :ensureroute '));
    expect(routes).toEqual(
      model.nics.map(
        (n) => `call :ensureroute %IDX% ${n.gateway} ${n.isPrimaryNic ? 0 : 100 * n.index} || goto :change_failed`,
      ),
    );
    expect(lines).toContain(
      'call :run netsh interface ipv4 add route prefix=0.0.0.0/0 interface=%~1 nexthop=%~2 metric=%~3 || exit /b 1',
    );
  });

  it('keeps the DNS servers the adapter had, read before switching, and sets them without validation', () => {
    expect(lines.filter((l) => l.startsWith('call :ensuredns '))).toEqual(
      model.nics.map(
        (n) =>
          `call :ensuredns %IDX% "%DNSBEFORE${n.index}%" "%DNSBEFORE${n.index}%" %DNSSTATIC${n.index}% || goto :change_failed`,
      ),
    );
    expect(content).toContain('set dnsservers name=%~1 source=static address=%~2 register=primary validate=no');
    expect(content).toContain('add dnsservers name=%~1 address=%~2 index=%DNSINDEX% validate=no');
  });

  it('runs one at a time: the work is `call :main` with handle 9 holding the lock file; a second run says busy (21)', () => {
    const main = lines.indexOf('call :main 9>"%STATE%\\lock-netsh"');
    expect(main).toBeGreaterThan(0);
    expect(lines.slice(main + 1, main + 5)).toEqual([
      'if defined LOCKED exit /b %CODE%',
      '>>"%LOG%" echo %date% %time% [%MODE%] exit 21 busy: another run holds %STATE%\\lock-netsh',
      'echo {"agent":"eip-agent","flavor":"netsh","mode":"%MODE%","exitCode":21,"status":"busy","changes":[],"checks":[],"errors":["another eip-agent run is in progress"],"log":"%LOG:\\=\\\\%"}',
      'exit /b 21',
    ]);
    expect(lines.slice(lines.indexOf(':main'), lines.indexOf(':main') + 2)).toEqual([':main', 'set "LOCKED=1"']);
    // Before the lock only the mode is read, and reduced to apply, verify or invalid: the busy line prints nothing else.
    expect(lines.slice(lines.indexOf('set "MODE=%~1"'), main).filter((l) => /%~\d/.test(l))).toEqual([
      'set "MODE=%~1"',
    ]);
    expect(content.match(/undo-netsh\.txt" del|del \/q "%UNDO%"/g)?.length).toBe(2);
    expect(lines.indexOf('if exist "%UNDO%" del /q "%UNDO%"')).toBeGreaterThan(main);
  });

  it("writes the result one fragment per line and prints it line by line: no line near cmd's 8191-character limit", () => {
    // No variable accumulates changes, checks or errors any more.
    expect(content).not.toMatch(/set "(CHANGES|CHECKS|ERRORS)=/);
    for (const kind of ['changes', 'errors']) expect(lines).toContain(`>>"%RESULT%-${kind}.txt" echo(%SEP%"%~1"`);
    expect(lines).toContain('>>"%RESULT%-checks.txt" echo(%SEP%{"kind":"%~1","subject":"%~2","ok":%~3,"detail":"%~4"}');
    const finish = lines.slice(lines.indexOf(':finish'));
    expect(finish.slice(3, 11)).toEqual([
      'echo {"agent":"eip-agent","flavor":"netsh","mode":"%MODE%","exitCode":%CODE%,"status":"%STATUS%","log":"%LOG:\\=\\\\%","changes":[',
      'call :emit changes',
      'echo ],"checks":[',
      'call :emit checks',
      'echo ],"errors":[',
      'call :emit errors',
      'echo ]}',
      'exit /b %CODE%',
    ]);
    expect(lines).toContain('for /f "usebackq delims=" %%l in ("%RESULT%-%~1.txt") do echo(%%l');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(1000);
  });

  it('counts an address as present whatever its prefix length (a different one is left as it is, as the PowerShell flavor does)', () => {
    const has = lines.slice(lines.indexOf(':has'), lines.indexOf(':has') + 2);
    expect(has[1]).toBe(
      'call :ask HAS "@(Get-NetIPAddress -InterfaceIndex %~1 -AddressFamily IPv4 -IPAddress \'%~2\' -ErrorAction SilentlyContinue).Count"',
    );
    expect(lines.filter((l) => /call :has \S+ \S+ \S+ /.test(l) && !/call :has \S+ \S+ (\|\||&&)/.test(l))).toEqual([]);
    expect(content).not.toMatch(/PrefixLength -eq/);
  });

  it('writes DNS servers as static ones when they are not, and counts DHCP leftovers as a difference', () => {
    expect(lines).toContain(
      'if /i "%DHCP%"=="Disabled" if not "%DNSBEFORE%"=="" if "%DNSSTATIC%"=="0" call :diff "ifIndex %IDX%: DNS servers %DNSBEFORE% are not static"',
    );
    const ensure = lines.slice(lines.indexOf(':ensuredns'));
    expect(ensure.slice(1, 5)).toEqual([
      'if "%~2"=="" exit /b 0',
      'call :ask DNSNOW "@((Get-DnsClientServerAddress -InterfaceIndex %~1 -AddressFamily IPv4).ServerAddresses) -join \' \'"',
      'call :dnsstatic %~1',
      'if "%DNSNOW%"=="%~2" if "%DNSSTATIC%"=="1" exit /b 0',
    ]);
  });

  it('passes only plain text to the JSON result (no character cmd would treat as an operator)', () => {
    const messages = lines.flatMap((l) =>
      [...l.matchAll(/call :(?:change|error|diff|check \w+) "([^"]*)"(?: \w+ "([^"]*)")?/g)].flatMap((m) => [
        m[1]!,
        m[2] ?? '',
      ]),
    );
    expect(messages.length).toBeGreaterThan(20);
    for (const message of messages)
      expect(message.replace(/%(?:~\d|\w+)%?/g, ''), message).toMatch(/^[A-Za-z0-9 .,:/_=-]*$/);
  });
});

describe('netsh script with explicit DNS servers', () => {
  it('sets the configured servers and compares them when checking', () => {
    const { lines } = render(manualTree(), ['192.0.2.53', '198.51.100.53']);
    expect(lines.filter((l) => l.startsWith('call :ensuredns '))[0]).toBe(
      'call :ensuredns %IDX% "192.0.2.53 198.51.100.53" "%DNSBEFORE0%" %DNSSTATIC0% || goto :change_failed',
    );
    expect(lines).toContain(
      'if not "%DNSNOW%"=="192.0.2.53 198.51.100.53" call :diff "ifIndex %IDX%: DNS servers differ from 192.0.2.53 198.51.100.53"',
    );
  });
});
