// What `eip-agent status` shows: per address, where it is, whether the agent owns it and whether the live system
// matches, and the agent's own records. Each target computes it from its live state (Target.status).
import type { AgentState } from './record.js';

/** One private address of the metadata (with its EIP, if any) as the live system has it. */
export interface AddressStatus {
  /** Interface name on this system; null when the NIC is not attached. */
  interface: string | null;
  mac: string;
  /** CIDR, e.g. 10.0.0.8/24. */
  address: string;
  eip: string | null;
  mode: 'NAT' | 'direct' | null;
  /** Whether the agent added the address (a primary address from DHCP, or one a person added, is not the agent's). */
  owned: boolean;
  inSync: boolean;
  /** What differs, e.g. `not on eth1`; empty when in sync. */
  drift: string[];
}

/** Everything `status` shows. */
export interface StatusReport {
  root: string;
  target: string;
  routing: string;
  /** True when the plan is empty and every address is in sync. */
  inSync: boolean;
  addresses: AddressStatus[];
  /** Rendered files that differ from disk, with what apply would do. */
  files: { path: string; action: string }[];
  /** Runtime changes apply would make. */
  runtime: string[];
  pendingRemovals: string[];
  /** What configures the network at boot, and why apply would refuse (when it would). */
  bootStack?: string;
  refusal?: string;
  lastApply: NonNullable<AgentState['lastApply']> | null;
  lastError: NonNullable<AgentState['lastError']> | null;
  failedModelHash: string | null;
  /** When the failed model is tried again, and how many times in a row it failed. */
  retryAfter: string | null;
  failedAttempts: number | null;
  counters: AgentState['counters'];
}
