import type { InstanceModel, NicModel } from '../../model/types.js';
import { compileTemplate } from '../handlebars.js';
import { assertIpArgumentLines, assertShellAssignments } from '../guard.js';
import type { DesiredSysctl, LinuxDesiredState, RenderedFile, RoutingMode } from '../types.js';
import { networkScript, ROUTE_PROTO, RULE_PRIORITY_BASE, SYSCTL_DROPIN } from './paths.js';
import ifcfgSource from '../../../templates/centos/ifcfg.hbs';
import routeSource from '../../../templates/centos/route.hbs';
import ruleSource from '../../../templates/centos/rule.hbs';
import sysctlSource from '../../../templates/centos/sysctl.hbs';

/** Inputs of the CentOS renderer besides the model. */
export interface CentosRenderOptions {
  routing: RoutingMode;
  /** Interface name per lower-case MAC. */
  names: ReadonlyMap<string, string>;
  /** Routing table id per secondary NIC index (policy mode). */
  tables: ReadonlyMap<number, number>;
}

interface IfcfgData {
  mac: string;
  subnetId?: string;
  cidr: string;
  routingNote: string;
  device: string;
  addresses: { ip: string; netmask: string }[];
  gateway: string;
  noDefaultRoute: boolean;
}

const ifcfg = compileTemplate<IfcfgData>(ifcfgSource);
const route = compileTemplate<{ table: number; device: string; mac: string; cidr: string; primaryIp: string; gateway: string; proto: number }>(routeSource);
const rule = compileTemplate<{ table: number; device: string; mac: string; sources: string[]; priority: number }>(ruleSource);
const sysctl = compileTemplate<{ routing: RoutingMode; settings: DesiredSysctl[] }>(sysctlSource);

const FILE_MODE = 0o644;
const RP_LOOSE = 2;
const RP_OFF = 0;

/** Host addresses the NIC carries: its private IPs, then the public IPs routed to it directly. */
function hostAddresses(nic: NicModel): { ip: string; prefixLength: number; netmask: string }[] {
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

/** Renders the CentOS files (ifcfg/route/rule, sysctl drop-in) and the runtime state they describe. Pure. */
export function renderCentos(model: InstanceModel, options: CentosRenderOptions): LinuxDesiredState {
  const { routing, names, tables } = options;
  const policy = routing === 'policy';
  const files: RenderedFile[] = [];
  const state: LinuxDesiredState = {
    files,
    runtime: { links: [], addresses: [], rules: [], routes: [], sysctls: [], rpFilter: [], pings: [], mainDefault: { gateway: '', dev: '' } },
  };
  const { runtime } = state;

  for (const nic of model.nics) {
    const device = deviceOf(nic, names);
    const addresses = hostAddresses(nic);
    const secondaryNicWithTable = policy && !nic.isPrimaryNic;
    files.push({
      path: networkScript('ifcfg', device),
      mode: FILE_MODE,
      content: ifcfg({
        mac: nic.mac,
        ...(nic.subnetId !== undefined ? { subnetId: nic.subnetId } : {}),
        cidr: nic.cidr,
        routingNote: nic.isPrimaryNic
          ? 'primary NIC (main routing table)'
          : policy
            ? `secondary NIC (policy routing, table ${tableOf(nic, tables)})`
            : 'secondary NIC (rp_filter off, main routing table)',
        device,
        addresses: addresses.map(({ ip, netmask }) => ({ ip, netmask })),
        gateway: nic.gateway,
        // Every secondary NIC, in both modes: at boot ifup-eth replaces the main default route with each NIC's GATEWAY unless DEFROUTE=no.
        noDefaultRoute: !nic.isPrimaryNic,
      }),
    });
    runtime.links.push({ ifname: device, mac: nic.macLower });
    for (const a of addresses) runtime.addresses.push({ ifname: device, ip: a.ip, prefixLength: a.prefixLength });
    for (const a of nic.addresses) runtime.pings.push({ ifname: device, source: a.ip, target: nic.gateway });
    if (nic.isPrimaryNic) runtime.mainDefault = { gateway: nic.gateway, dev: device };

    if (secondaryNicWithTable) {
      const table = tableOf(nic, tables);
      const priority = RULE_PRIORITY_BASE + nic.index;
      const primaryIp = nic.addresses[0]?.ip ?? nic.gateway;
      const sources = addresses.map((a) => a.ip);
      files.push({
        path: networkScript('route', device),
        mode: FILE_MODE,
        content: route({ table, device, mac: nic.mac, cidr: nic.cidr, primaryIp, gateway: nic.gateway, proto: ROUTE_PROTO }),
      });
      files.push({ path: networkScript('rule', device), mode: FILE_MODE, content: rule({ table, device, mac: nic.mac, sources, priority }) });
      runtime.routes.push({ table, dst: nic.cidr, dev: device, src: primaryIp });
      runtime.routes.push({ table, dst: 'default', dev: device, gateway: nic.gateway });
      for (const from of sources) runtime.rules.push({ dev: device, from, table, priority });
    }
  }

  const devices = model.nics.map((nic) => ({ nic, device: deviceOf(nic, names) }));
  if (policy) {
    runtime.sysctls.push({ key: 'net.ipv4.conf.default.rp_filter', value: String(RP_LOOSE) });
    for (const { nic, device } of devices) {
      if (nic.isPrimaryNic) continue;
      runtime.sysctls.push({ key: `net.ipv4.conf.${device}.rp_filter`, value: String(RP_LOOSE) });
      runtime.rpFilter.push({ ifname: device, effective: RP_LOOSE });
    }
  } else {
    runtime.sysctls.push({ key: 'net.ipv4.conf.default.rp_filter', value: String(RP_OFF) });
    runtime.sysctls.push({ key: 'net.ipv4.conf.all.rp_filter', value: String(RP_OFF) });
    for (const { device } of devices) {
      runtime.sysctls.push({ key: `net.ipv4.conf.${device}.rp_filter`, value: String(RP_OFF) });
      runtime.rpFilter.push({ ifname: device, effective: RP_OFF });
    }
  }
  // Deleting a subnet's primary address must promote a secondary, not delete every address of the subnet with it.
  for (const { device } of devices) runtime.sysctls.push({ key: `net.ipv4.conf.${device}.promote_secondaries`, value: '1' });
  files.push({ path: SYSCTL_DROPIN, mode: FILE_MODE, content: sysctl({ routing, settings: runtime.sysctls }) });
  for (const file of files) {
    if (file.path.includes('/ifcfg-')) assertShellAssignments(file.path, file.content);
    else assertIpArgumentLines(file.path, file.content.replaceAll(' = ', ' '));
  }
  return state;
}
