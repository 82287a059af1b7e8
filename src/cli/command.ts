import { CHOICES } from '../settings.js';
import type { CommandSpec, OptionSpecs } from './args.js';
import type { Host } from '../host/host.js';
import type { CommonArgs } from '../config/options.js';

/** Exit codes, the same for every command. */
export const EXIT = { ok: 0, error: 1, pending: 2, notVerified: 3, unknown: 4 } as const;

/** The exit code of a verification: 0 verified, 3 something is wrong, 4 nothing is known wrong but a check could not be made. */
export function verifyExit(report: { ok: boolean; checks: readonly { ok: boolean; unknown?: boolean }[] }): number {
  if (report.ok) return EXIT.ok;
  return report.checks.some((c) => !c.ok && c.unknown !== true) ? EXIT.notVerified : EXIT.unknown;
}

/** Where a command prints: results to out, warnings and errors to err. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** Arguments every command receives (its own options are added by its builder). */
export type Args = CommonArgs & { json: boolean } & Record<string, unknown>;

/** One CLI command: its options (see args.ts) and what it does; returns the exit code. */
export interface CliCommand extends CommandSpec {
  run(host: Host, io: Io, args: Args): Promise<number>;
}

/** Prints the plan's warnings, one line each. */
export function printWarnings(io: Io, warnings: readonly string[]): void {
  for (const w of warnings) io.err(`eip-agent: warning: ${w}\n`);
}

/** The options shared by the commands that read metadata and touch the guest. */
export const COMMON_OPTIONS: OptionSpecs = {
  'metadata-url': {
    type: 'string',
    describe: 'metadata base URL (env EIP_AGENT_METADATA_URL)',
    defaultDescription: 'http://169.254.0.23/latest/meta-data/',
  },
  'metadata-file': { type: 'string', describe: 'read the metadata tree from a JSON file instead (offline preview)' },
  root: { type: 'string', default: '/', describe: 'prefix for every file path read or written' },
  target: {
    choices: CHOICES.target,
    describe:
      'guest OS to configure: centos (ifcfg for the legacy network service), networkmanager (keyfile profiles), netplan (Ubuntu/Debian: netplan and systemd-networkd), windows; auto (Linux): centos where the legacy network service starts at boot, else networkmanager where NetworkManager runs, else netplan where netplan is configured',
    defaultDescription: 'the running OS',
  },
  routing: {
    choices: CHOICES.routing,
    describe: 'how secondary NICs route their replies',
    defaultDescription: 'policy',
  },
  'connection-marks': {
    choices: CHOICES.connectionMarks,
    describe:
      "Linux, policy mode: replies of forwarded or NATed connections (a container's published port) leave by the NIC their original destination is on (nftables table inet eip-agent; iptables' mangle table where there is no nft)",
    defaultDescription: 'on',
  },
  'cloud-init': {
    choices: CHOICES.cloudInit,
    describe:
      "Linux: disable (write /etc/cloud/cloud.cfg.d/99-eip-agent-network.cfg, owned like every file) or keep cloud-init's network configuration",
    defaultDescription: 'keep',
  },
  'windows-flavor': {
    choices: CHOICES.windowsFlavor,
    describe: 'Windows target: a PowerShell script (NetTCPIP cmdlets) or a netsh .cmd script',
    defaultDescription: 'powershell',
  },
  config: {
    type: 'string',
    describe: 'config file (env EIP_AGENT_CONFIG)',
    defaultDescription: '/etc/eip-agent/config.json if present',
  },
  json: { type: 'boolean', default: false, describe: 'print JSON instead of text' },
};
