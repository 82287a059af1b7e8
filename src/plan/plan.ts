import type { RenderedFile } from '../render/types.js';
import type { MarksTool, OwnedAddress, OwnedMark, OwnedRoute, OwnedRule } from './record.js';
import type { FileMeta } from '../host/host.js';

/** A target's desired state: the files every target renders, and runtime state that only the same target reads back. */
/** First line of every file the agent writes; a file without it is not the agent's. */
export const MANAGED_MARKER = '# Managed by eip-agent';

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
