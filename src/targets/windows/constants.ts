// Names and numbers the Windows scripts and the agent must agree on; the scripts get them rendered in.

/** How the Windows script changes adapters: the NetTCPIP cmdlets, or netsh; both flavors are one PowerShell script. */
import type { WindowsFlavor } from '../../settings.js';

export type { WindowsFlavor } from '../../settings.js';

/** Exit codes of the rendered scripts, the same for both flavors; the agent maps them back to a report. */
export const WINDOWS_EXIT = {
  inSync: 0,
  error: 1,
  changed: 10,
  notFound: 20,
  busy: 21,
  refused: 22,
  rolledBack: 30,
  rollbackFailed: 31,
  notAsDesired: 40,
} as const;

/**
 * Where each flavor's script goes, relative to the agent's directory (the Windows target's root:
 * `--root`/`render --out` DIR, else %ProgramData%\eip-agent). So `render --out DIR` writes DIR/eip-agent.ps1.
 */
export const SCRIPT_PATH: Readonly<Record<WindowsFlavor, string>> = {
  powershell: '/eip-agent.ps1',
  netsh: '/eip-agent.netsh.ps1',
};

/**
 * Where the netsh flavor's script went before it became a PowerShell script: a .cmd file. Apply removes it when the
 * agent wrote it, so no outdated copy is left to run by hand.
 */
export const OLD_NETSH_SCRIPT_PATH = '/eip-agent.netsh.cmd';

/** The scheduled task's name (in the root folder of Task Scheduler). */
export const TASK_NAME = 'eip-agent';

/** Scripts that register and remove the scheduled task, relative to the agent's directory. */
export const TASK_SCRIPT_PATH = { install: '/install-task.ps1', uninstall: '/uninstall-task.ps1' } as const;

/**
 * Windows PowerShell 5.1 reads a BOM-less script in the ANSI code page; with a BOM it reads UTF-8.
 * The scripts are pure ASCII anyway, so the BOM only removes the doubt.
 */
export const UTF8_BOM = '\uFEFF';

/** Default-route metric step between NICs: the primary NIC's route (0) must win over every secondary NIC's. */
export const ROUTE_METRIC_STEP = 100;

/** Default minutes between scheduled runs. */
export const DEFAULT_TASK_INTERVAL_MINUTES = 5;
