import { compileTemplate } from '../../render/handlebars.js';
import type { RenderedFile } from '../../render/types.js';
import type { WindowsFlavor } from './constants.js';
import { TASK_NAME, TASK_SCRIPT_PATH, UTF8_BOM } from './constants.js';
import * as guard from './guard.js';
import installSource from '../../../templates/windows/install-task.ps1.hbs';
import uninstallSource from '../../../templates/windows/uninstall-task.ps1.hbs';

/** What the scheduled task runs: node.exe with the bundled agent, `apply --target windows` every few minutes. */
export interface TaskOptions {
  /** node.exe, absolute Windows path. */
  node: string;
  /** The bundled agent (dist/eip-agent.js), absolute Windows path. */
  agent: string;
  flavor: WindowsFlavor;
  intervalMinutes: number;
  /** Passed on to the agent when it is not the default. */
  metadataUrl?: string;
}

interface InstallData {
  taskName: string;
  node: string;
  agent: string;
  arguments: string;
  workingDirectory: string;
  intervalMinutes: number;
  timeLimitMinutes: number;
}

const install = compileTemplate<InstallData>(installSource);
const uninstall = compileTemplate<{ taskName: string }>(uninstallSource);

const FILE_MODE = 0o644;
const INTERVAL_MAX = 1440;
/** A run that takes longer than this is stopped; shorter than the interval would be tighter, but a slow first run needs room. */
const TIME_LIMIT_MINUTES = 10;
const PATHS = new Set(['node', 'agent', 'workingDirectory']);

function script(path: string, text: string): RenderedFile {
  const content = UTF8_BOM + text.replace(/\r?\n/g, '\r\n');
  guard.assertAsciiScript(path, content);
  return { path, mode: FILE_MODE, content };
}

/** The script that registers (or re-registers, identically) the scheduled task. Pure. */
export function renderTaskInstall(options: TaskOptions): RenderedFile {
  const agent = guard.windowsPath('--agent', options.agent);
  // --skip-failed: a model that failed verification is not retried (and rolled back again) every few minutes.
  const args = ['apply', '--target', 'windows', '--windows-flavor', options.flavor, '--skip-failed'];
  if (options.metadataUrl !== undefined) args.push('--metadata-url', guard.metadataUrl(options.metadataUrl));
  const data: InstallData = {
    taskName: TASK_NAME,
    node: guard.windowsPath('--node', options.node),
    agent,
    arguments: args.join(' '),
    workingDirectory: agent.slice(0, agent.lastIndexOf('\\') + 1),
    intervalMinutes: guard.int('--interval', options.intervalMinutes, INTERVAL_MAX),
    timeLimitMinutes: TIME_LIMIT_MINUTES,
  };
  guard.assertSafeData('task script data', data, PATHS);
  return script(TASK_SCRIPT_PATH.install, install(data));
}

/** The script that removes the scheduled task (absent is fine). Pure. */
export function renderTaskUninstall(): RenderedFile {
  return script(TASK_SCRIPT_PATH.uninstall, uninstall({ taskName: TASK_NAME }));
}
