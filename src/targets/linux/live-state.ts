import type { Host } from '../../host/host.js';
import { ipJsonBatch } from '../../host/run-tool.js';

/** One link with its IPv4 addresses, from `ip -j address`. */
export interface LiveLink {
  ifname: string;
  mac: string;
  up: boolean;
  /** Link type from `ip -d` (vlan, bridge, veth...); absent for a physical NIC. */
  kind?: string;
  /** The bridge or bond this link is enslaved to. */
  master?: string;
  addresses: { ip: string; prefixLength: number }[];
}

/** Where `cidr` (ip/prefix) stands among the link's addresses in the kernel's order (a subnet's first is its primary); -1 when absent. */
export function addressIndex(link: LiveLink | undefined, cidr: string): number {
  return link?.addresses.findIndex((a) => `${a.ip}/${a.prefixLength}` === cidr) ?? -1;
}

/** One policy rule, from `ip -j rule`. */
export interface LiveRule {
  priority: number;
  /** Source prefix, e.g. 10.0.0.7/32; `all` when the rule has none. */
  from: string;
  /** Destination prefix, e.g. 10.0.0.0/24; absent when the rule has none. */
  to?: string;
  table: string;
  /** `suppress_prefixlength`, when the rule has one. */
  suppressPrefixLength?: number;
  /** `fwmark` with its mask as `ip rule` prints it (`0x1000000/0xf000000`), when the rule has one. */
  fwmark?: string;
  /** Other selectors (iif, oif, not...) make it a rule of another kind than the agent's. */
  other?: boolean;
}

/** One IPv4 route, from `ip -4 -j route show table all`. */
export interface LiveRoute {
  table: string;
  dst: string;
  dev?: string;
  gateway?: string;
  protocol?: string;
  prefsrc?: string;
  /** Absent means 0, the kernel's default. */
  metric?: number;
}

/** The live network state the Linux planner and verifier compare against. */
export interface LinuxLiveState {
  links: LiveLink[];
  rules: LiveRule[];
  routes: LiveRoute[];
  /** Values of the sysctls asked for; null when the key does not exist (e.g. interface absent). */
  sysctls: Map<string, string | null>;
}

interface IpAddressJson {
  ifname: string;
  address?: string;
  flags?: string[];
  master?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: { family: string; local: string; prefixlen: number }[];
}
interface IpRuleJson {
  priority: number;
  src?: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  table?: string;
  suppress_prefixlen?: number;
  fwmark?: string;
  fwmask?: string;
  iif?: string;
  oif?: string;
  not?: null | boolean;
  uidrange?: string;
  ipproto?: string;
  dport?: unknown;
  sport?: unknown;
  l3mdev?: unknown;
  tos?: string;
}
interface IpRouteJson {
  dst: string;
  dev?: string;
  gateway?: string;
  table?: string;
  protocol?: string;
  prefsrc?: string;
  metric?: number;
}

/** Path of a sysctl under /proc/sys (dots are separators; interface names here never contain dots). */
export function sysctlPath(key: string): string {
  return `/proc/sys/${key.replaceAll('.', '/')}`;
}

/** Reads the given sysctls; a key that does not exist (interface absent) reads as null. */
export async function readSysctls(host: Host, keys: readonly string[]): Promise<Map<string, string | null>> {
  const values = await Promise.all(keys.map(async (key) => (await host.fs.readText(sysctlPath(key)))?.trim() ?? null));
  return new Map(keys.map((key, i) => [key, values[i] ?? null]));
}

/** Selectors a rule of the agent's never has. */
const OTHER_SELECTORS = ['iif', 'oif', 'not', 'uidrange', 'ipproto', 'dport', 'sport', 'l3mdev', 'tos'] as const;

/** The three reads, in one `ip -batch` process: one JSON array per line of output. */
const READS = ['address show', 'rule show', 'route show table all'];

/** Reads links, addresses, rules and routes (one `ip -j -d -batch` process), then the given sysctls. Read-only. */
export async function readLinuxState(host: Host, sysctlKeys: readonly string[] = []): Promise<LinuxLiveState> {
  const [addresses, rules, allRoutes] = await ipJsonBatch<[IpAddressJson[], IpRuleJson[], IpRouteJson[]]>(
    host,
    ['-d'],
    READS,
  );
  // `route show table all` lists IPv6 routes too; rules default to IPv4.
  const routes = allRoutes.filter((r) => !r.dst.includes(':'));
  const sysctls = await readSysctls(host, sysctlKeys);
  return {
    links: addresses.map((l) => ({
      ifname: l.ifname,
      mac: (l.address ?? '').toLowerCase(),
      up: (l.flags ?? []).includes('UP'),
      ...(l.linkinfo?.info_kind !== undefined ? { kind: l.linkinfo.info_kind } : {}),
      ...(l.master !== undefined ? { master: l.master } : {}),
      addresses: (l.addr_info ?? [])
        .filter((a) => a.family === 'inet')
        .map((a) => ({ ip: a.local, prefixLength: a.prefixlen })),
    })),
    rules: rules.map((r) => ({
      priority: r.priority,
      from: r.src === undefined || r.src === 'all' ? 'all' : `${r.src}/${r.srclen ?? 32}`,
      ...(r.dst !== undefined && r.dst !== 'all' ? { to: `${r.dst}/${r.dstlen ?? 32}` } : {}),
      table: r.table ?? 'main',
      ...(r.suppress_prefixlen !== undefined ? { suppressPrefixLength: r.suppress_prefixlen } : {}),
      ...(r.fwmark !== undefined ? { fwmark: r.fwmask !== undefined ? `${r.fwmark}/${r.fwmask}` : r.fwmark } : {}),
      ...(OTHER_SELECTORS.some((k) => r[k] !== undefined) ? { other: true } : {}),
    })),
    routes: routes.map((r) => ({
      table: r.table ?? 'main',
      dst: r.dst,
      ...(r.dev !== undefined ? { dev: r.dev } : {}),
      ...(r.gateway !== undefined ? { gateway: r.gateway } : {}),
      ...(r.protocol !== undefined ? { protocol: r.protocol } : {}),
      ...(r.prefsrc !== undefined ? { prefsrc: r.prefsrc } : {}),
      ...(r.metric !== undefined ? { metric: r.metric } : {}),
    })),
    sysctls,
  };
}
