import { requireAbsolute } from '../../config/options.js';
import { SETTINGS } from '../../settings.js';
import { underRoot } from '../../plan/root.js';
import { ConfigError, HostError } from '../../errors.js';
import type { Host } from '../../host/host.js';
import type { WindowsFlavor } from '../../targets/windows/constants.js';
import { DEFAULT_TASK_INTERVAL_MINUTES, TASK_NAME, UTF8_BOM } from '../../targets/windows/constants.js';
import type { CliCommand, Io } from '../command.js';
import { defineCommand, EXIT, settingOption } from '../command.js';
import type { OptionSpecs } from '../args.js';
import { installCommand, uninstallCommand } from './install-systemd.js';

type Verb = 'install' | 'uninstall';

/** What the task's scripts are made from: the install command's own options and its task options. */
interface TaskArgs {
  root: string;
  json: boolean;
  node?: string | undefined;
  bin?: string | undefined;
  windowsFlavor?: WindowsFlavor | undefined;
  interval?: number | undefined;
  metadataUrl?: string | undefined;
}

/** Where a Windows guest keeps node and the bundled agent when this command runs elsewhere (README, "Windows"). */
const WINDOWS_DEFAULTS = {
  node: 'C:\\Program Files\\nodejs\\node.exe',
  agent: 'C:\\ProgramData\\eip-agent\\bin\\eip-agent.js',
};
const INTERVAL_MAX = 1440;
const TASK_TIMEOUT_MS = 120_000;

function interval(args: TaskArgs): number {
  const value = args.interval ?? DEFAULT_TASK_INTERVAL_MINUTES;
  if (!Number.isInteger(value) || value < 1 || value > INTERVAL_MAX) {
    throw new ConfigError(
      `--interval ${JSON.stringify(value)} must be a whole number of minutes from 1 to ${INTERVAL_MAX}`,
    );
  }
  return value;
}

// The Windows renderer and its templates load only when a Windows command runs.
async function renderFor(host: Host, args: TaskArgs, verb: Verb) {
  const { renderTaskInstall, renderTaskUninstall } = await import('../../targets/windows/task.js');
  if (verb === 'uninstall') return renderTaskUninstall();
  // On Windows the task runs the node and the agent running this command; elsewhere the README's locations.
  const here = host.platform === 'win32';
  return renderTaskInstall({
    node: args.node ?? (here ? process.execPath : WINDOWS_DEFAULTS.node),
    agent: args.bin ?? (here ? (process.argv[1] ?? WINDOWS_DEFAULTS.agent) : WINDOWS_DEFAULTS.agent),
    flavor: args.windowsFlavor ?? SETTINGS.windowsFlavor.default,
    intervalMinutes: interval(args),
    ...(args.metadataUrl !== undefined ? { metadataUrl: args.metadataUrl } : {}),
  });
}

/**
 * `install --windows-task` / `uninstall --windows-task`: renders the script that registers (or
 * removes) the scheduled task, writes it to the agent's directory and, on Windows, runs it. Elsewhere
 * with the default root it prints the script; with --root DIR it writes DIR/install-task.ps1.
 */
