import { MANAGED_MARKER, ROUTE_PROTO } from '../render/centos/paths.js';
import type { LinuxDesiredState, RenderedFile } from '../render/types.js';
import type { LinuxLiveState } from './linux-state.js';
import type { MarksTool, OwnedAddress, OwnedMark, OwnedRoute, OwnedRule } from './state.js';
import { isOwnRulePriority } from './tables-in-use.js';
import { isLiveRule } from './rules.js';
import { ruleSource, ruleSpec } from '../render/rule-spec.js';
import type { FileMeta } from '../host/host.js';

/** A target's desired state: the files every target renders, and runtime state that only the same target reads back. */
export interface DesiredState {
  files: RenderedFile[];
  runtime: unknown;
}

/** A runtime item the agent owns, as a change adds or releases it. */
export type OwnedRef =
  | { kind: 'address'; item: OwnedAddress }
  | { kind: 'rule'; item: OwnedRule }
  | { kind: 'route'; item: OwnedRoute }
  /** The whole of the agent's nftables table: the entries it holds once the change is made. */
  | { kind: 'marks'; item: OwnedMark[] };

/** What exists at a rendered file's path today, and at its possible backup paths. */
export interface FileSnapshot {
  current: string | null;
  /** Mode and owner of the current file, kept for its backup and for putting it back. */
  meta?: FileMeta | null;
  /** Content of `<path>.bak`, if any. */
  bak: string | null;
  /** Whether `<path>.eip-agent.bak` exists. */
  agentBakExists: boolean;
}

/** One file the plan writes (or leaves alone because it already matches). */
export interface FileChange extends RenderedFile {
  /** `remove`: an owned file no longer needed (content is empty); restoring an original is an `update`. */
  action: 'create' | 'update' | 'unchanged' | 'remove';
  /** The content the plan replaces (null when the file does not exist). */
  previous: string | null;
  /** Whether the previous file was written by the agent (carries its marker). */
  previousOwned: boolean;
  /** Mode and owner of the previous file: its backup and its restoration keep them. */
  previousMeta?: FileMeta;
  /** Owner to give the written file (an original put back); absent: the agent's (root). */
  owner?: { uid: number; gid: number };
  /** Where the original is saved before it is first replaced, when it has not been already. */
  backupPath?: string;
}

/**
 * One runtime change; `batch` and `undo` are `ip -batch` lines, `sysctl` a key with its old and new values, `marks` the
 * scripts (`nft -f`, or `iptables-restore --noflush`) that replace the agent's connection marks and put them back.
 */
export interface RuntimeChange {
  kind: 'link' | 'address' | 'route' | 'rule' | 'sysctl' | 'marks';
  summary: string;
  batch?: string;
  undo?: string;
  sysctl?: { key: string; value: string; previous: string | null };
  marks?: { tool: MarksTool; script: string; undo: string };
  /** What the agent owns once this change is made (an item it added). */
  owns?: OwnedRef;
  /** What the agent no longer owns once this change is made (an item it removed). */
  releases?: OwnedRef;
}

/** How the plan changes what the agent owns, beyond the runtime changes themselves. */
export interface OwnershipPlan {
  /** Owned items that are already gone (their interface left): forgotten without a change. */
  forget: OwnedRef[];
  /** Owned file paths someone else has since replaced with their own file: no longer the agent's. */
  forgetFiles: string[];
  /** Keys of owned items this read no longer asks for; removed only if the next successful read agrees. */
  absentNow: string[];
  /** Human descriptions of those pending removals. */
  pending: string[];
  /** Interface of the primary NIC, whose first address no removal or rollback ever takes away. */
  primaryIfname?: string;
}

/** A complete, inspectable description of what apply would do: the dry run is printing it. */
export interface Plan {
  target: string;
  root: string;
  files: FileChange[];
  runtime: RuntimeChange[];
  warnings: string[];
  /** Whether runtime state was compared (false with --no-runtime). */
  runtimePlanned: boolean;
  desired: DesiredState;
  ownership: OwnershipPlan;
  /** What configures the guest's network at boot, in one line (targets that look). */
  bootStack?: string;
  /** Why apply must not run on this guest (what it writes would not be read at boot); plan shows it, apply refuses. */
  refusal?: string;
}

/** An ownership plan that changes nothing (targets without runtime ownership, previews). */
export function emptyOwnership(): OwnershipPlan {
  return { forget: [], forgetFiles: [], absentNow: [], pending: [] };
}

