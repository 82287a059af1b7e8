// The pure half of the emulated VPC (the sandbox and the lab tests): what the cloud builds from the guests' metadata trees (links, NAT, anti-spoofing).
// Kept free of side effects so that it is tested without root and vpc.ts only carries it out.
import type { MetaTree } from '../metadata/tree.js';
import { ipv4Text, maskPrefix, prefixMask, subnetEnds } from '../model/ipv4.js';

/** The metadata service address, as guests of the real cloud use it. */
export const METADATA_IP = '169.254.0.23';
/** The router's end of the link to the internet host. */
export const ROUTER_WAN_IP = '198.51.100.1';
/** The internet host (RFC 5737): the only "public" machine in a lab. */
export const INTERNET_IP = '198.51.100.2';
/** Prefix length of the router-internet link: a /30, so that every other address of 198.51.100.0/24 can be an EIP. */
export const WAN_PREFIX = 30;
/** Router-side interface name of the internet link; port names always end in a digit, so it cannot clash. */
export const WAN_IF = 'wan';
/** First emulator port in the router namespace; guest i gets FIRST_METADATA_PORT + i. */
export const FIRST_METADATA_PORT = 8001;

/** A guest as a test describes it: a short name (lower-case letters, it becomes interface names) and its metadata. */
export interface LabGuestSpec {
  name: string;
  tree: MetaTree;
}

/** A subnet the router serves with one bridge holding the gateway address. */
export interface SubnetPlan {
  /** e.g. 10.1.0.0/20 */
  cidr: string;
  prefix: number;
  gateway: string;
  bridge: string;
}

/** One NIC of a guest: a veth whose guest end is `guestIf` (with `mac`) and whose router end `port` is on the subnet's bridge. */
export interface NicPlan {
  /** Lower-case, as `ip link` prints it. */
  mac: string;
  guestIf: string;
  port: string;
  primaryIp: string;
  subnet: SubnetPlan;
}

/** One guest's part of the topology. */
export interface GuestPlan {
  name: string;
  metadataPort: number;
  /** eth0 (the top-level `mac`) first, then the other NICs in listing order. */
  nics: NicPlan[];
}

/** The links of a lab; fixed at start, because ports cannot follow a changed tree the way NAT and filters can. */
export interface TopologyPlan {
  subnets: SubnetPlan[];
  guests: GuestPlan[];
}

/** What the cloud's dataplane does for the current trees; rebuilt on every metadata change. */
export interface CloudPolicy {
  /** Per guest: requests from these MACs to METADATA_IP:80 go to that guest's emulator port. */
  metadata: { macs: string[]; port: number }[];
  nat: { publicIp: string; privateIp: string }[];
  direct: { publicIp: string; privateIp: string; bridge: string }[];
  /** Per guest port: the IPv4 sources the ENI behind it may use. */
  allowed: { port: string; ips: string[] }[];
}

/** One address of an ENI as read from a tree; absent leaves stay undefined. */
interface EniAddress {
  ip: string;
  gateway: string | undefined;
  mask: string | undefined;
  publicIp: string | undefined;
  /** Anything but `direct` counts as NAT, the cloud's default when the leaf is missing. */
  direct: boolean;
}

/** One ENI as read from a tree, leniently: entries that are not well-formed are left out. */
interface EniView {
  /** As listed (case kept), for messages. */
  listedMac: string;
  mac: string;
  primaryIp: string | undefined;
  addresses: EniAddress[];
}

const GUEST_NAME = /^[a-z]{1,8}$/;

