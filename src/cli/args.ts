// The command line: a declarative description of each command's options, one strict parser and the help text.
// Small on purpose: the agent's options are strings, booleans and numbers, some with choices, and every mistake
// must come back as one line that says what to do.
import { ConfigError, quoteShort } from '../errors.js';

/** One `--name` option; `choices` make it a string that must be one of them. */
export interface OptionSpec {
  type?: 'string' | 'boolean' | 'number';
  choices?: readonly string[];
  default?: string | boolean | number;
  /** What help shows as the default when it is not a fixed value (env, config file, the running OS). */
  defaultDescription?: string;
  describe?: string;
  required?: boolean;
}

/** A command's options by kebab-case name, in the order help lists them; a later spread entry replaces an earlier one. */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** A positional argument (`metadata <action>`): its choices and what help says about it. */
export interface PositionalSpec {
  choices: readonly string[];
  describe: string;
}

/** What the parser needs to know about a command. */
export interface CommandSpec {
  /** `plan`, or `metadata <action>`: the command word, then its positionals in angle brackets. */
  command: string;
  /** How messages name it when the command string has placeholders. */
  name?: string;
  describe: string;
  options: OptionSpecs;
  positionals?: Readonly<Record<string, PositionalSpec>>;
}

/** An option's kebab-case name as a type: `control-socket` -> `controlSocket` (see camel). */
type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;

/** The value the parser gives an option: one of its choices, a boolean, a number or a string. */
type OptionValue<S> = S extends { choices: readonly (infer C)[] }
  ? C
  : S extends { type: 'boolean' }
    ? boolean
    : S extends { type: 'number' }
      ? number
      : string;

/** The arguments a command with these options receives: present where there is a default or the option is required. */
export type ArgsOf<O> = {
  [K in keyof O & string as CamelCase<K>]: O[K] extends { default: string | number | boolean } | { required: true }
    ? OptionValue<O[K]>
    : OptionValue<O[K]> | undefined;
};

/** A command's positionals as the parser gives them: each one of its choices. */
export type PositionalsOf<P> = {
  [K in keyof P & string as CamelCase<K>]: P[K] extends { choices: readonly (infer C)[] } ? C : string;
};

/** The outcome of parsing: a command with its arguments, or help to print. */
export type Parsed<C extends CommandSpec> =
  { kind: 'run'; command: C; args: Record<string, unknown> } | { kind: 'help'; text: string };

const HELP = new Set(['--help', '-h']);

