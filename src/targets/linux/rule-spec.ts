// The agent's policy rules as `ip rule` spells them: one spelling for the batch lines, the rule files and the checks.

/** The main routing table's id (`lookup main`). */
export const MAIN_TABLE = 254;

/**
 * A policy rule of the agent's: `from <ip>/32 [to <cidr>] table <t> priority <p>`; from `all`, the rule that lets
 * main's routes win over the agent's tables except main's default (`from all table 254 suppress_prefixlength 0`), or
 * a rule for the replies of a secondary NIC's connections (`from all [to <cidr>] fwmark <mark>/<mask> table <t>`).
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
  /** A packet mark with its mask, as `ip rule` prints it (`0x1000000/0xf000000`): see connection marks (marks.ts). */
  fwmark?: string;
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
    ...(rule.fwmark !== undefined ? ['fwmark', rule.fwmark] : []),
    'table',
    String(rule.table),
    ...(rule.suppressPrefixLength !== undefined ? ['suppress_prefixlength', String(rule.suppressPrefixLength)] : []),
    'priority',
    String(rule.priority),
  ].join(' ');
}

/**
 * The bits of the packet and connection mark the agent uses: 0x0f000000, one value per secondary NIC index (1-15,
 * `index << 24`). Clear of the bits Docker, kube-proxy (0x4000, 0x8000), Calico's defaults (0x10000-0x80000), Cilium's
 * magic (0x0f00), the AWS VPC CNI (0x80), Weave, Tailscale (0xff0000) and wg-quick (0xca6c) use; every rule the agent
 * writes keeps the other bits as they are.
 */
export const MARK_MASK = 0x0f000000;
const MARK_SHIFT = 24;
/** The highest NIC index that has a mark value. */
export const MAX_MARKED_INDEX = MARK_MASK >>> MARK_SHIFT;

/** The mark of a secondary NIC, or undefined when its index has none (beyond MAX_MARKED_INDEX). */
export function markOf(nicIndex: number): number | undefined {
  return nicIndex >= 1 && nicIndex <= MAX_MARKED_INDEX ? nicIndex << MARK_SHIFT : undefined;
}

/** A mark with the agent's mask, as `ip rule` spells and prints it (`0x1000000/0xf000000`). */
export function fwmarkSelector(mark: number): string {
  return `0x${mark.toString(16)}/0x${MARK_MASK.toString(16)}`;
}
