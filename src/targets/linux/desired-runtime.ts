// What every Linux target wants live, whichever files it writes for the boot: addresses, policy rules and routes,
// rp_filter and promote_secondaries, the checks. Pure.
import type { InstanceModel, NicModel } from '../../model/types.js';
import { RULE_PRIORITY_BASE, SUBNET_RULE_PRIORITY_BASE, SYSCTL_DROPIN } from './paths.js';
import { fwmarkSelector, MAIN_TABLE, markOf } from './rule-spec.js';
import { compileTemplate } from '../../render/handlebars.js';
import type { DesiredRule, DesiredSysctl, LinuxDesiredRuntime, RenderedFile, RoutingMode } from '../../render/types.js';
import sysctlSource from '../../../templates/centos/sysctl.hbs';

/** Inputs of a Linux renderer besides the model. */
export interface LinuxRenderOptions {
  routing: RoutingMode;
  /** Interface name per lower-case MAC. */
  names: ReadonlyMap<string, string>;
  /** Routing table id per secondary NIC index (policy mode). */
  tables: ReadonlyMap<number, number>;
  /** Policy mode: mark the connections to a secondary NIC's addresses, so that their replies leave by it (default on). */
  connectionMarks?: boolean;
}

/** One address a NIC carries. */
export interface HostAddress {
  ip: string;
  prefixLength: number;
  netmask: string;
}

/** Per NIC, what its boot files describe: its device, its addresses, and (policy mode, secondary NIC) its table and rules. */
export interface NicLayout {
  nic: NicModel;
  device: string;
  addresses: HostAddress[];
  /**
   * Secondary NIC in policy mode: its table, the priority of its `from` rules and of its subnet rules (`from <ip> to
   * <subnet>`), and the sources its rules cover.
   */
  policy?: {
    table: number;
    priority: number;
    subnetPriority: number;
    sources: string[];
    primaryIp: string;
    mark?: number;
  };
}

const sysctl = compileTemplate<{ routing: RoutingMode; settings: DesiredSysctl[] }>(sysctlSource);

const RP_LOOSE = 2;
const RP_OFF = 0;
const FILE_MODE = 0o644;

/** Host addresses the NIC carries: its private IPs, then the public IPs routed to it directly. */
function hostAddresses(nic: NicModel): HostAddress[] {
  const privates = nic.addresses.map((a) => ({ ip: a.ip, prefixLength: nic.prefixLength, netmask: nic.netmask }));
  const direct = nic.addresses
    .filter((a) => a.publicMode === 'direct' && a.publicIp !== undefined)
    .map((a) => ({ ip: a.publicIp as string, prefixLength: 32, netmask: '255.255.255.255' }));
  return [...privates, ...direct];
}

function deviceOf(nic: NicModel, names: ReadonlyMap<string, string>): string {
  const device = names.get(nic.macLower);
  if (device === undefined) throw new Error(`no interface name for NIC ${nic.mac}`);
  return device;
}

function tableOf(nic: NicModel, tables: ReadonlyMap<number, number>): number {
  const table = tables.get(nic.index);
  if (table === undefined) throw new Error(`no routing table for NIC ${nic.mac}`);
  return table;
}

/** Each NIC's device, addresses and policy routing, in metadata order. */
export function nicLayouts(model: InstanceModel, options: LinuxRenderOptions): NicLayout[] {
  return model.nics.map((nic) => {
    const device = deviceOf(nic, options.names);
    const addresses = hostAddresses(nic);
    if (options.routing !== 'policy' || nic.isPrimaryNic) return { nic, device, addresses };
    const primaryIp = nic.addresses[0]?.ip ?? nic.gateway;
    const mark = options.connectionMarks === false ? undefined : markOf(nic.index);
    const policy = {
      table: tableOf(nic, options.tables),
      priority: RULE_PRIORITY_BASE + nic.index,
      subnetPriority: SUBNET_RULE_PRIORITY_BASE + nic.index,
      sources: addresses.map((a) => a.ip),
      primaryIp,
      ...(mark !== undefined ? { mark } : {}),
    };
    return { nic, device, addresses, policy };
  });
}

/**
 * The rule that lets main's own routes win over the agent's tables, all but main's default route: a container bridge,
 * a CNI's pod routes, a VPN or a peering route in main still carries the replies to them from a secondary NIC's
 * address. Listed first, so it is in place before any `from` rule steers traffic. `dev`: the primary NIC.
 */
export function mainRule(dev: string): DesiredRule {
  return { dev, from: 'all', table: MAIN_TABLE, priority: RULE_PRIORITY_BASE, suppressPrefixLength: 0 };
}

/**
 * A secondary NIC's rules: per address, its own subnet to its table (ahead of the main rule), then everything else;
 * with a connection mark, the replies that carry it likewise (to its subnet first, then everything main does not
 * route more specifically: a reply to a container on a bridge in main still goes to the bridge).
 */
