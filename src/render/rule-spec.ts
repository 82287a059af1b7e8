// The agent's policy rules as `ip rule` spells them: one spelling for the batch lines, the rule files and the checks.

/** The main routing table's id (`lookup main`). */
export const MAIN_TABLE = 254;

/**
 * A policy rule of the agent's: `from <ip>/32 [to <cidr>] table <t> priority <p>`, or (from `all`) the rule that lets
 * main's routes win over the agent's tables except main's default: `from all table 254 suppress_prefixlength 0`.
 */
export interface RuleShape {
  /** An address (a /32), or `all`. */
  from: string;
  /** Destination prefix, e.g. 10.0.0.0/24. */
  to?: string;
  table: number;
  priority: number;
  /** Routes of the table with a prefix this long or shorter are skipped (0: only the default route). */
  suppressPrefixLength?: number;
}

/** A rule's source as `ip` spells it and `ip -j rule` reads back: `all`, or the address as a /32. */
export function ruleSource(rule: Pick<RuleShape, 'from'>): string {
  return rule.from === 'all' ? 'all' : `${rule.from}/32`;
}

/** A table as `ip` names it: `main` for 254, else its id. */
export function tableName(table: number): string {
  return table === MAIN_TABLE ? 'main' : String(table);
}

/** The `ip rule add|del` arguments of a rule, which are also the lines of a `rule-ethN` file. */
export function ruleSpec(rule: RuleShape): string {
  return [
    'from',
    ruleSource(rule),
    ...(rule.to !== undefined ? ['to', rule.to] : []),
    'table',
    String(rule.table),
    ...(rule.suppressPrefixLength !== undefined ? ['suppress_prefixlength', String(rule.suppressPrefixLength)] : []),
    'priority',
    String(rule.priority),
  ].join(' ');
}

