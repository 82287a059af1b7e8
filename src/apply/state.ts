import { dirname } from 'node:path';
import { ApplyError } from '../errors.js';
import type { Host } from '../host/host.js';
import { underRoot } from './root.js';

/** Where the agent records what it owns; under --root like every other path. */
export const STATE_PATH = '/var/lib/eip-agent/state.json';

/** An address the agent added (not one DHCP or a user put there). */
export interface OwnedAddress {
  ifname: string;
  /** Lower-case MAC of the interface it was added to. */
  mac: string;
  cidr: string;
}

/** A policy rule the agent added. */
export interface OwnedRule {
  from: string;
  table: number;
  priority: number;
}

/** A route the agent added to one of its tables; `spec` is the `ip route` argument list without `proto`. */
export interface OwnedRoute {
  table: number;
  spec: string;
  dev: string;
}

/** Everything the agent added, so that it removes only that. */
export interface Owned {
  addresses: OwnedAddress[];
  rules: OwnedRule[];
  routes: OwnedRoute[];
  files: string[];
}

/** What one apply changed, enough to undo it later (`eip-agent rollback`). */
export interface Snapshot {
  at: string;
  /** Previous content of each file the apply wrote (null: it did not exist). */
  files: Record<string, string | null>;
  /** `ip -batch` lines that undo the apply's runtime changes, in the order to run them. */
  runtimeUndo: string[];
  /** Previous values of the sysctls the apply changed. */
  sysctls: Record<string, string>;
  /** What the agent owned before the apply. */
  ownedBefore: Owned;
}

/** Counters exported as metrics. */
export interface Counters {
  applies: number;
  verifyFailures: number;
  rollbacks: number;
  metadataErrors: number;
}

/** The agent's persistent state. */
export interface AgentState {
  version: 1;
  owned: Owned;
  /** Keys of owned items the last successful read no longer asked for: removed when the next read agrees. */
  absentOnce: string[];
  /** File contents before the agent first wrote each file (null: it did not exist). */
  originalFiles: Record<string, string | null>;
  /** Sysctl values before the agent first changed each key. */
  originalSysctls: Record<string, string>;
  /** Interface of the primary NIC at the last apply; its first address is never removed. */
  primaryIfname?: string;
  lastSnapshot?: Snapshot;
  lastApply?: { at: string; modelHash: string; ok: boolean };
  /** When an apply last ended verified (kept when a later one fails, for monitoring). */
  lastSuccessAt?: string;
  lastError?: { at: string; message: string };
  /** A model whose apply failed verification and was rolled back: not retried until the metadata changes. */
  failedModelHash?: string;
  counters: Counters;
}

/** A state for a guest the agent has never touched. */
export function emptyState(): AgentState {
  return {
    version: 1,
    owned: { addresses: [], rules: [], routes: [], files: [] },
    absentOnce: [],
    originalFiles: {},
    originalSysctls: {},
    counters: { applies: 0, verifyFailures: 0, rollbacks: 0, metadataErrors: 0 },
  };
}

/**
 * Where the state file is: under --root as every other path; on a Windows guest with the default
 * root, in the agent's directory under %ProgramData% (where the scheduled task keeps its files too).
 */
export function statePath(host: Host, root: string): string {
  if (host.platform === 'win32' && root === '/') return `${host.env.ProgramData ?? 'C:\\ProgramData'}\\eip-agent\\state.json`;
  return underRoot(root, STATE_PATH);
}

/** Reads the state file; a missing file is a fresh state, a corrupt one an error (never silently forgotten ownership). */
export async function loadState(host: Host, root: string): Promise<AgentState> {
  const path = statePath(host, root);
  const text = await host.fs.readText(path);
  if (text === null) return emptyState();
  try {
    const data = JSON.parse(text) as Partial<AgentState>;
    if (data.version !== 1 || typeof data.owned !== 'object') throw new Error('unknown format');
    const base = emptyState();
    return { ...base, ...data, owned: { ...base.owned, ...data.owned }, counters: { ...base.counters, ...data.counters } } as AgentState;
  } catch (error) {
    throw new ApplyError(`state file ${path} is unreadable (${(error as Error).message}): move it aside to start over; the agent will then own nothing it added before`);
  }
}

/** Puts the state file back as `state` was read: removed again when it did not exist (an empty state). */
export async function restoreState(host: Host, root: string, state: AgentState): Promise<void> {
  if (JSON.stringify(state) !== JSON.stringify(emptyState())) return saveState(host, root, state);
  const path = statePath(host, root);
  await host.fs.remove(path);
  await host.fs.removeEmptyDir(dirname(path));
}

/** Writes the state file atomically. */
export async function saveState(host: Host, root: string, state: AgentState): Promise<void> {
  await host.fs.writeAtomic(statePath(host, root), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}

/** Stable keys for owned items, used to track absence across reads. */
export const ownedKey = {
  address: (a: OwnedAddress) => `address ${a.cidr} ${a.mac}`,
  rule: (r: OwnedRule) => `rule ${r.from} ${r.table}`,
  route: (r: OwnedRoute) => `route ${r.spec}`,
  file: (path: string) => `file ${path}`,
};
