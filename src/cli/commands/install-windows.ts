import { requireAbsolute } from '../../config/options.js';
import { underRoot } from '../../plan/root.js';
import { ConfigError, HostError } from '../../errors.js';
import type { Host } from '../../host/host.js';
import type { WindowsFlavor } from '../../targets/windows/constants.js';
import { DEFAULT_TASK_INTERVAL_MINUTES, TASK_NAME, UTF8_BOM } from '../../targets/windows/constants.js';
import type { Args, CliCommand, Io } from '../command.js';
import { EXIT, settingOption } from '../command.js';

type Verb = 'install' | 'uninstall';

/** Where a Windows guest keeps node and the bundled agent when this command runs elsewhere (README, "Windows"). */
const WINDOWS_DEFAULTS = {
  node: 'C:\\Program Files\\nodejs\\node.exe',
  agent: 'C:\\ProgramData\\eip-agent\\bin\\eip-agent.js',
};
const INTERVAL_MAX = 1440;
const TASK_TIMEOUT_MS = 120_000;

function interval(args: Args): number {
  const value = args.interval ?? DEFAULT_TASK_INTERVAL_MINUTES;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > INTERVAL_MAX) {
    throw new ConfigError(
      `--interval ${JSON.stringify(value)} must be a whole number of minutes from 1 to ${INTERVAL_MAX}`,
    );
  }
  return value;
}

// The Windows renderer and its templates load only when a Windows command runs.
async function renderFor(host: Host, args: Args, verb: Verb) {
  const { renderTaskInstall, renderTaskUninstall } = await import('../../targets/windows/task.js');
  if (verb === 'uninstall') return renderTaskUninstall();
  // On Windows the task runs the node and the agent running this command; elsewhere the README's locations.
  const here = host.platform === 'win32';
  return renderTaskInstall({
    node: String(args.node ?? (here ? process.execPath : WINDOWS_DEFAULTS.node)),
    agent: String(args.bin ?? (here ? (process.argv[1] ?? WINDOWS_DEFAULTS.agent) : WINDOWS_DEFAULTS.agent)),
    flavor: (args.windowsFlavor ?? 'powershell') as WindowsFlavor,
    intervalMinutes: interval(args),
    ...(typeof args.metadataUrl === 'string' ? { metadataUrl: args.metadataUrl } : {}),
  });
}

/**
 * `install --windows-task` / `uninstall --windows-task`: renders the script that registers (or
 * removes) the scheduled task, writes it to the agent's directory and, on Windows, runs it. Elsewhere
 * with the default root it prints the script; with --root DIR it writes DIR/install-task.ps1.
 */
async function runWindowsTask(host: Host, io: Io, args: Args, verb: Verb): Promise<number> {
  const root = String(args.root ?? '/');
  requireAbsolute('--root', root);
  const file = await renderFor(host, args, verb);
  const { agentDirectory, agentPath } = await import('../../targets/windows/target.js');
  const onWindows = host.platform === 'win32';
  if (!onWindows && root === '/') {
    io.out(file.content.slice(UTF8_BOM.length));
    io.err(
      `eip-agent: not on Windows: printed the ${verb} script; on the guest, save it as UTF-8 with BOM and run: powershell.exe -NoProfile -ExecutionPolicy Bypass -File ${file.path.slice(1)}\n`,
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

/**
 * Gives an `install`/`uninstall` command a `--windows-task` kind beside its own (`--systemd`): the same
 * verb for every OS, dispatched on the flag, so the command list keeps one entry per verb.
 */
export function withWindowsTask(base: CliCommand, verb: Verb): CliCommand {
  const what =
    verb === 'install'
      ? 'register the Windows scheduled task (SYSTEM, at startup and every --interval minutes)'
      : 'remove the Windows scheduled task';
  return {
    ...base,
    describe: `${base.describe}; or --windows-task: ${what}; the script is rendered anywhere and run on Windows`,
    options: {
      ...base.options,
      'windows-task': { type: 'boolean', describe: what },
      ...(verb === 'install' && {
        'windows-flavor': settingOption('windowsFlavor', { describe: 'script the task runs (passed to apply)' }),
        interval: {
          type: 'number',
          describe: 'minutes between runs of the task',
          defaultDescription: String(DEFAULT_TASK_INTERVAL_MINUTES),
        },
        'metadata-url': { type: 'string', describe: 'metadata base URL the task passes to apply' },
      }),
      json: { type: 'boolean', default: false, describe: 'print JSON' },
    },
    run(host, io, args) {
      if (args.windowsTask === true) {
        if (args.systemd === true) throw new ConfigError(`${verb}: --systemd and --windows-task exclude each other`);
        return runWindowsTask(host, io, args, verb);
      }
      if (args.systemd !== true) throw new ConfigError(`${verb}: say what to ${verb}: --systemd or --windows-task`);
      return base.run(host, io, args);
    },
  };
}