async function runWindowsTask(host: Host, io: Io, args: TaskArgs, verb: Verb): Promise<number> {
  const root = args.root;
  requireAbsolute('--root', root);
  const file = await renderFor(host, args, verb);
  const { agentDirectory, agentPath } = await import('../../targets/windows/target.js');
  const onWindows = host.platform === 'win32';
  if (!onWindows && root === '/') {
    io.out(file.content.slice(UTF8_BOM.length));
    io.err(
      `eip-agent: not on Windows: printed the ${verb} script; on the guest, save it as UTF-8 with BOM and run: ` +
        `powershell.exe -NoProfile -ExecutionPolicy Bypass -File ${file.path.slice(1)}\n`,
    );
    return EXIT.ok;
  }
  const dir = agentDirectory(host, root);
  const written = underRoot(dir, file.path);
  await host.fs.writeAtomic(written, file.content, file.mode);
  if (!onWindows) {
    io.out(args.json ? `${JSON.stringify({ files: [written] }, null, 2)}\n` : `${written}\n`);
    return EXIT.ok;
  }
  const path = agentPath(host, dir, file.path);
  const argv = ['powershell.exe', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', path];
  let result;
  try {
    result = await host.run(argv, { timeoutMs: TASK_TIMEOUT_MS });
  } catch (error) {
    throw new HostError(`could not run \`${argv.join(' ')}\`: ${(error as Error).message}`, { cause: error });
  }
  const line = result.stdout
    .split(/\r?\n/)
    .filter((l) => l.trim().startsWith('{'))
    .pop();
  let data: { status?: unknown; error?: unknown } = {};
  try {
    data = line === undefined ? {} : (JSON.parse(line) as typeof data);
  } catch {
    data = {};
  }
  if (result.exitCode !== 0) {
    const why = typeof data.error === 'string' ? data.error : (result.stderr.trim().split(/\r?\n/)[0] ?? '');
    throw new HostError(
      `${verb === 'install' ? 'registering' : 'removing'} scheduled task ${TASK_NAME} failed (exit ${result.exitCode})${why ? `: ${why}` : ''}`,
    );
  }
  const status = typeof data.status === 'string' ? data.status : 'done';
  io.out(
    args.json
      ? `${JSON.stringify({ task: TASK_NAME, status, script: path }, null, 2)}\n`
      : `scheduled task ${TASK_NAME}: ${status} (${path})\n`,
  );
  return EXIT.ok;
}

/** What `--windows-task` does, for each verb. */
const TASK_WHAT: Record<Verb, string> = {
  install: 'register the Windows scheduled task (SYSTEM, at startup and every --interval minutes)',
  uninstall: 'remove the Windows scheduled task',
};

/** The options every `--windows-task` takes. */
const taskOptions = (verb: Verb) =>
  ({
    'windows-task': { type: 'boolean', describe: TASK_WHAT[verb] },
    json: { type: 'boolean', default: false, describe: 'print JSON' },
  }) as const satisfies OptionSpecs;

/** The options only `install --windows-task` takes. */
const INSTALL_TASK_OPTIONS = {
  'windows-flavor': settingOption('windowsFlavor', 'script the task runs (passed to apply)'),
  interval: {
    type: 'number',
    describe: 'minutes between runs of the task',
    defaultDescription: String(DEFAULT_TASK_INTERVAL_MINUTES),
  },
  'metadata-url': { type: 'string', describe: 'metadata base URL the task passes to apply' },
} as const satisfies OptionSpecs;

/** `--windows-task`, `--systemd` (the base command), or a one-line refusal of neither or both. */
function dispatch(
  verb: Verb,
  args: { windowsTask?: boolean | undefined; systemd?: boolean | undefined },
  task: () => Promise<number>,
  systemd: () => Promise<number>,
): Promise<number> {
  if (args.windowsTask === true) {
    if (args.systemd === true) throw new ConfigError(`${verb}: --systemd and --windows-task exclude each other`);
    return task();
  }
  if (args.systemd !== true) throw new ConfigError(`${verb}: say what to ${verb}: --systemd or --windows-task`);
  return systemd();
}

const describeWithTask = (describe: string, verb: Verb): string =>
  `${describe}; or --windows-task: ${TASK_WHAT[verb]}; the script is rendered anywhere and run on Windows`;

/**
 * `install` and `uninstall` with a `--windows-task` kind beside their own (`--systemd`): the same verb for every OS,
 * dispatched on the flag, so the command list keeps one entry per verb.
 */
export const installWithTask: CliCommand = defineCommand({
  ...installCommand,
  describe: describeWithTask(installCommand.describe, 'install'),
  options: { ...installCommand.options, ...taskOptions('install'), ...INSTALL_TASK_OPTIONS },
  run: (host, io, args) =>
    dispatch(
      'install',
      args,
      () => runWindowsTask(host, io, args, 'install'),
      () => installCommand.run(host, io, args),
    ),
});

export const uninstallWithTask: CliCommand = defineCommand({
  ...uninstallCommand,
  describe: describeWithTask(uninstallCommand.describe, 'uninstall'),
  options: { ...uninstallCommand.options, ...taskOptions('uninstall') },
  run: (host, io, args) =>
    dispatch(
      'uninstall',
      args,
      () => runWindowsTask(host, io, args, 'uninstall'),
      () => uninstallCommand.run(host, io, args),
    ),
});
