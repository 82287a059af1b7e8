// Metadata trees for lab tests; each call returns a fresh object, so a test may mutate its copy freely.
import type { MetaTree } from '../../src/metadata/tree.js';

/** One `local-ipv4s/<ip>/` directory; `publicIp` adds an EIP in `mode`. */
function address(gateway: string, mask: string, publicIp?: string, mode: 'NAT' | 'direct' = 'NAT'): MetaTree {
  const dir: MetaTree = { gateway, 'subnet-mask': mask };
  if (publicIp !== undefined) {
    dir['public-ipv4'] = publicIp;
    dir['public-ipv4-mode'] = mode;
  }
  return dir;
}

/** The product manual's example: eth0 10.0.0.2 + .3, eth1 10.0.0.7 + .8 in 10.0.0.0/24, NAT EIPs 203.0.113.10..13 in that order. */
/** The EIPs of manualTree(): eth0's 10.0.0.2 and 10.0.0.3, eth1's 10.0.0.7 and 10.0.0.8. */
export const MANUAL_EIPS = ['203.0.113.10', '203.0.113.11', '203.0.113.12', '203.0.113.13'] as const;

export function manualTree(): MetaTree {
  const a = (publicIp: string): MetaTree => address('10.0.0.1', '255.255.255.0', publicIp);
  return {
    'instance-id': 'ins-lab00001',
    mac: '52:54:00:8A:7A:64',
    'local-ipv4': '10.0.0.2',
    placement: { region: 'ap-example-1', zone: 'ap-example-1a' },
    network: {
      interfaces: {
        macs: {
          '52:54:00:8A:7A:64': {
            'primary-local-ipv4': '10.0.0.2',
            'vpc-id': 'vpc-lab00001',
            'subnet-id': 'subnet-lab0001',
            'local-ipv4s': { '10.0.0.2': a('203.0.113.10'), '10.0.0.3': a('203.0.113.11') },
          },
          '20:90:6F:F7:93:2E': {
            'primary-local-ipv4': '10.0.0.7',
            'vpc-id': 'vpc-lab00001',
            'subnet-id': 'subnet-lab0001',
            'local-ipv4s': { '10.0.0.7': a('203.0.113.12'), '10.0.0.8': a('203.0.113.13') },
          },
        },
      },
    },
  };
}

/**
 * Three NICs in three subnets, one of them a /20 whose primary IP is outside the first /24:
 * eth0 52:54:00:12:34:56 10.1.3.4 (NAT EIP 203.0.113.20) + 10.1.15.200 (no EIP), 10.1.0.0/20 gw 10.1.0.1;
 * eth1 52:54:00:AB:CD:01 10.1.16.5 (direct EIP 203.0.113.21), 10.1.16.0/24 gw 10.1.16.1;
 * eth2 52:54:00:AB:CD:02 172.16.5.10 (no EIP), 172.16.5.0/24 gw 172.16.5.1.
 * The `macs/` listing puts eth1 before eth0, as a real listing may: eth0 is the top-level `mac`, not the first entry.
 */
export function threeNicTree(): MetaTree {
  return {
    'instance-id': 'ins-lab00003',
    mac: '52:54:00:12:34:56',
    'local-ipv4': '10.1.3.4',
    network: {
      interfaces: {
        macs: {
          '52:54:00:AB:CD:01': {
            'primary-local-ipv4': '10.1.16.5',
            'vpc-id': 'vpc-lab00003',
            'subnet-id': 'subnet-lab0032',
            'local-ipv4s': { '10.1.16.5': address('10.1.16.1', '255.255.255.0', '203.0.113.21', 'direct') },
          },
          '52:54:00:12:34:56': {
            'primary-local-ipv4': '10.1.3.4',
            'vpc-id': 'vpc-lab00003',
            'subnet-id': 'subnet-lab0031',
            'local-ipv4s': {
              '10.1.3.4': address('10.1.0.1', '255.255.240.0', '203.0.113.20'),
              '10.1.15.200': address('10.1.0.1', '255.255.240.0'),
            },
          },
          '52:54:00:AB:CD:02': {
            'primary-local-ipv4': '172.16.5.10',
            'vpc-id': 'vpc-lab00003',
            'subnet-id': 'subnet-lab0033',
            'local-ipv4s': { '172.16.5.10': address('172.16.5.1', '255.255.255.0') },
          },
        },
      },
    },
  };
}

/** The MAC of server B, a second guest in the manual example's subnet. */
export const SERVER_B_MAC = '52:54:00:00:00:20';

/** Server B: one NIC in the manual's subnet with 10.0.0.20, plus whatever secondary IPs the cloud gives it. */
export function serverBTree(secondaries: Record<string, MetaTree> = {}): MetaTree {
  return {
    'instance-id': 'ins-lab0000b',
    mac: SERVER_B_MAC,
    network: {
      interfaces: {
        macs: {
          [SERVER_B_MAC]: {
            'primary-local-ipv4': '10.0.0.20',
            'local-ipv4s': { '10.0.0.20': address('10.0.0.1', '255.255.255.0'), ...secondaries },
          },
        },
      },
    },
  };
}

/** 10.0.0.8 with its EIP 203.0.113.13, as the cloud lists it wherever it is bound. */
export function movedAddress(): Record<string, MetaTree> {
  return { '10.0.0.8': address('10.0.0.1', '255.255.255.0', '203.0.113.13') };
}

/** The manual's tree without 10.0.0.8 (moved to another server). */
export function manualTreeWithout8(): MetaTree {
  const tree = manualTree();
  const macs = ((tree.network as MetaTree).interfaces as MetaTree).macs as MetaTree;
  delete ((macs['20:90:6F:F7:93:2E'] as MetaTree)['local-ipv4s'] as MetaTree)['10.0.0.8'];
  return tree;
}

/** The manual tree in which eth1's primary is 10.0.0.8 and 10.0.0.7 is gone. */
export function treeWith8AsPrimary(): MetaTree {
  const tree = manualTree();
  const nic = (((tree.network as MetaTree).interfaces as MetaTree).macs as MetaTree)['20:90:6F:F7:93:2E'] as MetaTree;
  delete (nic['local-ipv4s'] as MetaTree)['10.0.0.7'];
  nic['primary-local-ipv4'] = '10.0.0.8';
  return tree;
}
