// Metadata trees of the bench's VMs: N NICs x M private IPs in 10.20.<nic>.0/24 (private, only ever inside the
// bench's namespaces), NAT EIPs from RFC 5737's 203.0.113.0/24.
import type { MetaTree } from '../src/metadata/tree.js';

export interface NicSpec {
  index: number;
  /** Upper-case, as the metadata lists it. */
  mac: string;
  macLower: string;
  ifname: string;
  prefix: number;
  gateway: string;
  ips: string[];
}

export function nicSpecs(nics: number, ipsPerNic: number): NicSpec[] {
  if (nics > 200 || ipsPerNic > 200) throw new Error('nicSpecs: too large');
  return Array.from({ length: nics }, (_, i) => {
    const mac = `52:54:00:B0:00:${i.toString(16).toUpperCase().padStart(2, '0')}`;
    return {
      index: i,
      mac,
      macLower: mac.toLowerCase(),
      ifname: `eth${i}`,
      prefix: 24,
      gateway: `10.20.${i}.1`,
      ips: Array.from({ length: ipsPerNic }, (_, j) => `10.20.${i}.${10 + j}`),
    };
  });
}

/** The tree the emulator serves: the keys the agent reads plus a few it does not (as a real service has). */
export function treeOf(nics: readonly NicSpec[]): MetaTree {
  const macs: MetaTree = {};
  let eip = 1;
  for (const nic of nics) {
    const addresses: MetaTree = {};
    nic.ips.forEach((ip, j) => {
      const dir: MetaTree = { gateway: nic.gateway, 'subnet-mask': '255.255.255.0' };
      // One NAT EIP per NIC, on its primary address.
      if (j === 0 && eip < 255) {
        dir['public-ipv4'] = `203.0.113.${eip++}`;
        dir['public-ipv4-mode'] = 'NAT';
      }
      addresses[ip] = dir;
    });
    macs[nic.mac] = {
      'primary-local-ipv4': nic.ips[0] as string,
      'vpc-id': 'vpc-bench0001',
      'subnet-id': `subnet-bench${String(nic.index).padStart(3, '0')}`,
      'local-ipv4s': addresses,
    };
  }
  const first = nics[0];
  if (first === undefined) throw new Error('treeOf: no NICs');
  return {
    'instance-id': 'ins-bench0001',
    'instance-name': 'bench',
    hostname: 'bench-vm',
    mac: first.mac,
    'local-ipv4': first.ips[0] as string,
    'public-ipv4': '203.0.113.1',
    placement: { region: 'ap-example-1', zone: 'ap-example-1a' },
    instance: { 'instance-type': 'S5.LARGE8', 'image-id': 'img-bench001' },
    network: { interfaces: { macs } },
  };
}

/** Requests a crawler that lists every directory and fetches every leaf would make (no knowledge of the keys). */
export function fullCrawlRequests(tree: MetaTree): number {
  let count = 1; // the root listing
  for (const value of Object.values(tree)) count += typeof value === 'string' ? 1 : fullCrawlRequests(value);
  return count;
}

export function addressCount(nics: readonly NicSpec[]): number {
  return nics.reduce((n, nic) => n + nic.ips.length, 0);
}
