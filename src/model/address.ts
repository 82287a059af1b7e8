import { ValidationError } from '../errors.js';
import type { MetaTree } from '../metadata/tree.js';
import { ipv4Text, prefixMask, subnetEnds, type Ipv4 } from './ipv4.js';
import { optionalLeaf, requiredLeaf } from './nodes.js';
import type { PrivateAddress, PublicIpMode } from './types.js';
import { parseIpv4, parseNicNetmask, parsePublicIpv4, parsePublicMode } from './validate.js';

/** The subnet every address of a NIC must sit in; the NIC's primary address fixes it. */
export interface NicSubnet {
  /** Its network and broadcast addresses, as numbers. */
  first: number;
  last: number;
  prefixLength: number;
  netmask: string;
  network: string;
  cidr: string;
  gateway: string;
}

/** Addresses seen so far across the whole instance, to report duplicates on their second occurrence. */
export interface SeenAddresses {
  /** Private IP → its directory path. */
  privateIps: Map<string, string>;
  /** Public IP → path of the `public-ipv4` leaf that bound it first. */
  publicIps: Map<string, string>;
}

function subnetOf(ip: Ipv4, prefixLength: number, gateway: string): NicSubnet {
  const { first, last } = subnetEnds(ip.value, prefixLength);
  const network = ipv4Text(first);
  return {
    first,
    last,
    prefixLength,
    netmask: ipv4Text(prefixMask(prefixLength)),
    network,
    cidr: `${network}/${prefixLength}`,
    gateway,
  };
}

function contains(subnet: NicSubnet, ip: Ipv4): boolean {
  return ip.value >= subnet.first && ip.value <= subnet.last;
}

// Neither end of a subnet can be a host: the network address names the subnet, the broadcast reaches all of it.
function checkHost(path: string, ip: Ipv4, subnet: NicSubnet): void {
  if (ip.value === subnet.first) throw new ValidationError(path, ip.text, `is the network address of ${subnet.cidr}`);
  if (ip.value === subnet.last) throw new ValidationError(path, ip.text, `is the broadcast address of ${subnet.cidr}`);
}

/**
 * Validates one `local-ipv4s/<ip>/` directory. Without `nicSubnet` this is the NIC's primary address and defines
 * the subnet (ip/mask, which the gateway must sit in); otherwise mask and gateway must match the primary's.
 */
export function buildAddress(
  dir: MetaTree,
  path: string,
  ip: Ipv4,
  nicSubnet: NicSubnet | undefined,
  seen: SeenAddresses,
): { address: PrivateAddress; subnet: NicSubnet } {
  const ipText = ip.text;
  const first = seen.privateIps.get(ipText);
  if (first !== undefined) throw new ValidationError(path, ipText, `is already assigned at ${first}`);
  seen.privateIps.set(ipText, path);

  const dirPath = `${path}/`;
  const gatewayText = requiredLeaf(dir, dirPath, 'gateway');
  const gateway = parseIpv4(dirPath + 'gateway', gatewayText);
  const maskText = requiredLeaf(dir, dirPath, 'subnet-mask');
  const prefixLength = parseNicNetmask(dirPath + 'subnet-mask', maskText);

  let subnet: NicSubnet;
  if (nicSubnet === undefined) {
    subnet = subnetOf(ip, prefixLength, gatewayText);
    checkHost(path, ip, subnet);
    if (!contains(subnet, gateway))
      throw new ValidationError(dirPath + 'gateway', gatewayText, `is outside subnet ${subnet.cidr}`);
    checkHost(dirPath + 'gateway', gateway, subnet);
  } else {
    subnet = nicSubnet;
    if (prefixLength !== subnet.prefixLength) {
      throw new ValidationError(
        dirPath + 'subnet-mask',
        maskText,
        `differs from the NIC's primary IP (${subnet.netmask})`,
      );
    }
    if (gatewayText !== subnet.gateway) {
      throw new ValidationError(
        dirPath + 'gateway',
        gatewayText,
        `differs from the NIC's primary IP (${subnet.gateway})`,
      );
    }
    if (!contains(subnet, ip)) {
      const detail = `(gateway ${subnet.gateway}, mask ${subnet.netmask})`;
      throw new ValidationError(path, ipText, `is outside subnet ${subnet.cidr} ${detail}`);
    }
    checkHost(path, ip, subnet);
  }

  const address: PrivateAddress = { ip: ipText, path };
  const publicText = optionalLeaf(dir, dirPath, 'public-ipv4');
  const modeText = optionalLeaf(dir, dirPath, 'public-ipv4-mode');
  if (publicText !== undefined) {
    const publicPath = dirPath + 'public-ipv4';
    parsePublicIpv4(publicPath, publicText);
    const boundAt = seen.publicIps.get(publicText);
    if (boundAt !== undefined) throw new ValidationError(publicPath, publicText, `is already bound at ${boundAt}`);
    seen.publicIps.set(publicText, publicPath);
    address.publicIp = publicText;
  }
  // A mode without an EIP is meaningless but harmless; it is still checked because everything read is.
  const mode: PublicIpMode | undefined =
    modeText === undefined ? undefined : parsePublicMode(dirPath + 'public-ipv4-mode', modeText);
  if (address.publicIp !== undefined) address.publicMode = mode ?? 'NAT';
  return { address, subnet };
}