/** An option's name as the parsed arguments key it: `control-socket` -> `controlSocket`. */
export function camel(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function word(command: CommandSpec): string {
  return command.command.split(' ')[0] as string;
}

function positionalNames(command: CommandSpec): string[] {
  return [...command.command.matchAll(/<([a-z-]+)>/g)].map((m) => m[1] as string);
}

function typeOf(spec: OptionSpec): 'string' | 'boolean' | 'number' {
  return spec.type ?? 'string';
}

function parseValue(name: string, spec: OptionSpec, raw: string): string | boolean | number {
  const type = typeOf(spec);
  if (type === 'boolean') {
    if (raw === 'true' || raw === 'false') return raw === 'true';
    throw new ConfigError(
      `--${name}=${quoteShort(raw)}: a switch takes true or false (or give --${name} / --no-${name})`,
    );
  }
  if (type === 'number') {
    if (!/^-?\d+(?:\.\d+)?$/.test(raw)) throw new ConfigError(`--${name} ${quoteShort(raw)}: expected a number`);
    return Number(raw);
  }
  if (spec.choices !== undefined && !spec.choices.includes(raw)) {
    throw new ConfigError(`--${name} ${quoteShort(raw)}: expected one of ${spec.choices.join(', ')}`);
  }
  return raw;
}

/** Parses the words after the command word; throws ConfigError naming the option and what it expects. */
function parseArgs(command: CommandSpec, words: readonly string[], scriptName: string): Record<string, unknown> {
  const see = `see ${scriptName} ${word(command)} --help`;
  const given = new Map<string, string | boolean | number>();
  const positionals: string[] = [];
  const set = (name: string, value: string | boolean | number) => {
    if (given.has(name)) throw new ConfigError(`--${name} is given twice`);
    given.set(name, value);
  };
  for (let i = 0; i < words.length; i++) {
    const token = words[i] as string;
    if (token === '--') {
      positionals.push(...words.slice(i + 1));
      break;
    }
    if (!token.startsWith('--')) {
      if (token.startsWith('-') && token.length > 1)
        throw new ConfigError(`unknown option ${quoteShort(token)} (${see})`);
      positionals.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const name = token.slice(2, eq < 0 ? undefined : eq);
    const spec = command.options[name];
    if (spec === undefined) {
      const negated = name.startsWith('no-') ? command.options[name.slice(3)] : undefined;
      if (negated !== undefined && typeOf(negated) === 'boolean' && eq < 0) {
        set(name.slice(3), false);
        continue;
      }
      throw new ConfigError(`unknown option --${name} for ${command.name ?? word(command)} (${see})`);
    }
    if (eq >= 0) {
      set(name, parseValue(name, spec, token.slice(eq + 1)));
    } else if (typeOf(spec) === 'boolean') {
      set(name, true);
    } else {
      const value = words[i + 1];
      if (value === undefined || value.startsWith('--')) throw new ConfigError(`--${name} needs a value (${see})`);
      set(name, parseValue(name, spec, value));
      i += 1;
    }
  }

  const args: Record<string, unknown> = {};
  const names = positionalNames(command);
  if (positionals.length > names.length) {
    throw new ConfigError(
      `unexpected argument ${quoteShort(positionals[names.length] as string)} for ${command.name ?? word(command)} (${see})`,
    );
  }
  names.forEach((name, index) => {
    const value = positionals[index];
    const spec = command.positionals?.[name];
    if (value === undefined)
      throw new ConfigError(`${word(command)} needs <${name}>${spec ? `: ${spec.choices.join(' or ')}` : ''} (${see})`);
    if (spec !== undefined && !spec.choices.includes(value))
      throw new ConfigError(`${word(command)} <${name}> ${quoteShort(value)}: expected ${spec.choices.join(' or ')}`);
    args[camel(name)] = value;
  });
  for (const [name, spec] of Object.entries(command.options)) {
    const value = given.get(name) ?? spec.default;
    if (value === undefined) {
      if (spec.required === true)
        throw new ConfigError(
          `${command.name ?? word(command)} needs --${name}${spec.describe ? `: ${spec.describe}` : ''}`,
        );
      continue;
    }
    args[camel(name)] = value;
  }
  return args;
}

/**
 * Parses a whole command line against the commands: help when asked for (anywhere), otherwise the command and its
 * arguments (camelCase keys, defaults filled in). Throws ConfigError for anything it does not accept.
 */
export function parseCommandLine<C extends CommandSpec>(
  argv: readonly string[],
  commands: readonly C[],
  program: { scriptName: string; usage: string; columns: number },
): Parsed<C> {
  const first = argv[0];
  const names = commands.map((c) => c.name ?? word(c)).join(', ');
  if (first === undefined) throw new ConfigError(`name a command (see --help): ${names}`);
  if (HELP.has(first)) return { kind: 'help', text: programHelp(commands, program) };
  const command = commands.find((c) => word(c) === first);
  if (command === undefined) {
    const what = first.startsWith('-')
      ? `option ${quoteShort(first)} before the command`
      : `command ${quoteShort(first)}`;
    throw new ConfigError(`unknown ${what}: name a command (see --help): ${names}`);
  }
  const rest = argv.slice(1);
  const end = rest.indexOf('--');
  if ((end < 0 ? rest : rest.slice(0, end)).some((w) => HELP.has(w)))
    return { kind: 'help', text: commandHelp(command, program) };
  return { kind: 'run', command, args: parseArgs(command, rest, program.scriptName) };
}

/** `text` wrapped to `width` columns, every line after the first indented by `indent` spaces. */
function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const piece of text.split(/ +/)) {
    if (line !== '' && indent + line.length + 1 + piece.length > width) {
      lines.push(line);
      line = piece;
    } else line = line === '' ? piece : `${line} ${piece}`;
  }
  lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

/** Two columns: the names, then their text wrapped under itself. */
function table(rows: readonly [string, string][], width: number): string {
  const left = Math.max(...rows.map(([name]) => name.length)) + 4;
  return rows.map(([name, text]) => `  ${name.padEnd(left - 2)}${wrap(text, width, left)}`.trimEnd()).join('\n');
}

function optionText(spec: OptionSpec): string {
  const notes: string[] = [];
  if (spec.choices !== undefined) notes.push(`one of: ${spec.choices.join(', ')}`);
  const shown =
    spec.defaultDescription ??
    (spec.default === undefined || typeOf(spec) === 'boolean' ? undefined : String(spec.default));
  if (shown !== undefined) notes.push(`default: ${shown}`);
  if (spec.required === true) notes.push('required');
  const describe = spec.describe ?? '';
  return notes.length === 0 ? describe : `${describe}${describe === '' ? '' : ' '}[${notes.join('; ')}]`;
}

function optionName(name: string, spec: OptionSpec): string {
  const type = typeOf(spec);
  if (type === 'boolean') return spec.default === true ? `--[no-]${name}` : `--${name}`;
  if (spec.choices !== undefined) return `--${name} WORD`;
  if (type === 'number') return `--${name} N`;
  return `--${name} ${name.endsWith('url') ? 'URL' : /file|root|out|config|fixture|socket|node|bin|executable/.test(name) ? 'PATH' : 'VALUE'}`;
}

/** `eip-agent --help`: what the agent is, and its commands. */
export function programHelp(
  commands: readonly CommandSpec[],
  program: { scriptName: string; usage: string; columns: number },
): string {
  const width = Math.min(110, program.columns);
  const rows = commands.map((c): [string, string] => [`${program.scriptName} ${c.command}`, c.describe]);
  return `${program.usage}\n\nCommands:\n${table(rows, width)}\n\n${program.scriptName} <command> --help shows the options of a command.\n`;
}

/** `eip-agent <command> --help`: what it does, its positionals and options. */
export function commandHelp(command: CommandSpec, program: { scriptName: string; columns: number }): string {
  const width = Math.min(110, program.columns);
  const parts = [`${program.scriptName} ${command.command} [options]`, '', wrap(command.describe, width, 0)];
  const positionals = Object.entries(command.positionals ?? {});
  if (positionals.length > 0)
    parts.push(
      '',
      'Arguments:',
      table(
        positionals.map(([name, spec]) => [`<${name}>`, `${spec.describe} [one of: ${spec.choices.join(', ')}]`]),
        width,
      ),
    );
  const options = Object.entries(command.options).map(([name, spec]): [string, string] => [
    optionName(name, spec),
    optionText(spec),
  ]);
  parts.push('', 'Options:', table([...options, ['--help', 'show this help']], width));
  return `${parts.join('\n')}\n`;
}
