import { ConfigError } from '../../errors.js';
import type { SandboxChange } from '../../sandbox/changes.js';
import {
  SANDBOX_TARGETS,
  asAgentError,
  checkName,
  sandboxChange,
  sandboxDown,
  sandboxRun,
  sandboxStatus,
  sandboxUp,
  type SandboxTarget,
} from '../../sandbox/sandbox.js';
import { camel } from '../args.js';
import { COMMON_OPTIONS, type Args, type CliCommand } from '../command.js';

const ACTIONS = ['up', 'run', 'change', 'status', 'down'] as const;
const OPS = ['bind-eip', 'unbind-eip', 'add-ip', 'remove-ip', 'attach-eni', 'detach-eni', 'move-ip'] as const;

/** Options that belong to one action only; given with another, they are a mistake worth one line. */
const ONLY: Record<string, readonly (typeof ACTIONS)[number][]> = {
  'metadata-file': ['up'],
  target: ['up'],
  'server-b': ['up'],
  op: ['change'],
  ip: ['change'],
  eip: ['change'],
  direct: ['change'],
  nic: ['change'],
  guest: ['change'],
  mac: ['change'],
};

/** What each operation needs besides --op. */
const NEEDS: Record<(typeof OPS)[number], readonly string[]> = {
  'bind-eip': ['ip', 'eip'],
  'unbind-eip': ['ip'],
  'add-ip': ['ip'],
  'remove-ip': ['ip'],
  'attach-eni': ['ip'],
  'detach-eni': ['nic'],
  'move-ip': ['ip'],
};

function text(args: Args, name: string): string {
  const value = args[camel(name)];
  if (value === undefined) throw new ConfigError(`--op ${String(args.op)} needs --${name}`);
  return String(value);
}

/** The --op and its options as one change, every option it does not use refused. */
function changeOf(args: Args): SandboxChange {
  const op = args.op as (typeof OPS)[number] | undefined;
  if (op === undefined) throw new ConfigError(`sandbox change needs --op: one of ${OPS.join(', ')}`);
  const allowed = new Set([
    ...NEEDS[op],
    ...(op === 'bind-eip' ? ['direct'] : []),
    ...(op === 'add-ip' || op === 'detach-eni' || op === 'attach-eni' ? ['guest'] : []),
    ...(op === 'add-ip' ? ['nic'] : []),
    ...(op === 'attach-eni' ? ['mac'] : []),
  ]);
  const stray =
    ['ip', 'eip', 'nic', 'guest', 'mac'].find((name) => args[camel(name)] !== undefined && !allowed.has(name)) ??
    (args.direct === true && !allowed.has('direct') ? 'direct' : undefined);
  if (stray !== undefined) throw new ConfigError(`--${stray} is not an option of --op ${op}`);
  const guest = String(args.guest ?? 'a');
  switch (op) {
    case 'bind-eip':
      return { op, ip: text(args, 'ip'), eip: text(args, 'eip'), direct: args.direct === true };
    case 'unbind-eip':
    case 'remove-ip':
    case 'move-ip':
      return { op, ip: text(args, 'ip') };
    case 'add-ip':
      return { op, ip: text(args, 'ip'), guest, nic: String(args.nic ?? 'eth0') };
    case 'attach-eni':
      return { op, ip: text(args, 'ip'), guest, ...(args.mac === undefined ? {} : { mac: String(args.mac) }) };
    case 'detach-eni':
      return { op, guest, nic: text(args, 'nic') };
  }
}

/** `eip-agent sandbox up|run|change|status|down`: the emulated VPC on this machine, with the agent at work in it. */
export const sandboxCommand: CliCommand = {
  command: 'sandbox <action>',
  name: 'sandbox up|run|change|status|down',
  describe:
    'root: an emulated VPC on this machine (network namespaces: router, EIP NAT, metadata service, internet host, guests); up runs apply in the guest and pings every EIP; run starts the daemon; change makes a cloud-side change; status; down removes it all',
  options: {
    name: {
      type: 'string',
      default: 'demo',
      describe: 'the sandbox (namespaces eips-<name>-*, files in /run/eip-agent/sandbox/<name>)',
    },
    'metadata-file': {
      type: 'string',
      describe: 'up: the metadata tree (a `metadata dump` of a real VM)',
      defaultDescription: 'the built-in manual example',
    },
    target: {
      choices: SANDBOX_TARGETS,
      defaultDescription: 'centos',
      describe: 'up: which guest the agent configures (its files go under the guest root in the sandbox directory)',
    },
    'server-b': {
      type: 'boolean',
      default: false,
      describe: "up: also a second guest, b, in eth0's subnet (for --op move-ip)",
    },
    op: { choices: OPS, describe: 'change: what the cloud does' },
    ip: {
      type: 'string',
      describe:
        "change: the private IP (bind-eip, unbind-eip, add-ip, remove-ip, move-ip; attach-eni: the new ENI's primary IP)",
    },
    eip: { type: 'string', describe: 'change, bind-eip: the EIP' },
    direct: {
      type: 'boolean',
      default: false,
      describe: 'change, bind-eip: the EIP in direct mode (on the NIC) instead of NAT',
    },
    nic: {
      type: 'string',
      describe: 'change: the NIC (eth1 or its MAC) for add-ip and detach-eni',
      defaultDescription: 'eth0 for add-ip',
    },
    guest: {
      type: 'string',
      describe: 'change: the guest for add-ip, attach-eni, detach-eni',
      defaultDescription: 'a',
    },
    mac: { type: 'string', describe: "change, attach-eni: the new ENI's MAC", defaultDescription: '52:54:00:ee:00:NN' },
    json: COMMON_OPTIONS.json as NonNullable<(typeof COMMON_OPTIONS)['json']>,
  },
  positionals: { action: { choices: ACTIONS, describe: 'up, run, change, status or down' } },
  async run(host, io, args) {
    const action = args.action as (typeof ACTIONS)[number];
    for (const [option, actions] of Object.entries(ONLY)) {
      const value = args[camel(option)];
      if (value !== undefined && value !== false && !actions.includes(action)) {
        throw new ConfigError(`--${option} is for sandbox ${actions.join(', ')}, not sandbox ${action}`);
      }
    }
    const name = checkName(String(args.name));
    const json = args.json === true;
    try {
      switch (action) {
        case 'up': {
          if (args.metadataFile === '') throw new ConfigError('--metadata-file needs a path');
          const file = args.metadataFile as string | undefined;
          const target = (args.target ?? 'centos') as SandboxTarget;
          return await sandboxUp(host, io, {
            name,
            target,
            serverB: args.serverB === true,
            json,
            ...(file === undefined ? {} : { metadataFile: file }),
          });
        }
        case 'run':
          return await sandboxRun(host, io, name);
        case 'change':
          return await sandboxChange(host, io, name, changeOf(args), json);
        case 'status':
          return await sandboxStatus(host, io, name, json);
        case 'down':
          return await sandboxDown(host, io, name);
      }
    } catch (error) {
      throw asAgentError(error);
    }
  },
};
