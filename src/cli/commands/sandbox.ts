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
} from '../../sandbox/sandbox.js';
import { camel, type ArgsOf, type OptionSpecs } from '../args.js';
import { COMMON_OPTIONS, defineCommand } from '../command.js';

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

/** An option the operation needs. */
function needed(op: (typeof OPS)[number], name: string, value: string | undefined): string {
  if (value === undefined) throw new ConfigError(`--op ${op} needs --${name}`);
  return value;
}

/** The --op and its options as one change, every option it does not use refused. */
function changeOf(args: ArgsOf<typeof SANDBOX_OPTIONS>): SandboxChange {
  const op = args.op;
  if (op === undefined) throw new ConfigError(`sandbox change needs --op: one of ${OPS.join(', ')}`);
  const allowed = new Set([
    ...NEEDS[op],
    ...(op === 'bind-eip' ? ['direct'] : []),
    ...(op === 'add-ip' || op === 'detach-eni' || op === 'attach-eni' ? ['guest'] : []),
    ...(op === 'add-ip' ? ['nic'] : []),
    ...(op === 'attach-eni' ? ['mac'] : []),
  ]);
  const given: Readonly<Record<string, unknown>> = args;
  const stray =
    ['ip', 'eip', 'nic', 'guest', 'mac'].find((name) => given[name] !== undefined && !allowed.has(name)) ??
    (args.direct && !allowed.has('direct') ? 'direct' : undefined);
  if (stray !== undefined) throw new ConfigError(`--${stray} is not an option of --op ${op}`);
  const guest = args.guest ?? 'a';
  const ip = () => needed(op, 'ip', args.ip);
  switch (op) {
    case 'bind-eip':
      return { op, ip: ip(), eip: needed(op, 'eip', args.eip), direct: args.direct };
    case 'unbind-eip':
    case 'remove-ip':
    case 'move-ip':
      return { op, ip: ip() };
    case 'add-ip':
      return { op, ip: ip(), guest, nic: args.nic ?? 'eth0' };
    case 'attach-eni':
      return { op, ip: ip(), guest, ...(args.mac === undefined ? {} : { mac: args.mac }) };
    case 'detach-eni':
      return { op, guest, nic: needed(op, 'nic', args.nic) };
  }
}

/** `eip-agent sandbox up|run|change|status|down`: the emulated VPC on this machine, with the agent at work in it. */
const SANDBOX_OPTIONS = {
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
  json: COMMON_OPTIONS.json,
} as const satisfies OptionSpecs;

/** `eip-agent sandbox up|run|change|status|down`: the emulated VPC on this machine, with the agent at work in it. */
export const sandboxCommand = defineCommand({
  command: 'sandbox <action>',
  name: 'sandbox up|run|change|status|down',
  describe:
    'root: an emulated VPC on this machine (network namespaces: router, EIP NAT, metadata service, ' +
    'internet host, guests); up runs apply in the guest and pings every EIP; run starts the daemon; ' +
    'change makes a cloud-side change; status; down removes it all',
  options: SANDBOX_OPTIONS,
  positionals: { action: { choices: ACTIONS, describe: 'up, run, change, status or down' } },
  async run(host, io, args) {
    const action = args.action;
    const given: Readonly<Record<string, unknown>> = args;
    for (const [option, actions] of Object.entries(ONLY)) {
      const value = given[camel(option)];
      if (value !== undefined && value !== false && !actions.includes(action)) {
        throw new ConfigError(`--${option} is for sandbox ${actions.join(', ')}, not sandbox ${action}`);
      }
    }
    const name = checkName(args.name);
    const json = args.json;
    try {
      switch (action) {
        case 'up': {
          if (args.metadataFile === '') throw new ConfigError('--metadata-file needs a path');
          const file = args.metadataFile;
          return await sandboxUp(host, io, {
            name,
            target: args.target ?? 'centos',
            serverB: args.serverB,
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
});
