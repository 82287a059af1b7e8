import { parse } from 'yaml';
import type { InstanceModel } from '../../../model/types.js';
import { assertIpArgumentLines, assertNetworkdLines } from '../../../render/guard.js';
import { compileTemplate } from '../../../render/handlebars.js';
import type { LinuxRenderOptions, NicLayout } from '../desired-runtime.js';
import { linuxRuntime, nicLayouts, routingNote, sysctlDropIn } from '../desired-runtime.js';
import type { DesiredRule, LinuxDesiredState, RenderedFile } from '../../../render/types.js';
import yamlSource from '../../../../templates/netplan/eip-agent.yaml.hbs';
import rulesSource from '../../../../templates/netplan/rules.conf.hbs';

/** The agent's netplan file: read after cloud-init's 50-cloud-init.yaml, so it amends the NICs that file defines. */
export const NETPLAN_FILE = '/etc/netplan/90-eip-agent.yaml';
/** netplan reads its YAML from these directories; a file in a later one replaces the same name in an earlier one. */
export const NETPLAN_DIRS = ['/lib/netplan', '/etc/netplan', '/run/netplan'] as const;
/** Where the agent's systemd-networkd drop-ins go: beside the files netplan generates, in the admin's directory. */
export const NETWORKD_DIR = '/etc/systemd/network';
const DROPIN_NAME = '90-eip-agent.conf';
/** netplan keeps its YAML private (it warns about a world-readable file); the drop-ins are plain configuration. */
const YAML_MODE = 0o600;
const DROPIN_MODE = 0o644;

/**
 * A netplan ethernets definition from another file of the guest (cloud-init's, the user's): the NIC it matches keeps it
 * and the agent's definition uses the same id, so netplan merges the two instead of making two networkd files for one
 * NIC (networkd would use only the first).
 */
export interface NetplanDefinition {
  id: string;
  /** The file that defines it (for messages). */
  file: string;
  /** `match: macaddress`, lower case. */
  mac?: string;
  /** `match: name` (a glob), or the id itself when there is no `match`. */
  name?: string;
  dhcp4: boolean;
}

/** The netplan renderer's inputs besides the model: the guest's other definitions, in netplan's file order. */
export interface NetplanRenderOptions extends LinuxRenderOptions {
  definitions?: readonly NetplanDefinition[];
}

/** An id netplan writes into a file name (`10-netplan-<id>.network`) and the agent into a drop-in's directory. */
export const SAFE_ID = /^[A-Za-z0-9_@-][A-Za-z0-9_.@-]{0,63}$/;

/** The drop-in with a definition's rules (and a tabled NIC's addresses). */
export function dropInPath(id: string): string {
  return `${NETWORKD_DIR}/10-netplan-${id}.network.d/${DROPIN_NAME}`;
}

/** Whether a guest path is one of the agent's netplan or networkd files (the stack must read them again). */
export function isNetplanPath(path: string): boolean {
  return (
    path === NETPLAN_FILE ||
    (path.startsWith(`${NETWORKD_DIR}/10-netplan-`) && path.endsWith(`.network.d/${DROPIN_NAME}`))
  );
}

interface RouteData {
  to: string;
  via?: string;
  scopeLink?: boolean;
  from?: string;
  table?: number;
}

interface NicData {
  id: string;
  mac: string;
  subnetId?: string;
  cidr: string;
  routingNote: string;
  matchMac?: string;
  addresses: string[];
  routes: RouteData[];
}

const yamlTemplate = compileTemplate<{ dropInName: string; nics: NicData[] }>(yamlSource);
const rulesTemplate = compileTemplate<{
  device: string;
  mac: string;
  id: string;
  yamlName: string;
  keep: boolean;
  addresses: string[];
  rules: { lines: string[] }[];
}>(rulesSource);

