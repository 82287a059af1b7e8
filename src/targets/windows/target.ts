import { writeFiles } from '../../plan/files.js';
import type { FileChange, FileSnapshot } from '../../plan/plan.js';
import { emptyOwnership, isManaged, planFiles } from '../../plan/plan.js';
import { underRoot } from '../../plan/root.js';
import { AgentError, ApplyError, HostError } from '../../errors.js';
import { windowsAgentDir, type Host } from '../../host/host.js';
import { DEFAULT_METADATA_URL } from '../../metadata/index.js';
import type { WindowsFlavor } from './constants.js';
import { OLD_NETSH_SCRIPT_PATH, SCRIPT_PATH, UTF8_BOM, WINDOWS_EXIT } from './constants.js';
import type { WindowsDesiredRuntime } from './render.js';
import { renderWindows } from './render.js';
import type { Check, VerifyReport } from '../../plan/verify-report.js';
import type { ApplyOutcome, Target } from '../target.js';

/** A script run stops after this; the scheduled task's own limit is the same order. */
const SCRIPT_TIMEOUT_MS = 10 * 60_000;

/**
 * The agent's directory on a Windows guest, which is the Windows target's root: the script, the task
 * scripts, the log and the ownership lists live there. `--root DIR` (and `render --out DIR`) make DIR
 * that directory; the default root `/` means %ProgramData%\eip-agent on Windows and previews as
 * /ProgramData/eip-agent elsewhere.
 */
export function agentDirectory(host: Host, root: string): string {
  if (root !== '/') return root;
  if (host.platform === 'win32') return windowsAgentDir(host);
  return '/ProgramData/eip-agent';
}

/** A path under the agent's directory, with backslashes on Windows (as powershell.exe -File takes it). */
export function agentPath(host: Host, dir: string, path: string): string {
  const joined = underRoot(dir, path);
  return host.platform === 'win32' ? joined.replace(/\//g, '\\') : joined;
}

/** The command line that runs a rendered script (either flavor). */
export function scriptArgv(path: string, mode: 'apply' | 'verify'): string[] {
  return [
    'powershell.exe',
    '-NoProfile',
    '-NonInteractive',
    '-ExecutionPolicy',
    'Bypass',
    '-File',
    path,
    '-Mode',
    mode === 'apply' ? 'Apply' : 'Verify',
  ];
}

/** The one line of JSON a script prints last. */
export interface ScriptResult {
  exitCode: number;
  status: string;
  changes: string[];
  checks: Check[];
  errors: string[];
}

const CHECK_KINDS = new Set<Check['kind']>(['link', 'address', 'route', 'ping', 'script', 'metadata']);

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** The result's JSON text: the last line that looks like JSON. */
function resultText(stdout: string): string | undefined {
  return stdout
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'))
    .pop();
}

/** Reads a script's result from its exit code and the JSON it prints last; throws when there is none. */
export function parseScriptResult(script: string, exitCode: number, stdout: string, stderr: string): ScriptResult {
  const text = resultText(stdout);
  let data: Record<string, unknown> | undefined;
  try {
    data = text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    data = undefined;
  }
  if (data === undefined || typeof data !== 'object' || data === null) {
    const said = (stderr.trim() || stdout.trim()).split(/\r?\n/)[0] ?? '';
    throw new ApplyError(`${script} exited ${exitCode} without a JSON result${said ? `: ${said}` : ''}`);
  }
  const checks = Array.isArray(data.checks) ? data.checks : [];
  return {
    // The process's code is the one that counts; the JSON repeats it.
    exitCode,
    status: typeof data.status === 'string' ? data.status : 'unknown',
    changes: strings(data.changes),
    errors: strings(data.errors),
    checks: checks
      .filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null)
      .map((c) => ({
        kind: CHECK_KINDS.has(c.kind as Check['kind']) ? (c.kind as Check['kind']) : 'script',
        subject: String(c.subject ?? ''),
        ok: c.ok === true,
        detail: String(c.detail ?? ''),
      })),
  };
}