/** The dotted quad as a 32-bit number, or undefined when `text` is not exactly one. */
export function ipv4ToInt(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

/** Prefix length of a contiguous netmask, or undefined. */
function maskToPrefix(mask: string): number | undefined {
  const value = ipv4ToInt(mask);
  return value === undefined ? undefined : maskPrefix(value);
}

function networkOf(ip: number, prefix: number): number {
  return subnetEnds(ip, prefix).first;
}

/** The dotted netmask of a prefix length, as the metadata's `subnet-mask` gives it. */
export function maskText(prefix: number): string {
  return ipv4Text(prefixMask(prefix));
}

function isIpv4(text: string | undefined): text is string {
  return text !== undefined && ipv4ToInt(text) !== undefined;
}

function dir(node: MetaTree | string | undefined): MetaTree | undefined {
  return typeof node === 'object' ? node : undefined;
}

function leaf(node: MetaTree | undefined, name: string): string | undefined {
  const value = node?.[name];
  return typeof value === 'string' ? value.trim() : undefined;
}

/** The tree's ENIs: the top-level `mac` first, then the others in listing order. */
function readEnis(tree: MetaTree): EniView[] {
  const macs = dir(dir(dir(tree.network)?.interfaces)?.macs) ?? {};
  const enis: EniView[] = [];
  for (const [listedMac, node] of Object.entries(macs)) {
    const eniDir = dir(node);
    if (eniDir === undefined) continue;
    const addresses: EniAddress[] = [];
    for (const [ip, ipNode] of Object.entries(dir(eniDir['local-ipv4s']) ?? {})) {
      const ipDir = dir(ipNode);
      if (ipDir === undefined || !isIpv4(ip)) continue;
      const publicIp = leaf(ipDir, 'public-ipv4');
      addresses.push({
        ip,
        gateway: leaf(ipDir, 'gateway'),
        mask: leaf(ipDir, 'subnet-mask'),
        publicIp: isIpv4(publicIp) ? publicIp : undefined,
        direct: leaf(ipDir, 'public-ipv4-mode') === 'direct',
      });
    }
    const primaryIp = leaf(eniDir, 'primary-local-ipv4');
    enis.push({
      listedMac,
      mac: listedMac.toLowerCase(),
      primaryIp: isIpv4(primaryIp) ? primaryIp : addresses[0]?.ip,
      addresses,
    });
  }
  const primaryMac = leaf(tree, 'mac')?.toLowerCase();
  const first = enis.findIndex((eni) => eni.mac === primaryMac);
  if (first > 0) enis.unshift(...enis.splice(first, 1));
  return enis;
}

/** Subnets by CIDR and MAC owners by MAC: what the NICs planned so far use, for the checks of the next one. */
interface PlanIndex {
  subnets: Map<string, SubnetPlan>;
  macOwners: Map<string, string>;
}

/**
 * One NIC's link: strict where the link needs it (a MAC used nowhere else, the primary IP with a gateway and a
 * contiguous mask); `fail` throws an Error naming the guest and the metadata path otherwise.
 */
function planNic(
  index: PlanIndex,
  guest: string,
  eni: EniView,
  guestIf: string,
  port: string,
  fail: (what: string) => never,
): NicPlan {
  const path = `network/interfaces/macs/${eni.listedMac}/`;
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(eni.mac)) fail(`${path}: not a MAC address`);
  const owner = index.macOwners.get(eni.mac);
  if (owner !== undefined) fail(`${path}: MAC already used by guest ${owner}`);
  const primary = eni.addresses.find((a) => a.ip === eni.primaryIp);
  if (primary === undefined) return fail(`${path}local-ipv4s/: no primary address`);
  const at = `${path}local-ipv4s/${primary.ip}/`;
  const prefix = primary.mask === undefined ? undefined : maskToPrefix(primary.mask);
  if (prefix === undefined || prefix > 30)
    return fail(`${at}subnet-mask: ${String(primary.mask)} is not a usable netmask`);
  const gateway = primary.gateway;
  if (!isIpv4(gateway)) return fail(`${at}gateway: ${String(gateway)} is not an IPv4 address`);
  const network = networkOf(ipv4ToInt(primary.ip) as number, prefix);
  if (networkOf(ipv4ToInt(gateway) as number, prefix) !== network)
    fail(`${at}gateway: ${gateway} is outside the subnet`);
  const cidr = `${ipv4Text(network)}/${prefix}`;
  let subnet = index.subnets.get(cidr);
  if (subnet === undefined) {
    subnet = { cidr, prefix, gateway, bridge: `br-${index.subnets.size}` };
    for (const other of index.subnets.values()) {
      // Overlapping bridges would give the router two connected routes for one address: a broken VPC, not a test.
      const shorter = Math.min(subnet.prefix, other.prefix);
      const [a, b] = [subnet, other].map((s) => ipv4ToInt(s.cidr.split('/')[0] as string) as number) as [
        number,
        number,
      ];
      if (networkOf(a, shorter) === networkOf(b, shorter))
        fail(`${at}subnet-mask: ${cidr} overlaps ${other.cidr} of another NIC`);
    }
    index.subnets.set(cidr, subnet);
  } else if (subnet.gateway !== gateway) {
    fail(`${at}gateway: ${gateway}, but another NIC in ${cidr} has gateway ${subnet.gateway}`);
  }
  index.macOwners.set(eni.mac, guest);
  return { mac: eni.mac, guestIf, port, primaryIp: primary.ip, subnet };
}

function indexOf(plan: TopologyPlan): PlanIndex {
  const macOwners = new Map<string, string>();
  for (const guest of plan.guests) for (const nic of guest.nics) macOwners.set(nic.mac, guest.name);
  return { subnets: new Map(plan.subnets.map((s) => [s.cidr, s])), macOwners };
}

/**
 * The lab's links from the guests' initial trees. Strict where the links need it (each NIC's primary IP with a
 * gateway and a contiguous mask); throws an Error naming the guest and the metadata path otherwise.
 */
