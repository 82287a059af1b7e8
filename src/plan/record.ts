import { dirname } from 'node:path';
import { ApplyError } from '../errors.js';
import { windowsAgentDir, type FileMeta, type Host } from '../host/host.js';
import { insideRoot, underRoot } from './root.js';

/** Where the agent records what it owns; under --root like every other path. */
export const STATE_PATH = '/var/lib/eip-agent/state.json';

/** An address the agent added (not one DHCP or a user put there). */
export interface OwnedAddress {
  ifname: string;
  /** Lower-case MAC of the interface it was added to. */
  mac: string;
  cidr: string;
}

/** A policy rule the agent added (see RuleShape: a `from` rule, a subnet rule with `to`, or the main rule). */
export interface OwnedRule {
  from: string;
  to?: string;
  table: number;
  priority: number;
  suppressPrefixLength?: number;
  fwmark?: string;
}

/** Which tool holds the agent's connection marks: nftables, or iptables where the guest has no `nft`. */
export type MarksTool = 'nft' | 'iptables';

/** A connection mark the agent keeps (nftables, or iptables): new connections to `ip` get `mark` (see marks.ts). */
export interface OwnedMark {
  ip: string;
  mark: number;
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
  /** The entries of the agent's connection marks (absent: it has none). */
  marks?: OwnedMark[];
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
  /** The script that puts the agent's connection marks back as they were before the apply, when the apply changed them. */
  marksUndo?: string;
  /** The tool that runs marksUndo (absent: nft). */
  marksTool?: 'iptables';
  /** Mode and owner of each previous file that existed. */
  meta?: Record<string, FileMeta>;
  /** What the agent owned before the apply. */
  ownedBefore: Owned;
  /** Keys this apply marked pending removal: the apply that confirms them joins this record (see stateAfterApply). */
  pending?: string[];
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
  /** Mode and owner of each original file that existed, to put it back as it was. */
  originalMeta?: Record<string, FileMeta>;
  /** Interface of the primary NIC at the last apply; its first address is never removed. */
  primaryIfname?: string;
  lastSnapshot?: Snapshot;
  lastApply?: { at: string; modelHash: string; ok: boolean };
  /** When an apply last ended verified (kept when a later one fails, for monitoring). */
  lastSuccessAt?: string;
  lastError?: { at: string; message: string };
  /** A model whose apply failed verification and was rolled back: retried after `retryAfter`, or when the metadata changes. */
  failedModelHash?: string;
  /** How many applies of failedModelHash in a row failed verification. */
  failedAttempts?: number;
  /** When failedModelHash may be tried again (ISO time); each failure in a row doubles the wait (see retryDelayMs). */
  retryAfter?: string;
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
  if (host.platform === 'win32' && root === '/') return `${windowsAgentDir(host)}\\state.json`;
  return underRoot(root, STATE_PATH);
}

/** A one-line value (no newline or NUL): state strings end up in `ip -batch` lines and messages. */
const LINE = (v: unknown): v is string => typeof v === 'string' && !/[\0\n\r]/.test(v);
const INT = (v: unknown): v is number => Number.isSafeInteger(v);
/** A dotted IPv4 address: a mark's address ends up in an nftables or iptables script. */
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const arrayOf = (v: unknown, item: (x: unknown) => boolean) => Array.isArray(v) && v.every(item);
const recordOf = (v: unknown, value: (x: unknown) => boolean) => isObject(v) && Object.values(v).every(value);
const isMeta = (v: unknown) => isObject(v) && INT(v.mode) && INT(v.uid) && INT(v.gid);

function isOwned(v: unknown): boolean {
  return (
    isObject(v) &&
    arrayOf(v.addresses, (a) => isObject(a) && LINE(a.ifname) && LINE(a.mac) && LINE(a.cidr)) &&
    arrayOf(
      v.rules,
      (r) =>
        isObject(r) &&
        LINE(r.from) &&
        (r.to === undefined || LINE(r.to)) &&
        INT(r.table) &&
        INT(r.priority) &&
        (r.suppressPrefixLength === undefined || INT(r.suppressPrefixLength)) &&
        (r.fwmark === undefined || LINE(r.fwmark)),
    ) &&
    arrayOf(v.routes, (r) => isObject(r) && INT(r.table) && LINE(r.spec) && LINE(r.dev)) &&
    arrayOf(v.files, LINE) &&
    (v.marks === undefined ||
      arrayOf(v.marks, (m) => isObject(m) && typeof m.ip === 'string' && IPV4.test(m.ip) && INT(m.mark) && m.mark > 0))
  );
}

