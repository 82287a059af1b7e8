import type { Argv } from 'yargs';
import type { Host } from '../host/host.js';
import type { CommonArgs } from './options.js';

/** Exit codes, the same for every command. */
export const EXIT = { ok: 0, error: 1, pending: 2, notVerified: 3 } as const;

/** Where a command prints: results to out, warnings and errors to err. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** Arguments every command receives (its own options are added by its builder). */
export type Args = CommonArgs & { json: boolean } & Record<string, unknown>;

/** One CLI command: its yargs definition and what it does; returns the exit code. */
export interface CliCommand {
  /** yargs command string, e.g. `plan` or `metadata <action>`. */
  command: string;
  /** How messages name it when the command string has placeholders. */
  name?: string;
  describe: string;
  builder(y: Argv): Argv;
  run(host: Host, io: Io, args: Args): Promise<number>;
}

/** Prints the plan's warnings, one line each. */
export function printWarnings(io: Io, warnings: readonly string[]): void {
  for (const w of warnings) io.err(`eip-agent: warning: ${w}\n`);
}

/** The options shared by the commands that read metadata and touch the guest. */
export function commonOptions(y: Argv): Argv {
  return y
    .option('metadata-url', { type: 'string', describe: 'metadata base URL (env EIP_AGENT_METADATA_URL)', defaultDescription: 'http://169.254.0.23/latest/meta-data/' })
    .option('metadata-file', { type: 'string', describe: 'read the metadata tree from a JSON file instead (offline preview)' })
    .option('root', { type: 'string', default: '/', describe: 'prefix for every file path read or written' })
    .option('target', { choices: ['auto', 'centos', 'networkmanager', 'windows'], describe: 'guest OS to configure: centos (ifcfg for the legacy network service), networkmanager (keyfile profiles), windows; auto (Linux): centos where the legacy network service starts at boot, else networkmanager where NetworkManager runs', defaultDescription: 'the running OS' })
    .option('routing', { choices: ['policy', 'rp-filter'], describe: 'how secondary NICs route their replies', defaultDescription: 'policy' })
    .option('cloud-init', { choices: ['keep', 'disable'], describe: 'Linux: disable (write /etc/cloud/cloud.cfg.d/99-eip-agent-network.cfg, owned like every file) or keep cloud-init\'s network configuration', defaultDescription: 'keep' })
    .option('windows-flavor', { choices: ['powershell', 'netsh'], describe: 'Windows target: a PowerShell script (NetTCPIP cmdlets) or a netsh .cmd script', defaultDescription: 'powershell' })
    .option('config', { type: 'string', describe: 'config file (env EIP_AGENT_CONFIG)', defaultDescription: '/etc/eip-agent/config.json if present' })
    .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of text' });
}