export function planTopology(guests: readonly LabGuestSpec[]): TopologyPlan {
  const index: PlanIndex = { subnets: new Map(), macOwners: new Map() };
  const names = new Set<string>();
  const plans = guests.map((guest, i): GuestPlan => {
    const fail = (what: string): never => {
      throw new Error(`lab: guest ${guest.name}: ${what}`);
    };
    if (!GUEST_NAME.test(guest.name)) fail('name must be 1-8 lower-case letters (it becomes interface names like a0)');
    if (names.has(guest.name)) fail('name used twice');
    names.add(guest.name);
    const enis = readEnis(guest.tree);
    const primaryMac = leaf(guest.tree, 'mac')?.toLowerCase();
    if (enis[0] === undefined || enis[0].mac !== primaryMac)
      fail('top-level mac is not one of network/interfaces/macs/');
    const nics = enis.map((eni, n) => planNic(index, guest.name, eni, `eth${n}`, `${guest.name}${n}`, fail));
    return { name: guest.name, metadataPort: FIRST_METADATA_PORT + i, nics };
  });
  return { subnets: [...index.subnets.values()], guests: plans };
}

/**
 * Adds the link of an ENI that `tree` (the guest's new tree) lists under `mac` and the plan does not have yet, as a
 * cloud attaches an ENI to a running VM: the guest sees the first free ethN. Returns the new NIC; the plan is changed
 * in place. Throws like planTopology.
 */
export function attachNic(plan: TopologyPlan, guestName: string, tree: MetaTree, mac: string): NicPlan {
  const guest = plan.guests.find((g) => g.name === guestName);
  const fail = (what: string): never => {
    throw new Error(`lab: guest ${guestName}: ${what}`);
  };
  if (guest === undefined) return fail('no such guest');
  const eni = readEnis(tree).find((e) => e.mac === mac.toLowerCase());
  if (eni === undefined) return fail(`network/interfaces/macs/${mac}/: not in the tree`);
  const index = indexOf(plan);
  const used = new Set(guest.nics.map((n) => n.guestIf));
  let n = 0;
  while (used.has(`eth${n}`)) n++;
  const ports = new Set(plan.guests.flatMap((g) => g.nics.map((nic) => nic.port)));
  let p = guest.nics.length;
  while (ports.has(`${guest.name}${p}`)) p++;
  const nic = planNic(index, guest.name, eni, `eth${n}`, `${guest.name}${p}`, fail);
  guest.nics.push(nic);
  plan.subnets = [...index.subnets.values()];
  return nic;
}

/** Removes a NIC's link from the plan, as a cloud detaches an ENI; returns it. Never the guest's eth0. */
export function detachNic(plan: TopologyPlan, guestName: string, mac: string): NicPlan {
  const guest = plan.guests.find((g) => g.name === guestName);
  const at = guest?.nics.findIndex((n) => n.mac === mac.toLowerCase()) ?? -1;
  if (guest === undefined || at < 0) throw new Error(`lab: guest ${guestName}: no NIC with MAC ${mac}`);
  if (at === 0) throw new Error(`lab: guest ${guestName}: ${mac} is the primary NIC (eth0); a cloud cannot detach it`);
  return guest.nics.splice(at, 1)[0] as NicPlan;
}

/**
 * The dataplane for the current trees (`trees` by guest name). Lenient: malformed entries are skipped and MACs with
 * no port in the lab are ignored, so a test can serve a broken or not-yet-attached ENI to the agent.
 */
export function cloudPolicy(plan: TopologyPlan, trees: ReadonlyMap<string, MetaTree>): CloudPolicy {
  const policy: CloudPolicy = { metadata: [], nat: [], direct: [], allowed: [] };
  for (const guest of plan.guests) {
    policy.metadata.push({ macs: guest.nics.map((nic) => nic.mac), port: guest.metadataPort });
    const tree = trees.get(guest.name);
    const enis = tree === undefined ? [] : readEnis(tree);
    for (const nic of guest.nics) {
      const eni = enis.find((e) => e.mac === nic.mac);
      const ips = new Set<string>();
      if (eni?.primaryIp !== undefined) ips.add(eni.primaryIp);
      for (const address of eni?.addresses ?? []) {
        ips.add(address.ip);
        if (address.publicIp === undefined) continue;
        if (address.direct) {
          policy.direct.push({ publicIp: address.publicIp, privateIp: address.ip, bridge: nic.subnet.bridge });
          ips.add(address.publicIp);
        } else {
          policy.nat.push({ publicIp: address.publicIp, privateIp: address.ip });
        }
      }
      policy.allowed.push({ port: nic.port, ips: [...ips] });
    }
  }
  return policy;
}