/** Whether the plan changes anything on disk or at runtime (false: in sync). */
export function planChanges(plan: Plan): boolean {
  return plan.runtime.length > 0 || plan.files.some((f) => f.action !== 'unchanged');
}

/** The `ip -batch` lines that undo changes, last change first. */
export function undoLines(changes: readonly RuntimeChange[]): string[] {
  return changes.flatMap((c) => (c.undo !== undefined ? [c.undo] : [])).reverse();
}

/** Whether nothing is left to do: no change now and no removal waiting for the next read (which is not "in sync"). */
export function planInSync(plan: Plan): boolean {
  return !planChanges(plan) && plan.ownership.pending.length === 0;
}

/** Whether a file was written by the agent. */
export function isManaged(content: string | null): boolean {
  // Windows scripts are saved with a UTF-8 BOM before the marker.
  return content !== null && content.replace(/^\uFEFF/, '').startsWith(MANAGED_MARKER);
}

/** Chooses where to keep the original of a file the agent did not write, so that it is saved exactly once. */
export function backupPathFor(path: string, snap: FileSnapshot): string | undefined {
  if (snap.current === null || isManaged(snap.current)) return undefined;
  // The manual's own step keeps ifcfg-eth0.bak; an identical .bak means the original is already safe.
  if (snap.agentBakExists) return undefined;
  if (snap.bak === null) return `${path}.bak`;
  if (snap.bak === snap.current) return undefined;
  return `${path}.eip-agent.bak`;
}

/** Compares rendered files with what is on disk. Pure. */
export function planFiles(files: readonly RenderedFile[], snapshots: ReadonlyMap<string, FileSnapshot>): FileChange[] {
  return files.map((file) => {
    const snap = snapshots.get(file.path) ?? { current: null, bak: null, agentBakExists: false };
    const action = snap.current === null ? 'create' : snap.current === file.content ? 'unchanged' : 'update';
    const backupPath = action === 'update' ? backupPathFor(file.path, snap) : undefined;
    return {
      ...file,
      action,
      previous: snap.current,
      previousOwned: isManaged(snap.current),
      ...(snap.meta != null && snap.current !== null ? { previousMeta: snap.meta } : {}),
      ...(backupPath !== undefined ? { backupPath } : {}),
    };
  });
}

/** `ip route` arguments for a route in a numbered table. */
export function routeSpec(table: number | string, dst: string, dev: string, gateway?: string, src?: string): string {
  return [dst, ...(gateway ? ['via', gateway] : []), 'dev', dev, ...(src ? ['src', src] : []), 'table', String(table)].join(' ');
}

/**
 * Says so when someone else's rule sits among the agent's (between its subnet rules and its last `from` rule): it
 * takes effect before some of them, so the agent's routing may not be what the guest gets.
 */
function warnForeignRules(runtime: LinuxDesiredState['runtime'], live: LinuxLiveState, warnings: string[]): void {
  if (runtime.rules.length === 0) return;
  const first = Math.min(...runtime.rules.map((r) => r.priority));
  const last = Math.max(...runtime.rules.map((r) => r.priority));
  // A rule into one of the agent's own tables is the agent's (an earlier model's, on its way out by the two-read rule).
  const own = new Set(runtime.rules.filter((r) => r.suppressPrefixLength === undefined).map((r) => String(r.table)));
  for (const rule of live.rules) {
    if (rule.priority <= first || rule.priority >= last || own.has(rule.table) || runtime.rules.some((r) => isLiveRule(rule, r))) continue;
    warnings.push(`rule ${rule.priority} (from ${rule.from}${rule.to !== undefined ? ` to ${rule.to}` : ''}${rule.fwmark !== undefined ? ` fwmark ${rule.fwmark}` : ''}${rule.other === true ? ' with other selectors' : ''} lookup ${rule.table}) is not the agent's and sits among its rules (${first}-${last}): it is consulted before some of them`);
  }
}

/**
 * Compares the desired runtime with the live state and lists what is missing, in the order it
 * must be applied: links up, addresses, table routes, rules (last, so no traffic is steered into
 * an unfinished table), then sysctls. Adds only; nothing is removed. Pure.
 */
