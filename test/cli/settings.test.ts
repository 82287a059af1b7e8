// The settings are written once (src/settings.ts): the command-line help, the config file's check and README's table
// all say what that table says.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/file.js';
import { SETTINGS, type Setting, type SettingKey } from '../../src/settings.js';
import { runCli } from '../helpers/cli.js';
import { createTestHost } from '../helpers/host.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** What a setting takes, as README's table says it. */
function values(setting: Setting): string {
  switch (setting.kind) {
    case 'choice':
      return setting.choices.map((c) => `\`${c}\``).join(', ');
    case 'integer':
      return `integer, ${setting.range[0]} to ${setting.range[1]}`;
    case 'url':
      return 'http:// URL';
    case 'macs':
      return 'list of MACs';
    case 'textfile':
      return 'absolute `*.prom` path';
  }
}

/** README's row for one setting. */
export function readmeRow(key: SettingKey): string {
  const setting: Setting = SETTINGS[key];
  const shown = setting.defaultDescription ?? (setting.default === undefined ? 'none' : String(setting.default));
  const option = setting.option === undefined ? 'config file only' : `\`--${setting.option}\``;
  return `| \`${key}\` | ${values(setting)} | ${shown} | ${option} | ${setting.describe.replace(/\|/g, '\\|')} |`;
}

describe('one table of settings', () => {
  it("README's settings table is the table in src/settings.ts, row for row", () => {
    const rows = (Object.keys(SETTINGS) as SettingKey[]).map(readmeRow);
    expect(README).toContain(
      ['| key | takes | default | option | meaning |', '| --- | --- | --- | --- | --- |', ...rows].join('\n'),
    );
  });

  it.each(Object.entries(SETTINGS).filter(([, s]) => s.kind === 'choice'))(
    "%s: the config file refuses a word outside the setting's choices, naming them",
    (key, setting) => {
      const choices = (setting as { choices: readonly string[] }).choices;
      expect(parseConfig('/c.json', { [key]: choices[0] })).toEqual({ [key]: choices[0] });
      expect(() => parseConfig('/c.json', { [key]: 'nope' })).toThrow(
        `/c.json: ${key}: "nope" is not one of ${choices.join(', ')}`,
      );
    },
  );

  it.each(Object.entries(SETTINGS).filter(([, s]) => s.kind === 'integer'))(
    '%s: the config file takes its bounds and refuses one past them',
    (key, setting) => {
      const [min, max] = (setting as { range: readonly [number, number] }).range;
      expect(parseConfig('/c.json', { [key]: min })).toEqual({ [key]: min });
      expect(parseConfig('/c.json', { [key]: max })).toEqual({ [key]: max });
      expect(() => parseConfig('/c.json', { [key]: max + 1 })).toThrow(`is not an integer from ${min} to ${max}`);
    },
  );

  it.each(
    Object.entries(SETTINGS).filter(([, s]) => 'option' in s && s.option !== undefined && s.option !== 'interval'),
  )("%s: apply's help shows its option with the setting's words, default and meaning", async (_key, setting) => {
    const s = setting as Setting;
    const { out } = await runCli(['apply', '--help'], createTestHost());
    const flat = out.replace(/\s+/g, ' ');
    expect(flat).toContain(`--${s.option}`);
    expect(flat).toContain(s.describe.replace(/\s+/g, ' '));
    if (s.kind === 'choice') expect(flat).toContain(`one of: ${s.choices.join(', ')}`);
    const shown = s.defaultDescription ?? (s.default === undefined ? undefined : String(s.default));
    if (shown !== undefined) expect(flat).toContain(`default: ${shown}`);
  });
});
