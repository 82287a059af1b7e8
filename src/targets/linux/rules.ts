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