export function planRuntime(desired: LinuxDesiredState, live: LinuxLiveState, warnings: string[]): RuntimeChange[] {
  const changes: RuntimeChange[] = [];
  const { runtime } = desired;
  const linkByName = new Map(live.links.map((l) => [l.ifname, l]));

  for (const want of runtime.links) {
    const link = linkByName.get(want.ifname);
    if (link === undefined) continue;
    if (!link.up) {
      changes.push({ kind: 'link', summary: `bring ${want.ifname} up`, batch: `link set dev ${want.ifname} up`, undo: `link set dev ${want.ifname} down` });
    }
  }

  for (const want of runtime.addresses) {
    if (!linkByName.has(want.ifname)) continue;
    const holders = live.links.filter((l) => l.addresses.some((a) => a.ip === want.ip));
    const here = holders.find((l) => l.ifname === want.ifname);
    if (here !== undefined) {
      const existing = here.addresses.find((a) => a.ip === want.ip);
      if (existing !== undefined && existing.prefixLength !== want.prefixLength) {
        warnings.push(`${want.ip} is on ${want.ifname} as /${existing.prefixLength}, metadata says /${want.prefixLength}; left as it is`);
      }
      continue;
    }
    for (const other of holders) warnings.push(`${want.ip} is also on ${other.ifname}, which the metadata does not assign it to`);
    const cidr = `${want.ip}/${want.prefixLength}`;
    if (want.lease === true) {
      warnings.push(`${cidr} is not on ${want.ifname}: it comes from the DHCP lease, which the guest's DHCP client puts back; the agent does not add it`);
      continue;
    }
    changes.push({
      kind: 'address',
      summary: `add ${cidr} to ${want.ifname}`,
      batch: `address add ${cidr} dev ${want.ifname}${want.noPrefixRoute === true ? ' noprefixroute' : ''}`,
      undo: `address del ${cidr} dev ${want.ifname}`,
      owns: { kind: 'address', item: { ifname: want.ifname, mac: linkByName.get(want.ifname)?.mac ?? '', cidr } },
    });
  }

  const main = runtime.mainDefault;
  const hasMainDefault = live.routes.some((r) => r.table === 'main' && r.dst === 'default');
  if (!hasMainDefault && main.dev !== '' && main.lease !== true && linkByName.has(main.dev)) {
    changes.push({
      kind: 'route',
      summary: `add default route via ${main.gateway} dev ${main.dev} (main table has none)`,
      batch: `route add default via ${main.gateway} dev ${main.dev}`,
      undo: `route del default via ${main.gateway} dev ${main.dev}`,
    });
  }

  for (const want of runtime.routes) {
    if (!linkByName.has(want.dev)) continue;
    const present = live.routes.some(
      (r) => r.table === String(want.table) && r.dst === want.dst && r.dev === want.dev && r.gateway === want.gateway && (want.src === undefined || r.prefsrc === want.src),
    );
    if (present) continue;
    const spec = routeSpec(want.table, want.dst, want.dev, want.gateway, want.src);
    const old = live.routes.find((r) => r.table === String(want.table) && r.dst === want.dst);
    // The table is the agent's own (never one in use by others), so replace is safe and idempotent;
    // undoing it puts back the route it replaced, if there was one.
    const undo = old?.dev !== undefined ? `route replace ${routeSpec(want.table, old.dst, old.dev, old.gateway, old.prefsrc)} proto ${old.protocol ?? ROUTE_PROTO}` : `route del ${spec}`;
    changes.push({ kind: 'route', summary: `route ${spec}`, batch: `route replace ${spec} proto ${ROUTE_PROTO}`, undo, owns: { kind: 'route', item: { table: want.table, spec, dev: want.dev } } });
  }

  for (const want of runtime.rules) {
    if (!linkByName.has(want.dev)) continue;
    if (live.rules.some((r) => isLiveRule(r, want))) continue;
    const from = ruleSource(want);
    const stale = want.to === undefined && want.from !== 'all' ? live.rules.find((r) => r.from === from && r.to === undefined && r.fwmark === undefined && r.other !== true && isOwnRulePriority(r.priority)) : undefined;
    if (stale !== undefined) warnings.push(`rule from ${from} points at table ${stale.table}, expected ${want.table}`);
    const spec = ruleSpec(want);
    const { dev: _dev, ...item } = want;
    changes.push({ kind: 'rule', summary: `rule ${spec}`, batch: `rule add ${spec}`, undo: `rule del ${spec}`, owns: { kind: 'rule', item } });
  }
  warnForeignRules(runtime, live, warnings);

  for (const want of runtime.sysctls) {
    if (!live.sysctls.has(want.key)) continue;
    const current = live.sysctls.get(want.key) ?? null;
    if (current === null) continue;
    if (current !== want.value) {
      changes.push({ kind: 'sysctl', summary: `sysctl ${want.key} ${current} -> ${want.value}`, sysctl: { key: want.key, value: want.value, previous: current } });
    }
  }
  return changes;
}
