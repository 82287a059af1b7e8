import { TABLE_BASE } from './paths.js';

/** Step between candidates when a table id is taken by something that is not the agent's. */
const TABLE_STEP = 100;
const TABLE_MAX = 0x7fffffff;

/**
 * Picks one routing table id per secondary NIC index (1, 2, ...), deterministic for the same
 * inputs, never one of `taken` (ids used by routes, rules or rt_tables entries the agent does not own).
 */
export function allocateTables(nicIndexes: readonly number[], taken: ReadonlySet<number>): Map<number, number> {
  const result = new Map<number, number>();
  const used = new Set<number>();
  for (const index of nicIndexes) {
    let candidate = TABLE_BASE + index;
    while (taken.has(candidate) || used.has(candidate)) {
      candidate += TABLE_STEP;
      if (candidate > TABLE_MAX) throw new Error(`no free routing table id for NIC index ${index}`);
    }
    used.add(candidate);
    result.set(index, candidate);
  }
  return result;
}
