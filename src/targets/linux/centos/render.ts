import type { InstanceModel } from '../../../model/types.js';
import { compileTemplate } from '../../../render/handlebars.js';
import { assertIpArgumentLines, assertShellAssignments } from '../../../render/guard.js';
import type { LinuxRenderOptions } from '../desired-runtime.js';
import { linuxRuntime, nicLayouts, nicRules, routingNote, sysctlDropIn } from '../desired-runtime.js';
import { fwmarkSelector, ruleSpec } from '../rule-spec.js';
import type { LinuxDesiredState, RenderedFile } from '../../../render/types.js';
import { networkScript, ROUTE_PROTO } from '../paths.js';
import ifcfgSource from '../../../../templates/centos/ifcfg.hbs';
import routeSource from '../../../../templates/centos/route.hbs';
import ruleSource from '../../../../templates/centos/rule.hbs';

/** Inputs of the CentOS renderer besides the model. */
export type CentosRenderOptions = LinuxRenderOptions;

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
const route = compileTemplate<{
  table: number;
  device: string;
  mac: string;
  cidr: string;
  primaryIp: string;
  gateway: string;
  proto: number;
}>(routeSource);
const rule = compileTemplate<{ notes: string[]; rules: string[] }>(ruleSource);

const FILE_MODE = 0o644;

/** Renders the CentOS files (ifcfg/route/rule, sysctl drop-in) and the runtime state they describe. Pure. */
export function renderCentos(model: InstanceModel, options: CentosRenderOptions): LinuxDesiredState {
  const layouts = nicLayouts(model, options);
  const runtime = linuxRuntime(layouts, options.routing, options.connectionMarks !== false);
  const files: RenderedFile[] = [];
  const main = runtime.rules.find((r) => r.suppressPrefixLength !== undefined);
  let mainWritten = false;
  for (const layout of layouts) {
    const { nic, device, addresses, policy } = layout;
    files.push({
      path: networkScript('ifcfg', device),
      mode: FILE_MODE,
      content: ifcfg({
        mac: nic.mac,
        ...(nic.subnetId !== undefined ? { subnetId: nic.subnetId } : {}),
        cidr: nic.cidr,
        routingNote: routingNote(layout),
        device,
        addresses: addresses.map(({ ip, netmask }) => ({ ip, netmask })),
        gateway: nic.gateway,
        // Every secondary NIC, in both modes: at boot ifup-eth replaces the main default route with each NIC's GATEWAY unless DEFROUTE=no.
        noDefaultRoute: !nic.isPrimaryNic,
      }),
    });
    if (policy === undefined) continue;
    const { table, primaryIp } = policy;
    files.push({
      path: networkScript('route', device),
      mode: FILE_MODE,
      content: route({
        table,
        device,
        mac: nic.mac,
        cidr: nic.cidr,
        primaryIp,
        gateway: nic.gateway,
        proto: ROUTE_PROTO,
      }),
    });
    const notes = [
      `Traffic from the addresses of ${device} (NIC ${nic.mac}) is routed by table ${table}: to its own subnet ${nic.cidr} first, then the rest.`,
    ];
    if (policy.mark !== undefined) {
      notes.push(
        `Replies of connections to them that were forwarded or NATed (a container's published port) ` +
          `carry mark ${fwmarkSelector(policy.mark)} (nftables table inet eip-agent) and take the same table.`,
      );
    }
    const rules = nicRules(device, nic.cidr, policy);
    // The rule that lets main's own routes win goes in the first policy-routed NIC's file, a file the agent writes
    // anyway (a rule-eth0 may be the user's own, which the agent never replaces).
    if (main !== undefined && !mainWritten) {
      notes.push(
        "Main's own routes (a container bridge, a VPN, a peering route) win over the agent's tables, all but main's default route.",
      );
      rules.unshift(main);
      mainWritten = true;
    }
    files.push({
      path: networkScript('rule', device),
      mode: FILE_MODE,
      content: rule({ notes, rules: rules.map(ruleSpec) }),
    });
  }
  files.push(sysctlDropIn(options.routing, runtime));
  for (const file of files) {
    if (file.path.includes('/ifcfg-')) assertShellAssignments(file.path, file.content);
    else assertIpArgumentLines(file.path, file.content.replaceAll(' = ', ' '));
  }
  return { files, runtime };
}
