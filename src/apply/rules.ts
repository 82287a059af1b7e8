// Whether a live policy rule is one the agent wants.
import type { LiveRule } from './linux-state.js';
import { MAIN_TABLE, type RuleShape } from '../render/rule-spec.js';

/** How `ip -j rule` names a table. */
function liveTable(table: number): string {
  return table === MAIN_TABLE ? 'main' : String(table);
}

/**
 * Whether a live rule is this rule. A `from` rule is the agent's at whatever priority (as it always was); the main
 * rule only at its own, since others add the same selector elsewhere (wg-quick at 32764, after the agent's tables).
 */
export function isLiveRule(live: LiveRule, rule: RuleShape): boolean {
  return (
    live.other !== true &&
    live.from === (rule.from === 'all' ? 'all' : `${rule.from}/32`) &&
    live.to === rule.to &&
    live.table === liveTable(rule.table) &&
    live.suppressPrefixLength === rule.suppressPrefixLength &&
    (rule.suppressPrefixLength === undefined || live.priority === rule.priority)
  );
}
