import { ROUTE_PROTO, RULE_PRIORITY_BASE, SUBNET_RULE_PRIORITY_BASE } from './paths.js';
import type { LinuxLiveState } from './live-state.js';

const RESERVED = new Set(['local', 'main', 'default', 'unspec']);
const OWN_PRIORITY_SPAN = 1000;

/** Whether a rule's priority lies in the band the agent uses (29000-30999), which marks it as the agent's. */
export function isOwnRulePriority(priority: number): boolean {
  return priority >= SUBNET_RULE_PRIORITY_BASE && priority < RULE_PRIORITY_BASE + OWN_PRIORITY_SPAN;
}

/**
 * Routing table ids that belong to someone else: referenced by a rule outside the agent's
 * priority band, holding a route without the agent's protocol number, or named in rt_tables.
 */
export function foreignTables(live: LinuxLiveState | null, rtTables: readonly string[]): Set<number> {
  const taken = new Set<number>();
  const add = (table: string) => {
    if (RESERVED.has(table)) return;
    const id = Number(table);
    if (Number.isInteger(id)) taken.add(id);
  };
  for (const rule of live?.rules ?? []) if (!isOwnRulePriority(rule.priority)) add(rule.table);
  for (const route of live?.routes ?? []) if (route.protocol !== String(ROUTE_PROTO)) add(route.table);
  for (const text of rtTables) {
    for (const line of text.split('\n')) {
      const match = /^\s*(\d+)\s+\S+/.exec(line);
      if (match?.[1] !== undefined) taken.add(Number(match[1]));
    }
  }
  return taken;
}