export function nicRules(dev: string, cidr: string, policy: NonNullable<NicLayout['policy']>): DesiredRule[] {
  const fwmark = policy.mark !== undefined ? fwmarkSelector(policy.mark) : undefined;
  return [
    ...policy.sources.map((from) => ({ dev, from, to: cidr, table: policy.table, priority: policy.subnetPriority })),
    ...(fwmark !== undefined
      ? [{ dev, from: 'all', to: cidr, fwmark, table: policy.table, priority: policy.subnetPriority }]
      : []),
    ...policy.sources.map((from) => ({ dev, from, table: policy.table, priority: policy.priority })),
    ...(fwmark !== undefined ? [{ dev, from: 'all', fwmark, table: policy.table, priority: policy.priority }] : []),
  ];
}

/** The live state the layouts describe. */
export function linuxRuntime(
  layouts: readonly NicLayout[],
  routing: RoutingMode,
  connectionMarks = true,
): LinuxDesiredRuntime {
  const runtime: LinuxDesiredRuntime = {
    links: [],
    addresses: [],
    rules: [],
    routes: [],
    sysctls: [],
    marks: [],
    unmarked: [],
    rpFilter: [],
    pings: [],
    mainDefault: { gateway: '', dev: '' },
  };
  for (const { nic, device, addresses, policy } of layouts) {
    runtime.links.push({ ifname: device, mac: nic.macLower });
    for (const a of addresses) runtime.addresses.push({ ifname: device, ip: a.ip, prefixLength: a.prefixLength });
    for (const a of nic.addresses) runtime.pings.push({ ifname: device, source: a.ip, target: nic.gateway });
    if (nic.isPrimaryNic) runtime.mainDefault = { gateway: nic.gateway, dev: device };
    if (policy === undefined) continue;
    runtime.routes.push({ table: policy.table, dst: nic.cidr, dev: device, src: policy.primaryIp });
    runtime.routes.push({ table: policy.table, dst: 'default', dev: device, gateway: nic.gateway });
    runtime.rules.push(...nicRules(device, nic.cidr, policy));
    const { mark } = policy;
    if (mark !== undefined) runtime.marks.push(...policy.sources.map((ip) => ({ dev: device, ip, mark })));
    else if (connectionMarks) runtime.unmarked.push(device);
  }
  const primary = layouts.find((l) => l.nic.isPrimaryNic);
  if (layouts.some((l) => l.policy !== undefined) && primary !== undefined)
    runtime.rules.unshift(mainRule(primary.device));
  if (routing === 'policy') {
    runtime.sysctls.push({ key: 'net.ipv4.conf.default.rp_filter', value: String(RP_LOOSE) });
    for (const { nic, device } of layouts) {
      if (nic.isPrimaryNic) continue;
      runtime.sysctls.push({ key: `net.ipv4.conf.${device}.rp_filter`, value: String(RP_LOOSE) });
      runtime.rpFilter.push({ ifname: device, effective: RP_LOOSE });
    }
  } else {
    runtime.sysctls.push({ key: 'net.ipv4.conf.default.rp_filter', value: String(RP_OFF) });
    runtime.sysctls.push({ key: 'net.ipv4.conf.all.rp_filter', value: String(RP_OFF) });
    for (const { device } of layouts) {
      runtime.sysctls.push({ key: `net.ipv4.conf.${device}.rp_filter`, value: String(RP_OFF) });
      runtime.rpFilter.push({ ifname: device, effective: RP_OFF });
    }
  }
  // Deleting a subnet's primary address must promote a secondary, not delete every address of the subnet with it.
  for (const { device } of layouts)
    runtime.sysctls.push({ key: `net.ipv4.conf.${device}.promote_secondaries`, value: '1' });
  // Each address answered by the NIC that owns it: with the kernel's defaults every NIC answers ARP for every address
  // of the host, so the VPC's router may reach eth0's address through eth1 (and lose it when eth1 is detached).
  // arp_announce 1, not 2: with 2 a NIC whose first address is not the VPC's (a user's) announces that one, and the
  // VPC's anti-spoofing drops the ARP (measured in the lab); 1 keeps the packet's own source when it is in the subnet.
  for (const { device } of layouts)
    runtime.sysctls.push({ key: arpIgnoreKey(device), value: '1' }, { key: arpAnnounceKey(device), value: '1' });
  return runtime;
}

/** arp_ignore=1: answer ARP only for addresses configured on the interface the request came in on. */
export function arpIgnoreKey(device: string): string {
  return `net.ipv4.conf.${device}.arp_ignore`;
}

/** arp_announce=1: an ARP request's sender address is in the target's subnet on the interface it leaves by (the packet's own when it is). */
export function arpAnnounceKey(device: string): string {
  return `net.ipv4.conf.${device}.arp_announce`;
}

/** The sysctl drop-in that sets the runtime's sysctls at boot. */
export function sysctlDropIn(routing: RoutingMode, runtime: LinuxDesiredRuntime): RenderedFile {
  return { path: SYSCTL_DROPIN, mode: FILE_MODE, content: sysctl({ routing, settings: runtime.sysctls }) };
}

/** How a NIC's file describes its routing, for its header comment. */
export function routingNote(layout: NicLayout): string {
  if (layout.nic.isPrimaryNic) return 'primary NIC (main routing table)';
  return layout.policy !== undefined
    ? `secondary NIC (policy routing, table ${layout.policy.table})`
    : 'secondary NIC (rp_filter off, main routing table)';
}