const MEANING: Record<number, string> = {
  [WINDOWS_EXIT.inSync]: 'in sync, nothing changed',
  [WINDOWS_EXIT.changed]: 'changed and verified',
  [WINDOWS_EXIT.notFound]:
    'an adapter was not found by its MAC, or several were: nothing changed (wait until the ENI is attached)',
  [WINDOWS_EXIT.busy]: 'another run holds the lock: nothing changed',
  [WINDOWS_EXIT.refused]: 'a DHCP lease differs from the metadata primary: nothing changed',
  [WINDOWS_EXIT.rolledBack]: 'a step or the verification failed: rolled back',
  [WINDOWS_EXIT.rollbackFailed]: 'a step or the verification failed and the rollback failed too: check the adapters',
  [WINDOWS_EXIT.notAsDesired]: 'not as the metadata says',
  [WINDOWS_EXIT.error]: 'error before any change',
};

/** The script's outcome as a report: its own checks, then one `script` check for the run as a whole. */
export function reportFromScript(script: string, result: ScriptResult, ok: boolean): VerifyReport {
  const meaning = MEANING[result.exitCode] ?? `unexpected exit code (${result.status})`;
  const detail = [`exit ${result.exitCode}: ${meaning}`, ...result.errors].join('; ');
  const checks = [...result.checks, { kind: 'script' as const, subject: script, ok, detail }];
  return { ok: ok && checks.every((c) => c.ok), checks };
}

async function runScript(host: Host, path: string, mode: 'apply' | 'verify'): Promise<ScriptResult> {
  const argv = scriptArgv(path, mode);
  let result;
  try {
    result = await host.run(argv, { timeoutMs: SCRIPT_TIMEOUT_MS });
  } catch (error) {
    throw new HostError(`could not run \`${argv.join(' ')}\`: ${(error as Error).message}`, { cause: error });
  }
  return parseScriptResult(path, result.exitCode, result.stdout, result.stderr);
}

function requireWindows(host: Host, what: string): void {
  if (host.platform !== 'win32') {
    throw new HostError(
      `${what} the Windows target needs Windows; use \`plan --target windows\` or \`render --target windows --out DIR\` here`,
    );
  }
}

/** Whether a Windows script is the agent's: its marker follows the BOM (.ps1) or an echo-free `@rem ` (.cmd). */
export function isOwnScript(content: string | null): boolean {
  if (content === null) return false;
  const text = content.startsWith(UTF8_BOM) ? content.slice(UTF8_BOM.length) : content;
  return isManaged(text) || isManaged(text.replace(/^@rem /, '# '));
}

/**
 * The agent's scripts that this flavor does not use: the other flavor's, and the netsh flavor's old .cmd. The plan
 * removes each one the agent wrote, so the agent's directory holds one script, the one kept up to date.
 */
async function staleScripts(host: Host, dir: string, flavor: WindowsFlavor): Promise<FileChange[]> {
  const others = [
    ...Object.entries(SCRIPT_PATH)
      .filter(([f]) => f !== flavor)
      .map(([, path]) => path),
    OLD_NETSH_SCRIPT_PATH,
  ];
  const found = await Promise.all(
    others.map(async (path) => ({ path, previous: await host.fs.readText(underRoot(dir, path)) })),
  );
  return found
    .filter((f) => isOwnScript(f.previous))
    .map(({ path, previous }) => ({ path, mode: 0o644, content: '', action: 'remove', previous, previousOwned: true }));
}

/** The generic check sees neither the BOM nor `@rem `: an older script of the agent's is its own, not an original to back up. */
function ownedScript(change: FileChange): FileChange {
  if (change.previousOwned || !isOwnScript(change.previous)) return change;
  const { backupPath: _ignored, ...rest } = change;
  return { ...rest, previousOwned: true };
}

async function snapshotOf(host: Host, dir: string, path: string): Promise<FileSnapshot> {
  const [current, bak, agentBak] = await Promise.all([
    host.fs.readText(underRoot(dir, path)),
    host.fs.readText(underRoot(dir, `${path}.bak`)),
    host.fs.readText(underRoot(dir, `${path}.eip-agent.bak`)),
  ]);
  return { current, bak, agentBakExists: agentBak !== null };
}

/**
 * Windows Server 2012 and later: one script, PowerShell (default) or netsh, rendered from the model
 * and run as SYSTEM. The script finds each adapter by MAC, changes what differs, verifies and rolls
 * back by itself, so the plan holds the script file only and apply maps the script's result.
 */
