// Whether a live policy rule is one the agent wants.
import type { LiveRule } from './live-state.js';
import { tableName, type RuleShape } from './rule-spec.js';

// The planner and the verifier compare every live rule with every rule wanted (240 x 240 on a guest of 8 x 30): the
// two comparisons below build no string, where ruleSource and tableName would build one per comparison.

/** live.from === ruleSource({ from }). */
function sameSource(live: string, from: string): boolean {
  if (from === 'all') return live === 'all';
  return live.length === from.length + 3 && live.endsWith('/32') && live.startsWith(from);
}

/** live === tableName(table): a string is made only for a table that is equal as a number. */
function sameTable(live: string, table: number): boolean {
  return live === 'main' || Number(live) === table ? live === tableName(table) : false;
}

/**
 * Whether a live rule is this rule. A `from <ip>` rule is the agent's at whatever priority (as it always was); a rule
 * from `all` (the main rule, a mark rule) only at its own, since others add the same selectors elsewhere (wg-quick's
 * main rule at 32764, after the agent's tables).
 */
export function isLiveRule(live: LiveRule, rule: RuleShape): boolean {
  return (
    live.other !== true &&
    sameSource(live.from, rule.from) &&
    live.to === rule.to &&
    sameTable(live.table, rule.table) &&
    live.suppressPrefixLength === rule.suppressPrefixLength &&
    live.fwmark === rule.fwmark &&
    (rule.from !== 'all' || live.priority === rule.priority)
  );
}

/** What isLiveRule requires of a rule's `from` for a live rule's: `all`, or the address of a /32; else no rule's. */
function sourceOf(live: string): string | undefined {
  if (live === 'all') return 'all';
  return live.endsWith('/32') ? live.slice(0, -3) : undefined;
}

function bySource<T>(items: readonly T[], source: (item: T) => string | undefined): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = source(item);
    if (key === undefined) continue;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [item]);
    else group.push(item);
  }
  return groups;
}

/**
 * Whether a rule is live (isLiveRule with one of `live`), asked of many rules: each is compared only with the live
 * rules from its own source, not with all of them (250 x 250 comparisons on a guest of 8 x 30 cost the daemon's
 * once-a-minute check 8 ms of its 85).
 */
export function liveRuleFinder(live: readonly LiveRule[]): (rule: RuleShape) => boolean {
  const groups = bySource(live, (r) => sourceOf(r.from));
  return (rule) => groups.get(rule.from)?.some((r) => isLiveRule(r, rule)) ?? false;
}

/** The other way round: whether a live rule is one of `rules` (isLiveRule), by the same grouping. */
export function wantedRuleFinder(rules: readonly RuleShape[]): (live: LiveRule) => boolean {
  const groups = bySource(rules, (r) => r.from);
  return (live) => {
    const source = sourceOf(live.from);
    return source !== undefined && (groups.get(source)?.some((r) => isLiveRule(live, r)) ?? false);
  };
}
