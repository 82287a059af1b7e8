// Which metadata read a poll makes. Three kinds, from cheapest: the listings only (eth0's MAC, the NICs, each NIC's
// private IPs: a handful of requests), a refresh (the listings and every value that can change inside them again, the
// fixed values from the last complete read), and a complete read (every key the agent uses). Pure.

/**
 * Longest time between two reads of more than the listings while in sync. The listings show an attached or detached
 * ENI and an added, removed or moved private IP at once; a change inside an address (an EIP bound, unbound or put in
 * direct mode) is picked up by the next refresh or complete read.
 */
export const FULL_READ_MS = 60_000;

/**
 * Longest time between two complete metadata reads. The reads in between are refreshes: the listings, each NIC's
 * primary IP and every address's EIP and mode again, the rest (a NIC's VPC and subnet, an address's gateway and
 * mask, which do not change while the listings show the same NIC and address) from the last complete read: on the
 * 8 x 30 guest 266 requests instead of 765.
 */
export const COMPLETE_READ_MS = 10 * 60_000;

/** The last read of more than the listings: when it was, and when the last complete read was. */
export interface LastRead {
  at: number;
  completeAt: number;
}

/** What the schedule is decided from. */
export interface ScheduleInput {
  now: number;
  /** The last read, or undefined before the first and after a reload. */
  last: LastRead | undefined;
  /** Whether the model last read is applied, verified and has no removal waiting for a second read. */
  settled: boolean;
  /** Whether the live-state watch saw something: the metadata is read in full, whatever the listings say. */
  drifted: boolean;
}

/**
 * `listings`: read only them, and more only if they changed; `refresh`: read the values that can change, the rest from
 * the last complete read; `complete`: read everything.
 */
export type ReadKind = 'listings' | 'refresh' | 'complete';

/** The cheapest read that cannot miss what this poll must see. */
export function readKind({ now, last, settled, drifted }: ScheduleInput): ReadKind {
  if (last !== undefined && settled && !drifted && now - last.at < FULL_READ_MS) return 'listings';
  return afterListings({ now, last });
}

/** After the listings changed: the read that follows them in the same poll. */
export function afterListings({ now, last }: Pick<ScheduleInput, 'now' | 'last'>): Exclude<ReadKind, 'listings'> {
  return last === undefined || now - last.completeAt >= COMPLETE_READ_MS ? 'complete' : 'refresh';
}
