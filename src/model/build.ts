import { ValidationError } from '../errors.js';
import type { MetaTree } from '../metadata/tree.js';
import type { SeenAddresses } from './address.js';
import { buildNic } from './nic.js';
import type { NicDraft } from './nic.js';
import { isDir, namePath, optionalDir, optionalLeaf, requiredDir, requiredLeaf } from './nodes.js';
import type { InstanceModel, NicModel } from './types.js';
import { checkId, checkMac, parseIpv4 } from './validate.js';

const MACS = 'network/interfaces/macs/';

// Missing anywhere along the way means "no NIC listing", so that is reported on the listing itself.
function macsListing(tree: MetaTree): MetaTree {
  const network = optionalDir(tree, '', 'network');
  const interfaces = network && optionalDir(network, 'network/', 'interfaces');
  const macs = interfaces && optionalDir(interfaces, 'network/interfaces/', 'macs');
  if (macs === undefined) throw new ValidationError(MACS, undefined, 'is required but missing');
  if (Object.keys(macs).length === 0) throw new ValidationError(MACS, undefined, 'lists no interfaces');
  return macs;
}

// Checks that need every NIC: a gateway or EIP must not be one of the instance's private IPs.
function checkAcrossNics(drafts: NicDraft[], seen: SeenAddresses): void {
  for (const { fields, primary } of drafts) {
    const gatewayAt = seen.privateIps.get(fields.gateway);
    if (gatewayAt !== undefined) {
      throw new ValidationError(
        `${primary.path}/gateway`,
        fields.gateway,
        `is also assigned as a private IP at ${gatewayAt}`,
      );
    }
    for (const address of fields.addresses) {
      const publicAt = address.publicIp === undefined ? undefined : seen.privateIps.get(address.publicIp);
      if (publicAt !== undefined) {
        throw new ValidationError(
          `${address.path}/public-ipv4`,
          address.publicIp,
          `is also assigned as a private IP at ${publicAt}`,
        );
      }
    }
  }
}

/**
 * Turns the raw metadata tree into the validated model, or throws the first ValidationError in a fixed order:
 * top-level values, then NICs in listing order (each NIC's primary address first), then cross-NIC checks.
 * Pure: no I/O, so it is the one place the renderers' safety rests on.
 */
export function buildModel(tree: MetaTree): InstanceModel {
  if (!isDir(tree)) throw new ValidationError('/', undefined, 'expected a directory');
  const instanceId = optionalLeaf(tree, '', 'instance-id');
  if (instanceId !== undefined) checkId('instance-id', instanceId);
  const mac = checkMac('mac', requiredLeaf(tree, '', 'mac'));
  const localIpv4 = optionalLeaf(tree, '', 'local-ipv4');
  if (localIpv4 !== undefined) parseIpv4('local-ipv4', localIpv4);
  const placement = optionalDir(tree, '', 'placement');
  const region = placement && optionalLeaf(placement, 'placement/', 'region');
  if (region !== undefined) checkId('placement/region', region);

  const macs = macsListing(tree);
  const macLower = mac.toLowerCase();
  const names = Object.keys(macs);
  if (!names.some((name) => name.toLowerCase() === macLower)) {
    throw new ValidationError('mac', mac, `is not listed under ${MACS}`);
  }

  const seen: SeenAddresses = { privateIps: new Map(), publicIps: new Map() };
  const firstSpelling = new Map<string, string>();
  const drafts = names.map((name) => {
    checkMac(namePath(MACS, name), name);
    // The metadata service's URLs are case-sensitive but the MAC is not: two spellings are one NIC twice.
    const earlier = firstSpelling.get(name.toLowerCase());
    if (earlier !== undefined) throw new ValidationError(MACS + name, name, `is listed twice (also as ${earlier})`);
    firstSpelling.set(name.toLowerCase(), name);
    const dir = requiredDir(macs, MACS, name);
    return buildNic(dir, `${MACS}${name}/`, name, seen);
  });
  checkAcrossNics(drafts, seen);

  const primaryDraft = drafts.find((d) => d.fields.macLower === macLower);
  if (primaryDraft === undefined) throw new ValidationError('mac', mac, `is not listed under ${MACS}`);
  if (localIpv4 !== undefined && localIpv4 !== primaryDraft.primary.ip) {
    throw new ValidationError(
      'local-ipv4',
      localIpv4,
      `differs from the primary NIC's primary-local-ipv4 (${primaryDraft.primary.ip})`,
    );
  }

  const ordered = [primaryDraft, ...drafts.filter((d) => d !== primaryDraft)];
  const nics: NicModel[] = ordered.map((d, index) => ({ ...d.fields, isPrimaryNic: d === primaryDraft, index }));
  return {
    ...(instanceId !== undefined && { instanceId }),
    ...(region !== undefined && { region }),
    primaryMac: primaryDraft.fields.mac,
    nics,
  };
}
