import { hexDigest } from '../../../host/digest.js';
import type { InstanceModel } from '../../../model/types.js';
import { assertIpArgumentLines, assertKeyfileLines } from '../../../render/guard.js';
import { compileTemplate } from '../../../render/handlebars.js';
import type { LinuxRenderOptions, NicLayout } from '../desired-runtime.js';
import { linuxRuntime, nicLayouts, routingNote, sysctlDropIn } from '../desired-runtime.js';
import type { DesiredRule, LinuxDesiredState } from '../../../render/types.js';
import connectionSource from '../../../../templates/networkmanager/connection.hbs';

/** Where NetworkManager's keyfile plugin reads connection profiles. */
export const SYSTEM_CONNECTIONS_DIR = '/etc/NetworkManager/system-connections';

/** The agent's profiles are named eip-agent-<device>; NetworkManager reads only root-owned 0600 keyfiles. */
export const PROFILE_PREFIX = 'eip-agent-';
const KEYFILE_MODE = 0o600;

/**
 * Above any profile a cloud image ships for eth0 (cloud-init writes 120): at boot NetworkManager activates the
 * agent's profile, not the image's. A loaded profile never takes over a NIC that is already active.
 */
export const AUTOCONNECT_PRIORITY = 200;

interface ConnectionData {
  id: string;
  uuid: string;
  device: string;
  mac: string;
  subnetId?: string;
  cidr: string;
  routingNote: string;
  priority: number;
  addresses: { n: number; ip: string; prefixLength: number }[];
  primaryNic: boolean;
  gateway: string;
  policy?: { table: number };
  rules: { n: number; rule: string }[];
}

const connection = compileTemplate<ConnectionData>(connectionSource);

/** The path of a NIC's profile. */
export function profilePath(device: string): string {
  return `${SYSTEM_CONNECTIONS_DIR}/${PROFILE_PREFIX}${device}.nmconnection`;
}

/** A stable UUID per MAC (name-based, RFC 4122 version 5 layout), so a re-render is the same profile. */
function uuidFor(mac: string): string {
  const hex = hexDigest('sha1', `eip-agent:${mac.toLowerCase()}`).slice(0, 32).split('');
  hex[12] = '5';
  hex[16] = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A rule as NetworkManager's routing-rule property spells it (`from 0.0.0.0/0` for all; a bare address is a /32). */
function nmRule(rule: DesiredRule): string {
  const from = rule.from === 'all' ? '0.0.0.0/0' : rule.from;
  return [
    `priority ${rule.priority} from ${from}`,
    ...(rule.to !== undefined ? [`to ${rule.to}`] : []),
    ...(rule.fwmark !== undefined ? [`fwmark ${rule.fwmark}`] : []),
    `table ${rule.table}`,
    ...(rule.suppressPrefixLength !== undefined ? [`suppress_prefixlength ${rule.suppressPrefixLength}`] : []),
  ].join(' ');
}

function profile(layout: NicLayout, rules: readonly DesiredRule[]): string {
  const { nic, device, addresses, policy } = layout;
  return connection({
    id: `${PROFILE_PREFIX}${device}`,
    uuid: uuidFor(nic.mac),
    device,
    mac: nic.mac,
    ...(nic.subnetId !== undefined ? { subnetId: nic.subnetId } : {}),
    cidr: nic.cidr,
    routingNote: routingNote(layout),
    priority: AUTOCONNECT_PRIORITY,
    addresses: addresses.map((a, i) => ({ n: i + 1, ip: a.ip, prefixLength: a.prefixLength })),
    primaryNic: nic.isPrimaryNic,
    gateway: nic.gateway,
    ...(policy !== undefined ? { policy: { table: policy.table } } : {}),
    rules: rules.map((rule, i) => ({ n: i + 1, rule: nmRule(rule) })),
  });
}

/**
 * Renders one NetworkManager keyfile per NIC (static addresses, the primary NIC's gateway, each secondary NIC's table
 * and `from` rules), the sysctl drop-in, and the same live state as every Linux target. Pure.
 */
export function renderNetworkManager(model: InstanceModel, options: LinuxRenderOptions): LinuxDesiredState {
  const layouts = nicLayouts(model, options);
  const runtime = linuxRuntime(layouts, options.routing, options.connectionMarks !== false);
  // With route-table= NetworkManager puts a NIC's prefix routes in its table, none in main: live, the same. A
  // secondary NIC's prefix route in main (metric 0) would otherwise win over eth0's (NetworkManager's metric 100).
  const tabled = new Set(layouts.filter((l) => l.policy !== undefined).map((l) => l.device));
  for (const address of runtime.addresses) if (tabled.has(address.ifname)) address.noPrefixRoute = true;
  // Each profile carries the rules of its NIC; the primary NIC's, the main rule (NetworkManager adds them at activation).
  const files = layouts.map((layout) => ({
    path: profilePath(layout.device),
    mode: KEYFILE_MODE,
    content: profile(
      layout,
      runtime.rules.filter((r) => r.dev === layout.device),
    ),
  }));
  for (const file of files) assertKeyfileLines(file.path, file.content);
  const drop = sysctlDropIn(options.routing, runtime);
  assertIpArgumentLines(drop.path, drop.content.replaceAll(' = ', ' '));
  return { files: [...files, drop], runtime };
}
