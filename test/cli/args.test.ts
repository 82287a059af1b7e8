import { describe, expect, it } from 'vitest';
import { commandHelp, parseCommandLine, type CommandSpec } from '../../src/cli/args.js';
import { ConfigError } from '../../src/errors.js';

const PLAN: CommandSpec = {
  command: 'plan',
  describe: 'show what apply would change',
  options: {
    root: { type: 'string', default: '/', describe: 'prefix for every path' },
    routing: { choices: ['policy', 'rp-filter'], describe: 'how replies are routed', defaultDescription: 'policy' },
    runtime: { type: 'boolean', default: true, describe: 'compare the live state too' },
    json: { type: 'boolean', default: false },
    interval: { type: 'number', describe: 'seconds' },
    'metadata-url': { type: 'string' },
  },
};
const RENDER: CommandSpec = {
  command: 'render',
  describe: 'write the files',
  options: { out: { type: 'string', required: true, describe: 'output directory' } },
};
const SERVE: CommandSpec = {
  command: 'metadata <action>',
  name: 'metadata serve',
  describe: 'serve',
  options: {},
  positionals: { action: { choices: ['serve'], describe: 'serve: run it' } },
};
const COMMANDS = [PLAN, RENDER, SERVE];
const PROGRAM = { scriptName: 'eip-agent', usage: 'eip-agent <command> [options]', columns: 80 };

function parse(...argv: string[]): Record<string, unknown> {
  const parsed = parseCommandLine(argv, COMMANDS, PROGRAM);
  if (parsed.kind !== 'run') throw new Error('expected a command');
  return parsed.args;
}

function refusal(...argv: string[]): string {
  try {
    parseCommandLine(argv, COMMANDS, PROGRAM);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}

describe('parseCommandLine', () => {
  it('fills in defaults and gives camelCase keys', () => {
    expect(parse('plan')).toEqual({ root: '/', runtime: true, json: false });
    expect(parse('plan', '--metadata-url', 'http://x/', '--routing=rp-filter', '--interval', '2.5', '--json')).toEqual({
      root: '/',
      runtime: true,
      json: true,
      metadataUrl: 'http://x/',
      routing: 'rp-filter',
      interval: 2.5,
    });
  });

  it('negates switches with --no- and takes =true / =false', () => {
    expect(parse('plan', '--no-runtime').runtime).toBe(false);
    expect(parse('plan', '--runtime=false', '--json=true')).toMatchObject({ runtime: false, json: true });
  });

  it('keeps a value that starts with a single dash or is empty, and ends options at --', () => {
    expect(parse('plan', '--interval', '-1').interval).toBe(-1);
    expect(parse('plan', '--root', '').root).toBe('');
    expect(parse('metadata', '--', 'serve').action).toBe('serve');
  });

  it('refuses every mistake in one line that names the option and what it expects', () => {
    expect(refusal('plan', '--routing', 'loose')).toBe('--routing "loose": expected one of policy, rp-filter');
    expect(refusal('plan', '--interval', '5s')).toBe('--interval "5s": expected a number');
    expect(refusal('plan', '--json=yes')).toBe(
      '--json="yes": a switch takes true or false (or give --json / --no-json)',
    );
    expect(refusal('plan', '--root')).toBe('--root needs a value (see eip-agent plan --help)');
    expect(refusal('plan', '--root', '--json')).toBe('--root needs a value (see eip-agent plan --help)');
    expect(refusal('plan', '--root', '/a', '--root=/b')).toBe('--root is given twice');
    expect(refusal('plan', '--dry-run')).toBe('unknown option --dry-run for plan (see eip-agent plan --help)');
    expect(refusal('plan', '--no-root')).toBe('unknown option --no-root for plan (see eip-agent plan --help)');
    expect(refusal('plan', '-n')).toBe('unknown option "-n" (see eip-agent plan --help)');
    expect(refusal('plan', 'now')).toBe('unexpected argument "now" for plan (see eip-agent plan --help)');
    expect(refusal('render')).toBe('render needs --out: output directory');
    expect(refusal('metadata')).toBe('metadata needs <action>: serve (see eip-agent metadata --help)');
    expect(refusal('metadata', 'bogus')).toBe('metadata <action> "bogus": expected serve');
    expect(refusal('metadata', 'serve', 'twice')).toBe(
      'unexpected argument "twice" for metadata serve (see eip-agent metadata --help)',
    );
    expect(refusal('frobnicate')).toBe(
      'unknown command "frobnicate": name a command (see --help): plan, render, metadata serve',
    );
    expect(refusal('--json', 'plan')).toBe(
      'unknown option "--json" before the command: name a command (see --help): plan, render, metadata serve',
    );
    expect(refusal()).toBe('name a command (see --help): plan, render, metadata serve');
  });

  it('answers --help anywhere with the help of the command, or of the program before one', () => {
    expect(parseCommandLine(['--help'], COMMANDS, PROGRAM)).toMatchObject({
      kind: 'help',
      text: expect.stringContaining('eip-agent metadata <action>  serve'),
    });
    expect(parseCommandLine(['plan', '--routing', 'loose', '-h'], COMMANDS, PROGRAM)).toEqual({
      kind: 'help',
      text: commandHelp(PLAN, PROGRAM),
    });
    expect(parseCommandLine(['render', '--help'], COMMANDS, PROGRAM).kind).toBe('help');
    // After --, --help is an argument like any other.
    expect(refusal('plan', '--', '--help')).toBe('unexpected argument "--help" for plan (see eip-agent plan --help)');
  });
});

describe('commandHelp', () => {
  it('lists every option with its value, choices and default, wrapped to the terminal', () => {
    const text = commandHelp(PLAN, PROGRAM);
    expect(text).toBe(
      [
        'eip-agent plan [options]',
        '',
        'show what apply would change',
        '',
        'Options:',
        '  --root PATH         prefix for every path [default: /]',
        '  --routing WORD      how replies are routed [one of: policy, rp-filter;',
        '                      default: policy]',
        '  --[no-]runtime      compare the live state too',
        '  --json',
        '  --interval N        seconds',
        '  --metadata-url URL',
        '  --help              show this help',
        '',
      ].join('\n'),
    );
    expect(commandHelp(SERVE, PROGRAM)).toContain('Arguments:\n  <action>  serve: run it [one of: serve]\n');
    expect(commandHelp(RENDER, PROGRAM)).toContain('--out PATH  output directory [required]');
  });
});
