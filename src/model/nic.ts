import { ValidationError } from '../errors.js';
import type { MetaTree } from '../metadata/tree.js';
import { buildAddress } from './address.js';
import type { NicSubnet, SeenAddresses } from './address.js';
import { namePath, optionalLeaf, requiredDir, requiredLeaf } from './nodes.js';
import type { NicModel, PrivateAddress } from './types.js';
import { checkId, parseIpv4 } from './validate.js';

/** A validated NIC before the instance-level ordering assigns `index` and `isPrimaryNic`. */
export interface NicDraft {
  fields: Omit<NicModel, 'index' | 'isPrimaryNic'>;
  /** The NIC's primary address (also `fields.addresses[0]`), kept typed for cross-NIC checks. */
  primary: PrivateAddress;
}

/** Validates `network/interfaces/macs/<mac>/` (`nicPath` ends in `/`); `mac` is the already-checked listed name. */
export function buildNic(dir: MetaTree, nicPath: string, mac: string, seen: SeenAddresses): NicDraft {
  const primaryText = requiredLeaf(dir, nicPath, 'primary-local-ipv4');
  parseIpv4(nicPath + 'primary-local-ipv4', primaryText);
  const vpcId = optionalLeaf(dir, nicPath, 'vpc-id');
  if (vpcId !== undefined) checkId(nicPath + 'vpc-id', vpcId);
  const subnetId = optionalLeaf(dir, nicPath, 'subnet-id');
  if (subnetId !== undefined) checkId(nicPath + 'subnet-id', subnetId);

  const listPath = nicPath + 'local-ipv4s/';
  const list = requiredDir(dir, nicPath, 'local-ipv4s');
  const entries = Object.keys(list).map((name) => {
    const ip = parseIpv4(namePath(listPath, name), name);
    return { ip, path: listPath + name, dir: requiredDir(list, listPath, name) };
  });
  const primaryEntry = entries.find((e) => e.ip.text === primaryText);
  if (entries.length === 0) throw new ValidationError(listPath, undefined, 'lists no addresses');
  if (primaryEntry === undefined)
    throw new ValidationError(nicPath + 'primary-local-ipv4', primaryText, 'is not listed in local-ipv4s/');

  // The primary goes first: it fixes the NIC's subnet, and the model lists it first too.
  const primary = buildAddress(primaryEntry.dir, primaryEntry.path, primaryEntry.ip, undefined, seen);
  const subnet: NicSubnet = primary.subnet;
  const addresses = [primary.address];
  for (const e of entries) {
    if (e !== primaryEntry) addresses.push(buildAddress(e.dir, e.path, e.ip, subnet, seen).address);
  }

  const fields: NicDraft['fields'] = {
    mac,
    macLower: mac.toLowerCase(),
    ...(vpcId !== undefined && { vpcId }),
    ...(subnetId !== undefined && { subnetId }),
    prefixLength: subnet.prefixLength,
    netmask: subnet.netmask,
    network: subnet.network,
    cidr: subnet.cidr,
    gateway: subnet.gateway,
    addresses,
  };
  return { fields, primary: primary.address };
}