/** The first field of a parsed state file that does not have its type, or undefined when all do. */
function badField(data: Record<string, unknown>): string | undefined {
  const checks: [string, boolean][] = [
    ['version', data.version === 1],
    ['owned', isOwned(data.owned)],
    ['absentOnce', data.absentOnce === undefined || arrayOf(data.absentOnce, LINE)],
    [
      'originalFiles',
      data.originalFiles === undefined || recordOf(data.originalFiles, (x) => x === null || typeof x === 'string'),
    ],
    ['originalSysctls', data.originalSysctls === undefined || recordOf(data.originalSysctls, LINE)],
    ['originalMeta', data.originalMeta === undefined || recordOf(data.originalMeta, isMeta)],
    ['primaryIfname', data.primaryIfname === undefined || LINE(data.primaryIfname)],
    ['failedModelHash', data.failedModelHash === undefined || LINE(data.failedModelHash)],
    ['failedAttempts', data.failedAttempts === undefined || INT(data.failedAttempts)],
    ['retryAfter', data.retryAfter === undefined || LINE(data.retryAfter)],
    ['counters', data.counters === undefined || recordOf(data.counters, INT)],
    [
      'lastApply',
      data.lastApply === undefined ||
        (isObject(data.lastApply) &&
          LINE(data.lastApply.at) &&
          LINE(data.lastApply.modelHash) &&
          typeof data.lastApply.ok === 'boolean'),
    ],
    ['lastSuccessAt', data.lastSuccessAt === undefined || LINE(data.lastSuccessAt)],
    [
      'lastError',
      data.lastError === undefined ||
        (isObject(data.lastError) && LINE(data.lastError.at) && typeof data.lastError.message === 'string'),
    ],
  ];
  const snap = data.lastSnapshot;
  checks.push([
    'lastSnapshot',
    snap === undefined ||
      (isObject(snap) &&
        LINE(snap.at) &&
        recordOf(snap.files, (x) => x === null || typeof x === 'string') &&
        arrayOf(snap.runtimeUndo, LINE) &&
        recordOf(snap.sysctls, LINE) &&
        (snap.marksUndo === undefined || typeof snap.marksUndo === 'string') &&
        (snap.marksTool === undefined || snap.marksTool === 'iptables') &&
        (snap.meta === undefined || recordOf(snap.meta, isMeta)) &&
        (snap.pending === undefined || arrayOf(snap.pending, LINE)) &&
        isOwned(snap.ownedBefore)),
  ]);
  return checks.find(([, ok]) => !ok)?.[0];
}

/** Reads the state file; a missing file is a fresh state, a corrupt one an error (never silently forgotten ownership). */
export async function loadState(host: Host, root: string): Promise<AgentState> {
  const path = await checkedStatePath(host, root);
  const text = await host.fs.readText(path);
  if (text === null) return emptyState();
  const unusable = (why: string) =>
    new ApplyError(
      `state file ${path} ${why}: nothing was changed; move it aside to start over (the agent will then own nothing it added before)`,
    );
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // Never the parser's message: it quotes the file's content.
    throw unusable('is not valid JSON');
  }
  if (!isObject(data)) throw unusable('is not a JSON object');
  const bad = badField(data);
  if (bad !== undefined) throw unusable(`has a wrong or missing "${bad}"`);
  const base = emptyState();
  const typed = data as unknown as Partial<AgentState>;
  return {
    ...base,
    ...typed,
    owned: { ...base.owned, ...typed.owned },
    counters: { ...base.counters, ...typed.counters },
  } as AgentState;
}

/** statePath, checked to stay inside --root. */
async function checkedStatePath(host: Host, root: string): Promise<string> {
  if (host.platform === 'win32' && root === '/') return statePath(host, root);
  return insideRoot(host, root, STATE_PATH);
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
  await host.fs.writeAtomic(await checkedStatePath(host, root), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}

/** Stable keys for owned items, used to track absence across reads. */
export const ownedKey = {
  address: (a: OwnedAddress) => `address ${a.cidr} ${a.mac}`,
  rule: (r: OwnedRule) =>
    `rule ${r.from} ${r.table}${r.to !== undefined ? ` to ${r.to}` : ''}` +
    `${r.suppressPrefixLength !== undefined ? ` suppress ${r.suppressPrefixLength}` : ''}${r.fwmark !== undefined ? ` fwmark ${r.fwmark}` : ''}`,
  mark: (m: OwnedMark) => `mark ${m.ip} 0x${m.mark.toString(16)}`,
  route: (r: OwnedRoute) => `route ${r.spec}`,
  file: (path: string) => `file ${path}`,
};
