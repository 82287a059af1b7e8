import { AgentError } from '../errors.js';
import type { InstanceModel } from './types.js';

/** A network link as the OS reports it (`ip -j link`). */
export interface SystemLink {
  ifname: string;
  /** Lower-case MAC. */
  mac: string;
  /** Link type from `ip -d` (vlan, bridge...); absent for a physical NIC. */
  kind?: string;
  master?: string;
}

/** Link types that copy their parent's MAC: never the ENI itself. */
const UPPER_KINDS = new Set(['vlan', 'macvlan', 'macvtap', 'ipvlan', 'ipvtap', 'bridge', 'bond', 'team', 'vxlan']);

/** The links that can be the ENI with this MAC: not a VLAN/bridge/bond on top of it, not enslaved. */
function candidates(links: readonly SystemLink[], mac: string): SystemLink[] {
  const same = links.filter((l) => l.mac.toLowerCase() === mac);
  const plain = same.filter((l) => (l.kind === undefined || !UPPER_KINDS.has(l.kind)) && l.master === undefined);
  return plain.length > 0 ? plain : same;
}

/** Interface names per lower-case MAC, and what could not be named from the system. */
export interface NameResolution {
  names: Map<string, string>;
  /** NICs the system does not have (MAC as listed in the metadata). */
  missing: string[];
  warnings: string[];
}

/**
 * Names each NIC after the system link with its MAC (compared case-insensitively). With
 * `offline`, a NIC the system does not have is named as a fresh guest would name it: eth0 for
 * the primary NIC, then eth1, eth2... in listing order, skipping names the system already uses
 * for other MACs; each such guess is reported as a warning. Without `offline` it is reported as missing.
 */
export function resolveInterfaceNames(
  model: InstanceModel,
  links: readonly SystemLink[] | null,
  offline: boolean,
): NameResolution {
  const names = new Map<string, string>();
  const missing: string[] = [];
  const warnings: string[] = [];
  const taken = new Set((links ?? []).map((l) => l.ifname));
  for (const nic of model.nics) {
    const found = candidates(links ?? [], nic.macLower);
    if (found.length > 1) {
      throw new AgentError(
        'apply',
        `several interfaces carry the MAC ${nic.mac} of one NIC (${found.map((l) => l.ifname).join(', ')}): cannot tell which one is the ENI`,
      );
    }
    if (found[0] !== undefined) names.set(nic.macLower, found[0].ifname);
  }
  let next = 0;
  for (const nic of model.nics) {
    if (names.has(nic.macLower)) continue;
    if (!offline) {
      missing.push(nic.mac);
      continue;
    }
    // The primary NIC is first in the model, so it gets eth0 unless the system uses that name.
    while (taken.has(`eth${next}`) || [...names.values()].includes(`eth${next}`)) next += 1;
    const guess = `eth${next}`;
    names.set(nic.macLower, guess);
    warnings.push(
      `NIC ${nic.mac} is not present on this system; previewing it as ${guess} (the OS may name it differently; its runtime changes are not listed)`,
    );
  }
  return { names, missing, warnings };
}
