/** How secondary NICs get their replies out: per-NIC policy routing, or the manual's rp_filter=0. */
export type { RoutingMode } from '../settings.js';

/** A file the target wants on disk: absolute path as seen from the guest's root, mode, full content. */
export interface RenderedFile {
  path: string;
  mode: number;
  content: string;
}

/** An address that must be on an interface. */
export interface DesiredAddress {
  ifname: string;
  ip: string;
  prefixLength: number;
  /** Added without the kernel's prefix route in main: the NIC's prefix route lives in its own table (as NetworkManager's route-table= puts it). */
  noPrefixRoute?: boolean;
  /**
   * The guest's DHCP client holds it (the primary address of a NIC whose lease gives it): verified, never added by the
   * agent, which would turn the lease into a permanent address the DHCP client then fails to configure.
   */
  lease?: boolean;
}

/**
 * A policy rule: `from <ip>/32 [to <subnet>] table <table> priority <priority>` for a secondary NIC's address, or the
 * one `from all table 254 suppress_prefixlength 0` that lets main's more specific routes win (see RuleShape).
 */
export interface DesiredRule {
  /** The interface whose addresses the rule covers (the primary NIC for the main rule). */
  dev: string;
  /** An address, or `all`. */
  from: string;
  to?: string;
  table: number;
  priority: number;
  suppressPrefixLength?: number;
  /** A packet mark with the agent's mask (see RuleShape): the replies of the NIC's connections. */
  fwmark?: string;
}

/** A connection mark: new connections to `ip` (a secondary NIC's address on `dev`) get `mark`, and so do their replies. */
export interface DesiredMark {
  dev: string;
  ip: string;
  mark: number;
}

/** A route in one of the agent's tables; `dst` is `default` or a CIDR. */
export interface DesiredRoute {
  table: number;
  dst: string;
  dev: string;
  gateway?: string;
  src?: string;
}

/** A sysctl the agent sets, e.g. `net.ipv4.conf.eth1.rp_filter` = `2`. */
export interface DesiredSysctl {
  key: string;
  value: string;
}

/** The effective rp_filter (max of `all` and the interface's) that verification expects on an interface. */
export interface RpFilterExpectation {
  ifname: string;
  effective: number;
}

/** A reachability check: ping `target` from `source`, which must leave through `ifname`. */
export interface PingCheck {
  ifname: string;
  source: string;
  target: string;
}

/** What the Linux runtime must look like once the plan is applied. */
export interface LinuxDesiredRuntime {
  /** Interfaces to manage, with the MAC they must carry. */
  links: { ifname: string; mac: string }[];
  addresses: DesiredAddress[];
  rules: DesiredRule[];
  routes: DesiredRoute[];
  /**
   * Added to the main table only when it has no default route at all (DHCP normally left one); never where the primary
   * NIC's DHCP lease gives it (`lease`): that one is the DHCP client's to put back.
   */
  mainDefault: { gateway: string; dev: string; lease?: boolean };
  sysctls: DesiredSysctl[];
  /** Connection marks of the policy-routed NICs (empty when connection marks are off). */
  marks: DesiredMark[];
  /** Policy-routed NICs that get no mark (an index past the mask's values), for a warning. */
  unmarked: string[];
  rpFilter: RpFilterExpectation[];
  pings: PingCheck[];
}

/** Everything a target renders from the model: files plus the runtime state they describe. */
export interface LinuxDesiredState {
  files: RenderedFile[];
  runtime: LinuxDesiredRuntime;
  /** What the guest's own configuration does that works against the agent's (for plan). */
  warnings?: string[];
}
