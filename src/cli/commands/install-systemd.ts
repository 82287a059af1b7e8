import { requireAbsolute } from '../../config/options.js';
import { underRoot } from '../../plan/root.js';
import { firstLine, runTool } from '../../host/run-tool.js';
import {
  DEFAULT_UNIT_OPTIONS,
  parseSystemdVersion,
  renderUnit,
  requireVisibleToService,
  UNIT_MARKER,
  UNIT_NAME,
  UNIT_PATH,
} from '../../daemon/unit.js';
import { ConfigError, HostError, quoteShort } from '../../errors.js';
import type { Host } from '../../host/host.js';
import type { Io } from '../command.js';
import type { OptionSpec } from '../args.js';
import { defineCommand, EXIT } from '../command.js';
import { loadConfig } from '../../config/file.js';

/** Runs `systemctl ...args`; a failure names the command and systemctl's own message. */
async function systemctl(host: Host, io: Io, args: string[]): Promise<string> {
  const result = await runTool(host, ['systemctl', ...args]);
  if (result.exitCode !== 0)
    throw new HostError(
      `\`systemctl ${args.join(' ')}\` failed (exit ${result.exitCode}): ${firstLine(result.stderr)}`,
    );
  if (args[0] !== '--version') io.out(`ran systemctl ${args.join(' ')}\n`);
  return result.stdout;
}

function requireSystemd(args: { systemd?: boolean | undefined; root: string }, verb: string): string {
  if (args.systemd !== true)
    throw new ConfigError(`${verb}: say what to ${verb}: --systemd (the systemd service is the only kind so far)`);
  requireAbsolute('--root', args.root);
  return args.root;
}

/** Refuses to replace or remove a unit someone else wrote at our path. */
function checkOwned(path: string, text: string | null): void {
  if (text !== null && !text.startsWith(UNIT_MARKER)) {
    throw new ConfigError(
      `${path} exists and was not written by eip-agent (no "${UNIT_MARKER}" first line): move it away first`,
    );
  }
}

const ROOT_OPTION = {
  type: 'string',
  default: '/',
  describe: 'prefix for the unit path; systemctl runs only when it is /',
} as const satisfies OptionSpec;

/** `eip-agent install --systemd`: writes the unit for this installation, then enables and starts it. */
export const installCommand = defineCommand({
  command: 'install',
  describe: `install the daemon as a systemd service: write ${UNIT_PATH}, systemctl daemon-reload, enable --now`,
  options: {
    systemd: { type: 'boolean', describe: 'install the systemd service' },
    root: ROOT_OPTION,
    config: {
      type: 'string',
      describe: 'config file the service reads (passed as run --config)',
      defaultDescription: '/etc/eip-agent/config.json',
    },
    node: {
      type: 'string',
      describe: 'node binary for ExecStart',
      defaultDescription: 'the node running this command',
    },
    bin: {
      type: 'string',
      describe: 'eip-agent entry point for ExecStart',
      defaultDescription: 'the one running this command',
    },
    executable: {
      type: 'string',
      describe: 'the release executable for ExecStart (instead of --node and --bin)',
      defaultDescription: 'this one, when it is the release executable',
    },
    'systemd-version': {
      type: 'string',
      describe: 'systemd version of the target system (with --root; otherwise asked from systemctl)',
    },
    json: { type: 'boolean', default: false, describe: 'print JSON' },
  },
  async run(host, io, args) {
    const root = requireSystemd(args, 'install');
    const config = await loadConfig(host, args.config);
    const live = root === '/';
    const given = args.systemdVersion;
    if (given !== undefined && !/^\d{1,4}$/.test(given))
      throw new ConfigError(`--systemd-version ${quoteShort(given)}: expected a number such as 219 or 252`);
    const lines: string[] = [];
    const say = args.json ? { out: (t: string) => void lines.push(t.trimEnd()), err: io.err } : io;
    const version = live
      ? parseSystemdVersion(await systemctl(host, say, ['--version']))
      : given === undefined
        ? undefined
        : Number(given);
    // The release executable carries its own runtime: its unit runs it, not node.
    const executable =
      args.executable ??
      (process.versions.bun !== undefined && args.node === undefined && args.bin === undefined
        ? process.execPath
        : undefined);
    const node = args.node ?? process.execPath;
    const bin = args.bin ?? process.argv[1] ?? DEFAULT_UNIT_OPTIONS.bin;
    if (executable !== undefined) requireVisibleToService('--executable', executable);
    else {
      requireVisibleToService('--node', node);
      requireVisibleToService('--bin', bin);
    }
    if (args.config !== undefined) requireVisibleToService('--config', args.config);
    const text = renderUnit({
      node,
      bin,
      ...(executable !== undefined ? { executable } : {}),
      ...(args.config !== undefined ? { config: args.config } : {}),
      ...(config.metricsTextfile !== undefined ? { metricsTextfile: config.metricsTextfile } : {}),
      ...(version !== undefined ? { systemdVersion: version } : {}),
    });
    const path = underRoot(root, UNIT_PATH);
    checkOwned(path, await host.fs.readText(path));
    await host.fs.writeAtomic(path, text, 0o644);
    say.out(`wrote ${path}\n`);
    if (!live)
      say.out(
        `--root is not /: not enabling it here (in that system: systemctl daemon-reload && systemctl enable --now ${UNIT_NAME})\n`,
      );
    else {
      await systemctl(host, say, ['daemon-reload']);
      await systemctl(host, say, ['enable', '--now', UNIT_NAME]);
    }
    if (args.json)
      io.out(
        `${JSON.stringify({ unit: path, enabled: live, systemdVersion: version ?? null, steps: lines }, null, 2)}\n`,
      );
    return EXIT.ok;
  },
});

/** `eip-agent uninstall --systemd`: stops and disables the service, removes the unit. */
export const uninstallCommand = defineCommand({
  command: 'uninstall',
  describe: `remove the systemd service: systemctl disable --now, remove ${UNIT_PATH}, daemon-reload`,
  options: { systemd: { type: 'boolean', describe: 'remove the systemd service' }, root: ROOT_OPTION },
  async run(host, io, args) {
    const root = requireSystemd(args, 'uninstall');
    const path = underRoot(root, UNIT_PATH);
    const text = await host.fs.readText(path);
    if (text === null) {
      io.out(`not installed: ${path} does not exist\n`);
      return EXIT.ok;
    }
    checkOwned(path, text);
    const live = root === '/';
    if (live) await systemctl(host, io, ['disable', '--now', UNIT_NAME]);
    await host.fs.remove(path);
    io.out(`removed ${path}\n`);
    if (live) await systemctl(host, io, ['daemon-reload']);
    return EXIT.ok;
  },
});
