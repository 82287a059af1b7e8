import { SETTINGS, type Setting, type SettingKey } from '../settings.js';
import type { CommandSpec, OptionSpec, OptionSpecs } from './args.js';
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

/**
 * A setting's command-line option, from its one description (settings.ts). No parsed default: the command line wins
 * over the environment and the config file, so the default is resolved after them (config/options.ts).
 */
export function settingOption(key: SettingKey, overrides: Partial<OptionSpec> = {}): OptionSpec {
  const setting: Setting = SETTINGS[key];
  const shown = setting.defaultDescription ?? (setting.default === undefined ? undefined : String(setting.default));
  return {
    ...(setting.kind === 'choice'
      ? { choices: setting.choices }
      : { type: setting.kind === 'integer' ? 'number' : 'string' }),
    describe: setting.describe,
    ...(shown !== undefined ? { defaultDescription: shown } : {}),
    ...overrides,
  };
}

/** The options shared by the commands that read metadata and touch the guest. */
export const COMMON_OPTIONS: OptionSpecs = {
  'metadata-url': settingOption('metadataUrl'),
  'metadata-file': { type: 'string', describe: 'read the metadata tree from a JSON file instead (offline preview)' },
  root: { type: 'string', default: '/', describe: 'prefix for every file path read or written' },
  target: settingOption('target'),
  routing: settingOption('routing'),
  'connection-marks': settingOption('connectionMarks'),
  'cloud-init': settingOption('cloudInit'),
  'windows-flavor': settingOption('windowsFlavor'),
  config: {
    type: 'string',
    describe: 'config file (env EIP_AGENT_CONFIG)',
    defaultDescription: '/etc/eip-agent/config.json if present',
  },
  json: { type: 'boolean', default: false, describe: 'print JSON instead of text' },
};