export const windowsTarget: Target = {
  name: 'windows',

  async plan(host, model, options) {
    const flavor = options.windowsFlavor ?? 'powershell';
    const dir = agentDirectory(host, options.root);
    const desired = renderWindows(model, { flavor, metadataUrl: options.metadataUrl ?? DEFAULT_METADATA_URL });
    const snapshots = new Map(
      await Promise.all(
        desired.files.map(async (f): Promise<[string, FileSnapshot]> => [f.path, await snapshotOf(host, dir, f.path)]),
      ),
    );
    const files = [...planFiles(desired.files, snapshots).map(ownedScript), ...(await staleScripts(host, dir, flavor))];
    const warnings = [
      'the Windows script compares and changes the adapters itself, at run time on the guest (by MAC, then ' +
        'ifIndex): this plan lists the script, not adapter changes',
    ];
    return {
      target: 'windows',
      root: dir,
      files,
      runtime: [],
      warnings,
      runtimePlanned: false,
      desired,
      ownership: emptyOwnership(),
    };
  },

  async apply(host, plan, options): Promise<ApplyOutcome> {
    requireWindows(host, 'applying');
    const runtime = plan.desired.runtime as WindowsDesiredRuntime;
    const files = await writeFiles(host, plan.root, plan.files);
    const outcome = (runtimeApplied: string[], report?: VerifyReport): ApplyOutcome => ({
      filesWritten: files.written.map((w) => w.path),
      runtimeApplied,
      ...(report !== undefined ? { report } : {}),
      // The script restored the adapters itself when it failed; what is left to undo is the script file.
      undo: async () => {
        await files.restore();
        return [];
      },
    });
    if (!options.runtime) return outcome([]);
    let result: ScriptResult;
    try {
      result = await runScript(host, agentPath(host, plan.root, runtime.script), 'apply');
    } catch (error) {
      await files.restore();
      if (error instanceof AgentError) throw error;
      throw new ApplyError(`running ${runtime.script} failed: ${(error as Error).message}`, { cause: error });
    }
    const script = runtime.script.slice(1);
    switch (result.exitCode) {
      case WINDOWS_EXIT.inSync:
      case WINDOWS_EXIT.changed:
        return outcome(result.changes, reportFromScript(script, result, true));
      case WINDOWS_EXIT.rolledBack:
      case WINDOWS_EXIT.rollbackFailed:
        return outcome(result.changes, reportFromScript(script, result, false));
      default: {
        await files.restore();
        const meaning = MEANING[result.exitCode] ?? `unexpected exit code ${result.exitCode} (${result.status})`;
        throw new ApplyError(`${script}: ${meaning}${result.errors.length > 0 ? `: ${result.errors.join('; ')}` : ''}`);
      }
    }
  },

  status() {
    return Promise.reject(new HostError('status reads the live state with `ip`; target windows is not supported yet'));
  },

  liveNics() {
    return Promise.reject(
      new HostError('the metrics read the live NICs with `ip`; target windows is not supported yet'),
    );
  },

  rollback() {
    // The script undoes its own change when a step or its verification fails; nothing else is recorded to undo.
    return Promise.reject(
      new HostError(
        'rollback on Windows: the script already rolls back its own change when a step or its verification ' +
          'fails; undoing an apply that succeeded is not supported yet',
      ),
    );
  },

  async verify(host, plan) {
    requireWindows(host, 'verifying');
    const runtime = plan.desired.runtime as WindowsDesiredRuntime;
    // Run what the metadata asks for now, even if the script on disk is older; a side copy changes nothing else.
    const rendered = plan.desired.files[0];
    if (rendered === undefined) throw new ApplyError('the Windows plan has no script');
    const copy = runtime.script.replace(/^\/(.*)\.ps1$/, '/.verify-$1.ps1');
    await host.fs.writeAtomic(underRoot(plan.root, copy), rendered.content, rendered.mode);
    try {
      const result = await runScript(host, agentPath(host, plan.root, copy), 'verify');
      const script = runtime.script.slice(1);
      if (result.exitCode === WINDOWS_EXIT.inSync) return reportFromScript(script, result, true);
      if (result.exitCode === WINDOWS_EXIT.notAsDesired || result.exitCode === WINDOWS_EXIT.notFound)
        return reportFromScript(script, result, false);
      throw new ApplyError(
        `${script} could not verify: ${MEANING[result.exitCode] ?? `exit ${result.exitCode}`}` +
          `${result.errors.length > 0 ? `: ${result.errors.join('; ')}` : ''}`,
      );
    } finally {
      await host.fs.remove(underRoot(plan.root, copy));
    }
  },
};
