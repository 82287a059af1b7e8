import { describe, expect, it } from 'vitest';
import type { LiveRule } from '../../src/targets/linux/live-state.js';
import { isLiveRule, liveRuleFinder, wantedRuleFinder } from '../../src/targets/linux/rules.js';
import type { RuleShape } from '../../src/targets/linux/rule-spec.js';

const RULE: RuleShape = { from: '10.0.0.1', table: 100, priority: 30100 };
const LIVE: LiveRule = { priority: 30100, from: '10.0.0.1/32', table: '100' };

describe('isLiveRule', () => {
  it('matches the rule `ip -j rule` reads back, at whatever priority for a rule from an address', () => {
    expect(isLiveRule(LIVE, RULE)).toBe(true);
    expect(isLiveRule({ ...LIVE, priority: 5 }, RULE)).toBe(true);
  });

  it('tells apart sources that share a prefix, and a source of another length', () => {
    expect(isLiveRule({ ...LIVE, from: '10.0.0.10/32' }, RULE)).toBe(false);
    expect(isLiveRule({ ...LIVE, from: '10.0.0.1/24' }, RULE)).toBe(false);
    expect(isLiveRule({ ...LIVE, from: '110.0.0.1/32' }, RULE)).toBe(false);
    expect(isLiveRule({ ...LIVE, from: 'all' }, RULE)).toBe(false);
    expect(isLiveRule(LIVE, { ...RULE, from: '10.0.0.1/3' })).toBe(false);
  });

  it('compares tables as `ip` names them: main for 254, the id for others, never another spelling of the number', () => {
    const main: RuleShape = { from: 'all', table: 254, priority: 32000, suppressPrefixLength: 0 };
    const liveMain: LiveRule = { priority: 32000, from: 'all', table: 'main', suppressPrefixLength: 0 };
    expect(isLiveRule(liveMain, main)).toBe(true);
    expect(isLiveRule({ ...liveMain, table: '254' }, main)).toBe(false);
    expect(isLiveRule({ ...LIVE, table: 'main' }, RULE)).toBe(false);
    expect(isLiveRule({ ...LIVE, table: '0100' }, RULE)).toBe(false);
    expect(isLiveRule({ ...LIVE, table: '101' }, RULE)).toBe(false);
    expect(isLiveRule({ ...LIVE, table: 'local' }, { ...RULE, table: 255 })).toBe(false);
  });

  it('holds a rule from all to its own priority, and never takes a rule with other selectors', () => {
    const main: RuleShape = { from: 'all', table: 254, priority: 32000, suppressPrefixLength: 0 };
    const liveMain: LiveRule = { priority: 32000, from: 'all', table: 'main', suppressPrefixLength: 0 };
    expect(isLiveRule({ ...liveMain, priority: 32764 }, main)).toBe(false);
    expect(isLiveRule({ ...LIVE, other: true }, RULE)).toBe(false);
  });
});

describe('liveRuleFinder and wantedRuleFinder', () => {
  // Every source spelling the comparisons tell apart, crossed with tables, priorities, marks and other selectors.
  const sources = ['10.0.0.1', '10.0.0.10', '110.0.0.1', 'all'];
  const liveSources = ['10.0.0.1/32', '10.0.0.10/32', '110.0.0.1/32', '10.0.0.1/24', 'all', 'all/32', '10.0.0.1'];
  const rules: RuleShape[] = sources.flatMap((from) =>
    [100, 254].flatMap((table) =>
      [30100, 32000].flatMap((priority) => [
        { from, table, priority },
        { from, table, priority, to: '10.0.1.0/24' },
        { from, table, priority, suppressPrefixLength: 0 },
        { from, table, priority, fwmark: '0x1000000/0xf000000' },
      ]),
    ),
  );
  const live: LiveRule[] = liveSources.flatMap((from) =>
    ['100', 'main', '254'].flatMap((table) =>
      [30100, 32000].flatMap((priority) => [
        { from, table, priority },
        { from, table, priority, to: '10.0.1.0/24' },
        { from, table, priority, suppressPrefixLength: 0 },
        { from, table, priority, fwmark: '0x1000000/0xf000000' },
        { from, table, priority, other: true },
      ]),
    ),
  );

  it('answers as isLiveRule against every rule of the other side, for each rule and each live rule', () => {
    expect(rules.filter((r) => live.some((l) => isLiveRule(l, r))).length).toBeGreaterThan(10);
    for (const subset of [live, live.slice(0, 40), []]) {
      const isLive = liveRuleFinder(subset);
      for (const rule of rules) expect(isLive(rule)).toBe(subset.some((l) => isLiveRule(l, rule)));
    }
    for (const subset of [rules, rules.slice(0, 20), []]) {
      const wanted = wantedRuleFinder(subset);
      for (const l of live) expect(wanted(l)).toBe(subset.some((r) => isLiveRule(l, r)));
    }
  });
});
