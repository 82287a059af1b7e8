// Who may change a file on Windows: its owner and the accounts its ACL lets write, asked of PowerShell's Get-Acl by SID
// (account names are localized). The agent runs as SYSTEM and applies what its config file says, so that file and its
// folder must be writable by SYSTEM and Administrators only.
import type { Host } from './host.js';

/** Accounts that may write the agent's config: they could run anything as SYSTEM anyway. */
const TRUSTED: Readonly<Record<string, string>> = {
  'S-1-5-18': 'SYSTEM',
  'S-1-5-32-544': 'Administrators',
  'S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464': 'TrustedInstaller',
};

/** Names for the untrusted SIDs seen most, for the message. */
const KNOWN: Readonly<Record<string, string>> = {
  'S-1-1-0': 'Everyone',
  'S-1-5-11': 'Authenticated Users',
  'S-1-5-32-545': 'Users',
  'S-1-5-4': 'INTERACTIVE',
  'S-1-3-0': 'CREATOR OWNER',
};

/** What Get-Acl reports for one path: the owner's SID and the SIDs an Allow rule gives a write right on the object itself. */
export interface AclReport {
  index: number;
  owner: string;
  writers: string[];
  /** Why Get-Acl could not tell (then owner and writers are empty). */
  error?: string;
}

/**
 * The PowerShell (5.1 and later) that reports on `paths`, one JSON line each. Paths go in as UTF-16 base64, so no path
 * text is ever PowerShell syntax; the output names paths by index, so it is pure ASCII whatever the console's code page.
 */
export function aclScript(paths: readonly string[]): string {
  const encoded = paths.map((p) => `'${Buffer.from(p, 'utf16le').toString('base64')}'`).join(', ');
  return [
    "$ErrorActionPreference = 'Stop'",
    "$write = [System.Security.AccessControl.FileSystemRights]'WriteData, AppendData, " +
      'WriteExtendedAttributes, WriteAttributes, DeleteSubdirectoriesAndFiles, Delete, ChangePermissions, ' +
      "TakeOwnership'",
    '$sid = [System.Security.Principal.SecurityIdentifier]',
    `$paths = @(${encoded})`,
    'for ($i = 0; $i -lt $paths.Count; $i++) {',
    '    try {',
    '        $acl = Get-Acl -LiteralPath ([System.Text.Encoding]::Unicode.GetString([System.Convert]::FromBase64String($paths[$i])))',
    '        $writers = @($acl.GetAccessRules($true, $true, $sid) | Where-Object { ' +
      "([string]$_.AccessControlType -eq 'Allow') -and (($_.FileSystemRights -band $write) -ne 0) -and " +
      "-not ([string]$_.PropagationFlags).Contains('InheritOnly') } | ForEach-Object { " +
      '[string]$_.IdentityReference.Value })',
    '        $report = [ordered]@{ index = $i; owner = [string]$acl.GetOwner($sid).Value; writers = $writers }',
    '    } catch {',
    '        $report = [ordered]@{ index = $i; error = $_.Exception.Message }',
    '    }',
    '    # Non-ASCII (a localized message) as \\uXXXX: the console writes in the OEM code page, the agent reads UTF-8.',
    '    [Console]::Out.WriteLine([regex]::Replace((ConvertTo-Json -InputObject $report -Compress), ' +
      "'[^\\x00-\\x7F]', { param($m) '\\u{0:x4}' -f [int][char]$m.Value }))",
    '}',
  ].join('\n');
}

/** The reports in a run's stdout; lines that are not a report are ignored. */
export function parseAclReports(stdout: string): AclReport[] {
  const reports: AclReport[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    if (!line.startsWith('{"index"')) continue;
    try {
      const data = JSON.parse(line) as { index?: unknown; owner?: unknown; writers?: unknown; error?: unknown };
      if (typeof data.index !== 'number') continue;
      if (typeof data.error === 'string') {
        reports.push({ index: data.index, owner: '', writers: [], error: data.error });
        continue;
      }
      if (typeof data.owner !== 'string') continue;
      const writers = Array.isArray(data.writers) ? data.writers : [data.writers];
      reports.push({
        index: data.index,
        owner: data.owner,
        writers: writers.filter((w): w is string => typeof w === 'string'),
      });
    } catch {
      continue;
    }
  }
  return reports;
}

function describe(sid: string): string {
  return KNOWN[sid] !== undefined ? `${KNOWN[sid]} (${sid})` : sid;
}

/** Who besides SYSTEM and Administrators could change the report's path: "owner X", "Y may write". Empty when none. */
export function untrusted(report: AclReport): string[] {
  const out: string[] = [];
  if (TRUSTED[report.owner] === undefined) out.push(`owner ${describe(report.owner)}`);
  for (const sid of new Set(report.writers)) if (TRUSTED[sid] === undefined) out.push(`${describe(sid)} may write`);
  return out;
}

/**
 * Who besides SYSTEM and Administrators could change each of `paths` (Windows only), in the same order. Throws when
 * PowerShell cannot tell: a file nobody can vouch for is not used.
 */
export async function untrustedWriters(host: Host, paths: readonly string[]): Promise<string[][]> {
  const argv = [
    'powershell.exe',
    '-NoProfile',
    '-NonInteractive',
    '-ExecutionPolicy',
    'Bypass',
    '-Command',
    aclScript(paths),
  ];
  const result = await host.run(argv, { timeoutMs: 60_000 });
  const reports = parseAclReports(result.stdout);
  return paths.map((path, index) => {
    const report = reports.find((r) => r.index === index);
    if (report?.error !== undefined) throw new Error(`cannot read who may write ${path}: ${report.error}`);
    if (report === undefined) {
      const said = (result.stderr.trim() || result.stdout.trim()).split(/\r?\n/)[0] ?? '';
      throw new Error(`cannot read who may write ${path} (Get-Acl, exit ${result.exitCode}${said ? `: ${said}` : ''})`);
    }
    return untrusted(report);
  });
}