/** fnmatch as netplan applies `match: name` (`*`, `?`, `[...]`). */
function globMatches(glob: string, name: string): boolean {
  const pattern = glob
    .replace(/[.+^${}()|\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${pattern}$`).test(name);
}

/** The definition networkd will use for a NIC: of those that match it, the first by id (networkd takes the first file). */
export function definitionFor(
  definitions: readonly NetplanDefinition[],
  mac: string,
  device: string,
): NetplanDefinition | undefined {
  const matching = definitions.filter(
    (d) => (d.mac === undefined || d.mac === mac) && (d.name === undefined || globMatches(d.name, device)),
  );
  return matching.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))[0];
}

/** A rule as a networkd [RoutingPolicyRule] section (no From=: from all; the family is IPv4 by default). */
function ruleLines(rule: DesiredRule): string[] {
  return [
    ...(rule.from !== 'all' ? [`From=${rule.from}`] : []),
    ...(rule.to !== undefined ? [`To=${rule.to}`] : []),
    ...(rule.fwmark !== undefined ? [`FirewallMark=${rule.fwmark}`] : []),
    `Table=${rule.table}`,
    `Priority=${rule.priority}`,
    ...(rule.suppressPrefixLength !== undefined ? [`SuppressPrefixLength=${rule.suppressPrefixLength}`] : []),
  ];
}

/** The id of the agent's definition for a NIC: the guest's own where one matches, else the device (or a name no one uses). */
function idFor(
  layout: NicLayout,
  definitions: readonly NetplanDefinition[],
): { id: string; existing?: NetplanDefinition } {
  const existing = definitionFor(definitions, layout.nic.macLower, layout.device);
  if (existing !== undefined) return { id: existing.id, existing };
  const taken = definitions.some((d) => d.id === layout.device);
  return { id: taken ? `eip-agent-${layout.device}` : layout.device };
}

/** Whether the guest's own definition gives this primary NIC its address and default route by DHCP (cloud-init's eth0). */
function leased(layout: NicLayout, existing: NetplanDefinition | undefined): boolean {
  return layout.nic.isPrimaryNic && existing?.dhcp4 === true;
}

/**
 * A NIC's addresses as this target writes them and sets them live: its first address with the subnet's prefix, every
 * other one a /32, so that no two of them share a subnet and the kernel never ranks one secondary to another. Measured
 * with networkd 252 in the VM: where a static address was secondary to another (a DHCP lease's or a static one), and
 * the other went or came back (`systemctl restart systemd-networkd` on a DHCP NIC, `netplan apply`), networkd kept
 * configuring it again until it failed the NIC ("Failed to configure address: Numerical result out of range") and
 * stopped its DHCP client; and after a boot eth0's static address came before the lease's and became the subnet route's
 * source. A /32 is delivered the same: the VPC's router asks for it by ARP on the subnet and the NIC holding it answers.
 */
function netplanAddresses(layout: NicLayout): NicLayout['addresses'] {
  const first = layout.nic.addresses[0]?.ip;
  return layout.addresses.map((a) => (a.ip === first ? a : { ...a, prefixLength: 32 }));
}

/** `addresses`: what the agent writes for the NIC (netplanAddresses, without a lease's own). */
function nicData(
  layout: NicLayout,
  id: string,
  existing: NetplanDefinition | undefined,
  addresses: NicLayout['addresses'],
): NicData {
  const { nic, policy } = layout;
  const routes: RouteData[] = [];
  if (policy !== undefined) {
    routes.push(
      { to: nic.cidr, scopeLink: true, from: policy.primaryIp, table: policy.table },
      { to: 'default', via: nic.gateway, table: policy.table },
    );
  } else if (nic.isPrimaryNic && existing === undefined) {
    // A primary NIC no other file defines gets its gateway here; one that is defined keeps its own (cloud-init's DHCP).
    routes.push({ to: 'default', via: nic.gateway });
  }
  return {
    id,
    mac: nic.mac,
    ...(nic.subnetId !== undefined ? { subnetId: nic.subnetId } : {}),
    cidr: nic.cidr,
    routingNote: routingNote(layout),
    ...(existing === undefined ? { matchMac: nic.macLower } : {}),
    // A tabled NIC's addresses are in its drop-in, where networkd can be told not to add their prefix route to main.
    addresses: policy !== undefined ? [] : addresses.map((a) => `${a.ip}/${a.prefixLength}`),
    routes,
  };
}

/** What the YAML must parse to: the guard against a value that changes its structure. */
function expectedDocument(nics: readonly NicData[]): unknown {
  const ethernets: Record<string, unknown> = {};
  for (const n of nics) {
    ethernets[n.id] = {
      ...(n.matchMac !== undefined ? { match: { macaddress: n.matchMac } } : {}),
      ...(n.addresses.length > 0 ? { addresses: n.addresses } : {}),
      ...(n.routes.length > 0
        ? {
            routes: n.routes.map((r) => ({
              to: r.to,
              ...(r.via !== undefined ? { via: r.via } : {}),
              ...(r.scopeLink ? { scope: 'link' } : {}),
              ...(r.from !== undefined ? { from: r.from } : {}),
              ...(r.table !== undefined ? { table: r.table } : {}),
            })),
          }
        : {}),
    };
  }
  return { network: { version: 2, ethernets } };
}

/**
 * Renders the netplan file (every managed NIC's addresses and, in policy mode, its table's routes, merged into the
 * guest's own definition of that NIC where there is one), one systemd-networkd drop-in per NIC with policy rules, the
 * sysctl drop-in, and the same live state as every Linux target. Pure. `warnings`: what the guest's own definitions do
 * that works against the agent's routing.
 */
export function renderNetplan(model: InstanceModel, options: NetplanRenderOptions): LinuxDesiredState {
  const definitions = options.definitions ?? [];
  for (const d of definitions)
    if (!SAFE_ID.test(d.id))
      throw new Error(
        `render: netplan id ${JSON.stringify(d.id)} in ${d.file}: not a name the agent writes into a path`,
      );
  const layouts = nicLayouts(model, options);
  const runtime = linuxRuntime(layouts, options.routing, options.connectionMarks !== false);
  // A tabled NIC's addresses go without a prefix route in main (its prefix route is in its table), live and at boot:
  // networkd configures the NICs in parallel, and a secondary NIC's prefix route in main added before eth0's would
  // carry eth0's traffic to its own subnet out of the secondary NIC, where the VPC drops it (measured in the lab).
  const tabled = new Set(layouts.filter((l) => l.policy !== undefined).map((l) => l.device));
  for (const address of runtime.addresses) if (tabled.has(address.ifname)) address.noPrefixRoute = true;
  const warnings: string[] = [];
  const nics: NicData[] = [];
  const dropIns: RenderedFile[] = [];
  for (const layout of layouts) {
    const { id, existing } = idFor(layout, definitions);
    const addresses = netplanAddresses(layout);
    // A NIC on a DHCP lease: the lease's address is the DHCP client's (with a static copy of it networkd fails the NIC
    // at its restart), and so is the default route.
    const leasedIp = leased(layout, existing) ? layout.nic.addresses[0]?.ip : undefined;
    nics.push(
      nicData(
        layout,
        id,
        existing,
        addresses.filter((a) => a.ip !== leasedIp),
      ),
    );
    const prefixes = new Map(addresses.map((a) => [a.ip, a.prefixLength]));
    for (const address of runtime.addresses.filter((a) => a.ifname === layout.device)) {
      address.prefixLength = prefixes.get(address.ip) ?? address.prefixLength;
      if (address.ip === leasedIp) address.lease = true;
    }
    if (leasedIp !== undefined) runtime.mainDefault.lease = true;
    if (existing?.dhcp4 === true && !layout.nic.isPrimaryNic) {
      warnings.push(
        `${layout.device}: ${existing.file} gives it DHCP (${existing.id}: dhcp4: true): ` +
          `its lease's default route in main competes with the primary NIC's; take it out of that file`,
      );
    }
    const rules = runtime.rules.filter((r) => r.dev === layout.device);
    const unrouted = tabled.has(layout.device) ? addresses : [];
    // A NIC the agent brings to networkd keeps a hand-added address over a networkd restart, as before.
    const keep = existing === undefined;
    if (rules.length === 0 && unrouted.length === 0 && !keep) continue;
    const path = dropInPath(id);
    const content = rulesTemplate({
      device: layout.device,
      mac: layout.nic.mac,
      id,
      yamlName: NETPLAN_FILE.split('/').at(-1)!,
      keep,
      addresses: unrouted.map((a) => `${a.ip}/${a.prefixLength}`),
      rules: rules.map((r) => ({ lines: ruleLines(r) })),
    });
    assertNetworkdLines(path, content);
    dropIns.push({ path, mode: DROPIN_MODE, content });
  }
  const yaml = yamlTemplate({ dropInName: DROPIN_NAME, nics });
  if (!process.getBuiltinModule('node:util').isDeepStrictEqual(parse(yaml), expectedDocument(nics)))
    throw new Error(`render: ${NETPLAN_FILE}: refusing to write YAML that does not say what the agent means`);
  const drop = sysctlDropIn(options.routing, runtime);
  assertIpArgumentLines(drop.path, drop.content.replaceAll(' = ', ' '));
  return {
    files: [{ path: NETPLAN_FILE, mode: YAML_MODE, content: yaml }, ...dropIns, drop],
    runtime,
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}