/** Whether an address belongs to the emulated cloud itself (the internet link, the metadata service): never an EIP. */
export function cloudOwned(ip: string): boolean {
  const value = ipv4ToInt(ip);
  const wan = ipv4ToInt(ROUTER_WAN_IP) as number;
  return value !== undefined && (networkOf(value, WAN_PREFIX) === networkOf(wan, WAN_PREFIX) || ip === METADATA_IP);
}

/** Whether `ip` is a host address of the subnet: inside it, and neither its network, broadcast nor gateway address. */
export function hostOf(subnet: SubnetPlan, ip: string): boolean {
  const value = ipv4ToInt(ip);
  const network = ipv4ToInt(subnet.cidr.split('/')[0] as string) as number;
  if (value === undefined || networkOf(value, subnet.prefix) !== network) return false;
  return value !== network && value !== network + 2 ** (32 - subnet.prefix) - 1 && ip !== subnet.gateway;
}

/** One EIP of a guest as the cloud serves it: where it points, and on which of the guest's NICs that is. */
export interface PublicAddress {
  publicIp: string;
  privateIp: string;
  /** The guest's interface (ethN), or undefined for an ENI the guest has no link for. */
  guestIf: string | undefined;
  mac: string;
  direct: boolean;
}

/** The guest's EIPs in the tree, NIC by NIC (eth0 first) in listing order. */
export function publicAddresses(guest: GuestPlan, tree: MetaTree): PublicAddress[] {
  return readEnis(tree).flatMap((eni) =>
    eni.addresses.flatMap((a) =>
      a.publicIp === undefined
        ? []
        : [
            {
              publicIp: a.publicIp,
              privateIp: a.ip,
              guestIf: guest.nics.find((n) => n.mac === eni.mac)?.guestIf,
              mac: eni.mac,
              direct: a.direct,
            },
          ],
    ),
  );
}

/** `{ a, b }`, the anonymous-set syntax of nft. */
function set(items: readonly string[]): string {
  return `{ ${items.join(', ')} }`;
}

/**
 * The router's whole nftables ruleset as one `nft -f` script that replaces the lab's tables atomically
 * (`add` then `delete` so that it also works the first time).
 */
export function renderRuleset(policy: CloudPolicy): string {
  const wan = `"${WAN_IF}"`;
  const lines = [
    'add table ip eipnat',
    'delete table ip eipnat',
    'add table bridge eipspoof',
    'delete table bridge eipspoof',
    'table ip eipnat {',
    '\tchain prerouting {',
    '\t\ttype nat hook prerouting priority dstnat; policy accept;',
    // The source MAC tells guests apart, as the real service knows which instance asks.
    ...policy.metadata.map(
      (m) => `\t\tip daddr ${METADATA_IP} tcp dport 80 ether saddr ${set(m.macs)} dnat to ${METADATA_IP}:${m.port}`,
    ),
    ...policy.nat.map((n) => `\t\tip daddr ${n.publicIp} dnat to ${n.privateIp}`),
    '\t}',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    ...policy.nat.map((n) => `\t\tip saddr ${n.privateIp} oifname ${wan} snat to ${n.publicIp}`),
    '\t}',
    // The internet edge: only EIP traffic crosses it, so a guest reachable or answering from a private address
    // without its EIP fails in the lab as it would in the cloud.
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter; policy accept;',
    `\t\tiifname ${wan} ct status dnat accept`,
    `\t\tiifname ${wan} ct state established,related accept`,
  ];
  const directIps = policy.direct.map((d) => d.publicIp);
  if (directIps.length > 0) lines.push(`\t\tiifname ${wan} ip daddr ${set(directIps)} accept`);
  lines.push(`\t\tiifname ${wan} drop`);
  const egress = [...policy.nat.map((n) => n.privateIp), ...directIps];
  if (egress.length > 0) lines.push(`\t\toifname ${wan} ip saddr ${set(egress)} accept`);
  lines.push(`\t\toifname ${wan} drop`, '\t}', '}');
  lines.push(
    'table bridge eipspoof {',
    // Only frames entering from guest ports are checked; the router's own frames never pass prerouting.
    '\tchain prerouting {',
    '\t\ttype filter hook prerouting priority filter; policy accept;',
    // A DHCP client's discover and request come from 0.0.0.0 before it has an address; the cloud's DHCP answers them.
    '\t\tip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept',
  );
  for (const { port, ips } of policy.allowed) {
    if (ips.length > 0) lines.push(`\t\tiifname "${port}" ip saddr ${set(ips)} accept`);
    // 0.0.0.0 is the sender of ARP probes (duplicate address detection).
    lines.push(`\t\tiifname "${port}" arp saddr ip ${set(['0.0.0.0', ...ips])} accept`);
    lines.push(`\t\tiifname "${port}" drop`);
  }
  lines.push('\t}', '}', '');
  return lines.join('\n');
}
