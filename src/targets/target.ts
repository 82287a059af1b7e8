import type { Plan, RuntimeChange } from '../plan/plan.js';
import type { CloudInitMode, ReloadMode, TargetName, WindowsFlavor } from '../settings.js';
import type { AgentState } from '../plan/record.js';
import type { Host } from '../host/host.js';
import type { NetworkStack } from './linux/boot-stack.js';
import type { InstanceModel } from '../model/types.js';
import type { RoutingMode } from '../render/types.js';
import type { VerifyReport } from '../plan/verify-report.js';
import type { StatusReport } from '../plan/status-report.js';
import type { RollbackResult } from '../plan/rollback-result.js';

/** The guest operating systems the agent can configure (see settings.ts). */
export type { TargetName } from '../settings.js';

/** What every target needs to know besides the model. */
export interface TargetOptions {
  /** Prefix for every file path read or written. */
  root: string;
  routing: RoutingMode;
  /** Linux, policy mode: mark connections to a secondary NIC's addresses so that their NATed replies leave by it (default true). */
  connectionMarks?: boolean;
  /** Linux: `disable` adds the drop-in that stops cloud-init from rewriting the network configuration. */
  cloudInit?: CloudInitMode;
  /** Whether the live runtime is compared and changed (false for --no-runtime and render). */
  runtime: boolean;
  /** Whether every metadata NIC must exist on the system (apply, verify); a preview names absent NICs offline. */
  requireNics: boolean;
  /** Name a NIC the system lacks as a fresh guest would, even on the live system (status shows it as not attached). */
  previewMissingNics?: boolean;
  /** What the agent owns (from its state file); absent: it owns nothing, so nothing is removed. */
  state?: AgentState;
  /** Windows target: what the script changes adapters with, NetTCPIP cmdlets (default) or netsh. */
  windowsFlavor?: WindowsFlavor;
  /** The boot stack as `auto` already read it for this plan (NetworkManager's running resolved), so it is read once. */
  knownStack?: NetworkStack;
  /** Linux: what runs after files were written (default none: the live state is changed in place). */
  reload?: ReloadMode;
  /** The metadata endpoint, for targets whose own script checks it after a change (Windows). */
  metadataUrl?: string;
}

/** What happened during apply, for reports. */
export interface ApplyOutcome {
  filesWritten: string[];
  runtimeApplied: string[];
  /** The verification the apply made itself (a Windows script verifies as part of its run); verify is then not asked. */
  report?: VerifyReport;
  /**
   * Undoes everything this apply changed (files and runtime). With keepRemovals, removals of owned runtime items that
   * two metadata reads agreed on stay done; returns the changes left done.
   */
  undo(options?: { keepRemovals?: boolean }): Promise<RuntimeChange[]>;
}

/** A NIC's kernel counters (Linux: /sys/class/net/<if>/statistics), as the decimal text the kernel prints. */
export interface NicCounters {
  rxBytes: string;
  txBytes: string;
  rxPackets: string;
  txPackets: string;
}

/** A NIC as the live system shows it, for the metrics: its name, its addresses and, where readable, its counters. */
export interface LiveNic {
  ifname: string;
  /** Lower-case. */
  mac: string;
  addresses: readonly { ip: string }[];
  counters?: NicCounters;
}

/** One guest OS: how to plan, apply and verify a model on it. Neutral code only talks to this. */
export interface Target {
  readonly name: TargetName;
  /** Reads what it needs from the host (read-only) and returns the plan; writes nothing. */
  plan(host: Host, model: InstanceModel, options: TargetOptions): Promise<Plan>;
  /** Carries out a plan; on failure undoes its own changes and throws. */
  apply(host: Host, plan: Plan, options: TargetOptions): Promise<ApplyOutcome>;
  /** Checks the live system against the plan's desired state. */
  verify(host: Host, plan: Plan): Promise<VerifyReport>;
  /** `status`: the model's addresses next to the live system and the agent's records; reads only. */
  status(
    host: Host,
    model: InstanceModel,
    plan: Plan,
    state: AgentState,
    options: TargetOptions,
  ): Promise<StatusReport>;
  /** The live NICs with these MACs (lower-case), for the metrics; reads only. */
  liveNics(host: Host, macs: readonly string[]): Promise<LiveNic[]>;
  /** Undoes the last apply, or with `original` everything since the first, from the agent's records under root. */
  rollback(host: Host, root: string, options: { original: boolean }): Promise<RollbackResult>;
  /**
   * Targets whose live state others may change under the agent (Linux): calls onDrift soon after a change that may
   * concern the plan's desired state. `update` follows a newer plan.
   */
  watch?(
    host: Host,
    plan: Plan,
    onDrift: (what: string) => void,
  ): { update(plan: Plan): void; stop(): void; readonly exited: Promise<void> };
}
