// Whether a live policy rule is one the agent wants.
import type { LiveRule } from './live-state.js';
import { ruleSource, tableName, type RuleShape } from './rule-spec.js';

/**
 * Whether a live rule is this rule. A `from <ip>` rule is the agent's at whatever priority (as it always was); a rule
 * from `all` (the main rule, a mark rule) only at its own, since others add the same selectors elsewhere (wg-quick's
 * main rule at 32764, after the agent's tables).
 */
export function isLiveRule(live: LiveRule, rule: RuleShape): boolean {
  return (
    live.other !== true &&
    live.from === ruleSource(rule) &&
    live.to === rule.to &&
    live.table === tableName(rule.table) &&
    live.suppressPrefixLength === rule.suppressPrefixLength &&
    live.fwmark === rule.fwmark &&
    (rule.from !== 'all' || live.priority === rule.priority)
  );
}
