import { SETTINGS, type Setting, type SettingKey } from '../settings.js';
import type { ArgsOf, CommandSpec, OptionSpecs, PositionalSpec, PositionalsOf } from './args.js';
import type { Host } from '../host/host.js';

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

/** One CLI command as the command list holds it: its options (see args.ts) and what it does; returns the exit code. */
export interface CliCommand extends CommandSpec {
  run(host: Host, io: Io, args: Readonly<Record<string, unknown>>): Promise<number>;
}

/** A command as it is written: `run` receives its arguments typed from its own options and positionals. */
export interface CommandDefinition<O extends OptionSpecs, P extends Readonly<Record<string, PositionalSpec>>> {
  command: string;
  name?: string;
  describe: string;
  options: O;
  positionals?: P;
  run(host: Host, io: Io, args: ArgsOf<O> & PositionalsOf<P>): Promise<number>;
}

/**
 * A command whose `run` sees its arguments with the types its options give them; it is a CliCommand as it is (the
 * parser, args.ts, makes exactly those arguments from the same options: checked choices, numbers, booleans, defaults
 * and required options).
 */
export function defineCommand<
  const O extends OptionSpecs,
  const P extends Readonly<Record<string, PositionalSpec>> = Record<never, PositionalSpec>,
>(definition: CommandDefinition<O, P>): CommandDefinition<O, P> {
  return definition;
}

/** Prints the plan's warnings, one line each. */
export function printWarnings(io: Io, warnings: readonly string[]): void {
  for (const w of warnings) io.err(`eip-agent: warning: ${w}\n`);
}

/** A setting's option as its kind makes it: its choices, or a number, or a string. */
type SettingOption<K extends SettingKey> = {
  describe: string;
  defaultDescription?: string;
} & ((typeof SETTINGS)[K] extends {
  kind: 'choice';
  choices: infer C;
}
  ? { choices: C }
  : (typeof SETTINGS)[K] extends { kind: 'integer' }
    ? { type: 'number' }
    : { type: 'string' });

/**
 * A setting's command-line option, from its one description (settings.ts); `describe` replaces its meaning where the
 * option means it for one command only. No parsed default: the command line wins over the environment and the config
 * file, so the default is resolved after them (config/options.ts).
 */
export function settingOption<K extends SettingKey>(key: K, describe?: string): SettingOption<K> {
  const setting: Setting = SETTINGS[key];
  const shown = setting.defaultDescription ?? (setting.default === undefined ? undefined : String(setting.default));
  return {
    ...(setting.kind === 'choice'
      ? { choices: setting.choices }
      : { type: setting.kind === 'integer' ? 'number' : 'string' }),
    describe: describe ?? setting.describe,
    ...(shown !== undefined ? { defaultDescription: shown } : {}),
  } as unknown as SettingOption<K>;
}

/** The options shared by the commands that read metadata and touch the guest. */
export const COMMON_OPTIONS = {
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
} as const satisfies OptionSpecs;
