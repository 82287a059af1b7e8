import type { PipelineOptions } from '../../src/pipeline.js';
// The product manual's instance (test/lab/fixtures.ts manualTree()) as a guest: a fresh CentOS 7 boot
// (cloud-init DHCP on eth0, eth1 attached but down), the files the agent must write for it in policy
// mode, and hand-made live states for the pure planners and the verifier.
import type { LinuxLiveState } from '../../src/targets/linux/live-state.js';
import type { AgentState, Owned } from '../../src/plan/record.js';
import { emptyState } from '../../src/plan/record.js';
import { marksScript } from '../../src/targets/linux/marks.js';
import { buildModel } from '../../src/model/index.js';
import { modelHash } from '../../src/pipeline.js';
import { renderCentos } from '../../src/targets/linux/centos/render.js';
import type { LinuxDesiredState, RoutingMode } from '../../src/render/types.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { manualTree } from '../lab/fixtures.js';
import type { KernelState } from './fake-kernel.js';
import { sysctlFiles } from './fake-kernel.js';
import { CENTOS7_BOOT_FILES, CENTOS7_BOOT_LINK } from '../../src/sandbox/guest-root.js';

export const MAC0 = '52:54:00:8a:7a:64';
export const MAC1 = '20:90:6f:f7:93:2e';
export const SCRIPTS = '/etc/sysconfig/network-scripts';

/** Pipeline options for the fake guest: metadata from /meta.json in memfs, policy routing, runtime on. */
export const GUEST_OPTIONS: PipelineOptions = {
  metadataUrl: 'http://unused/',
  metadataFile: '/meta.json',
  root: '/',
  target: 'centos',
  routing: 'policy',
  runtime: true,
  requireNics: false,
  reload: 'none',
};
export const SYSCTL_DROPIN = '/etc/sysctl.d/99-zz-eip-agent.conf';

/** ifcfg-eth0 as cloud-init leaves it on a fresh CentOS 7 guest. */
export const CLOUD_INIT_ETH0 = [
  '# Created by cloud-init on instance boot automatically, do not edit.',
  '#',
  'BOOTPROTO=dhcp',
  'DEVICE=eth0',
  `HWADDR=${MAC0}`,
  'ONBOOT=yes',
  'PERSISTENT_DHCLIENT=yes',
  'TYPE=Ethernet',
  'USERCTL=no',
  '',
].join('\n');

/** iproute2's stock rt_tables. */
export const RT_TABLES =
  '#\n# reserved values\n#\n255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n#\n# local\n#\n#1\tinr.ruhep\n';

/** CentOS defaults: strict reverse-path filtering everywhere. */
export const GUEST_SYSCTLS: Readonly<Record<string, string>> = {
  'net.ipv4.conf.all.rp_filter': '1',
  'net.ipv4.conf.default.rp_filter': '1',
  'net.ipv4.conf.lo.rp_filter': '0',
  'net.ipv4.conf.eth0.rp_filter': '1',
  'net.ipv4.conf.eth1.rp_filter': '1',
  // The kernel default: deleting a subnet's first address deletes its other addresses too.
  'net.ipv4.conf.eth0.promote_secondaries': '0',
  'net.ipv4.conf.eth1.promote_secondaries': '0',
};

/** The memfs content of a fresh guest with the metadata at /meta.json. */
export function guestFiles(tree: unknown = manualTree()): Record<string, string> {
  return {
    '/meta.json': JSON.stringify(tree),
    [`${SCRIPTS}/ifcfg-eth0`]: CLOUD_INIT_ETH0,
    [`${SCRIPTS}/ifcfg-lo`]: 'DEVICE=lo\nIPADDR=127.0.0.1\nNETMASK=255.0.0.0\nONBOOT=yes\nNAME=loopback\n',
    '/etc/sysctl.d/99-sysctl.conf': '# System default settings live in /usr/lib/sysctl.d/00-system.conf.\n',
    '/etc/iproute2/rt_tables': RT_TABLES,
    // A CentOS 7 guest: initscripts' network service, installed and enabled (what reads the ifcfg files at boot).
    ...CENTOS7_BOOT_FILES,
    [CENTOS7_BOOT_LINK]: '',
    // dhclient's lease of eth0, as on any DHCP guest (it also gives the guest a /var/lib, as every system has).
    '/var/lib/dhclient/dhclient--eth0.lease': 'lease {\n  interface "eth0";\n  fixed-address 10.0.0.2;\n}\n',
    ...sysctlFiles(GUEST_SYSCTLS),
  };
}

/** The kernel of a fresh guest: eth0 up with its DHCP address and default route, eth1 attached but down. */
export function freshKernel(): KernelState {
  return {
    links: [
      { ifname: 'lo', mac: '00:00:00:00:00:00', up: true, addresses: [{ ip: '127.0.0.1', prefixLength: 8 }] },
      { ifname: 'eth0', mac: MAC0, up: true, addresses: [{ ip: '10.0.0.2', prefixLength: 24 }] },
      { ifname: 'eth1', mac: MAC1, up: false, addresses: [] },
    ],
    rules: [
      { priority: 0, from: 'all', table: 'local' },
      { priority: 32766, from: 'all', table: 'main' },
      { priority: 32767, from: 'all', table: 'default' },
    ],
    routes: [{ table: 'main', dst: 'default', dev: 'eth0', gateway: '10.0.0.1', protocol: 'dhcp' }],
  };
}

const MANAGED = '# Managed by eip-agent: generated from instance metadata, local edits are replaced.';

/** What the agent must write for the manual tree in policy mode (eth1 in table 10001). */
export const POLICY_FILES: Readonly<Record<string, string>> = {
  [`${SCRIPTS}/ifcfg-eth0`]: [
    MANAGED,
    '# NIC 52:54:00:8A:7A:64 in subnet-lab0001, subnet 10.0.0.0/24, primary NIC (main routing table)',
    'BOOTPROTO=static',
    'DEVICE=eth0',
    'HWADDR=52:54:00:8A:7A:64',
    'IPADDR0=10.0.0.2',
    'NETMASK0=255.255.255.0',
    'IPADDR1=10.0.0.3',
    'NETMASK1=255.255.255.0',
    'GATEWAY=10.0.0.1',
    'NM_CONTROLLED=no',
    'ONBOOT=yes',
    'PERSISTENT_DHCLIENT=yes',
    'TYPE=Ethernet',
    'USERCTL=no',
    '',
  ].join('\n'),
  [`${SCRIPTS}/ifcfg-eth1`]: [
    MANAGED,
    '# NIC 20:90:6F:F7:93:2E in subnet-lab0001, subnet 10.0.0.0/24, secondary NIC (policy routing, table 10001)',
    'BOOTPROTO=static',
    'DEVICE=eth1',
    'HWADDR=20:90:6F:F7:93:2E',
    'IPADDR0=10.0.0.7',
    'NETMASK0=255.255.255.0',
    'IPADDR1=10.0.0.8',
    'NETMASK1=255.255.255.0',
    'GATEWAY=10.0.0.1',
    'DEFROUTE=no',
    'NM_CONTROLLED=no',
    'ONBOOT=yes',
    'PERSISTENT_DHCLIENT=yes',
    'TYPE=Ethernet',
    'USERCTL=no',
    '',
  ].join('\n'),
  [`${SCRIPTS}/route-eth1`]: [
    MANAGED,
    '# Routing table 10001 for eth1 (NIC 20:90:6F:F7:93:2E): replies from its addresses leave through it.',
    '10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001 proto 234',
    'default via 10.0.0.1 dev eth1 table 10001 proto 234',
    '',
  ].join('\n'),
  [`${SCRIPTS}/rule-eth1`]: [
    MANAGED,
    '# Traffic from the addresses of eth1 (NIC 20:90:6F:F7:93:2E) is routed by table 10001: to its own subnet 10.0.0.0/24 first, then the rest.',
    "# Replies of connections to them that were forwarded or NATed (a container's published port) carry mark 0x1000000/0xf000000 (nftables table inet eip-agent) and take the same table.",
    "# Main's own routes (a container bridge, a VPN, a peering route) win over the agent's tables, all but main's default route.",
    'from all table 254 suppress_prefixlength 0 priority 30000',
    'from 10.0.0.7/32 to 10.0.0.0/24 table 10001 priority 29001',
    'from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
    'from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001 priority 29001',
    'from 10.0.0.7/32 table 10001 priority 30001',
    'from 10.0.0.8/32 table 10001 priority 30001',
    'from all fwmark 0x1000000/0xf000000 table 10001 priority 30001',
    '',
  ].join('\n'),
  [SYSCTL_DROPIN]: [
    MANAGED,
    '# Reverse-path filtering for routing mode "policy". The kernel uses max(all, <interface>).',
    "# promote_secondaries: deleting a subnet's first address keeps the others (the kernel default deletes them all).",
    "# arp_ignore, arp_announce: each address is answered only by the NIC that holds it, and ARP asks from an address in the target's subnet.",
    'net.ipv4.conf.default.rp_filter = 2',
    'net.ipv4.conf.eth1.rp_filter = 2',
    'net.ipv4.conf.eth0.promote_secondaries = 1',
    'net.ipv4.conf.eth1.promote_secondaries = 1',
    'net.ipv4.conf.eth0.arp_ignore = 1',
    'net.ipv4.conf.eth0.arp_announce = 1',
    'net.ipv4.conf.eth1.arp_ignore = 1',
    'net.ipv4.conf.eth1.arp_announce = 1',
    '',
  ].join('\n'),
};

/** The `ip -batch` lines that take a fresh guest to the manual's policy-mode state, in order. */
export const FRESH_BATCH = [
  'link set dev eth1 up',
  'address add 10.0.0.3/24 dev eth0',
  'address add 10.0.0.7/24 dev eth1',
  'address add 10.0.0.8/24 dev eth1',
  'route replace 10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001 proto 234',
  'route replace default via 10.0.0.1 dev eth1 table 10001 proto 234',
  'rule add from all table 254 suppress_prefixlength 0 priority 30000',
  'rule add from 10.0.0.7/32 to 10.0.0.0/24 table 10001 priority 29001',
  'rule add from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
  'rule add from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001 priority 29001',
  'rule add from 10.0.0.7/32 table 10001 priority 30001',
  'rule add from 10.0.0.8/32 table 10001 priority 30001',
  'rule add from all fwmark 0x1000000/0xf000000 table 10001 priority 30001',
];

/** The undo line of each FRESH_BATCH line, index for index. */
export const FRESH_UNDO = [
  'link set dev eth1 down',
  'address del 10.0.0.3/24 dev eth0',
  'address del 10.0.0.7/24 dev eth1',
  'address del 10.0.0.8/24 dev eth1',
  'route del 10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001',
  'route del default via 10.0.0.1 dev eth1 table 10001',
  'rule del from all table 254 suppress_prefixlength 0 priority 30000',
  'rule del from 10.0.0.7/32 to 10.0.0.0/24 table 10001 priority 29001',
  'rule del from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
  'rule del from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001 priority 29001',
  'rule del from 10.0.0.7/32 table 10001 priority 30001',
  'rule del from 10.0.0.8/32 table 10001 priority 30001',
  'rule del from all fwmark 0x1000000/0xf000000 table 10001 priority 30001',
];

/** The `rule del` lines of FRESH_UNDO, in the order of the rules (main's, the subnet rules, the `from` rules). */
export const RULE_UNDO = FRESH_UNDO.filter((line) => line.startsWith('rule del '));

/** The clock of test hosts that record state (timestamps in the state file), and its ISO form. */
export const NOW = Date.UTC(2025, 0, 2, 3, 4, 5);
export const NOW_ISO = '2025-01-02T03:04:05.000Z';

/** modelHash of the manual tree. */
export const MANUAL_HASH = modelHash(buildModel(manualTree()));

/** What the agent owns once it has applied the manual tree to a fresh guest in policy mode. */
export function manualOwned(): Owned {
  return {
    addresses: [
      { ifname: 'eth0', mac: MAC0, cidr: '10.0.0.3/24' },
      { ifname: 'eth1', mac: MAC1, cidr: '10.0.0.7/24' },
      { ifname: 'eth1', mac: MAC1, cidr: '10.0.0.8/24' },
    ],
    rules: [
      { from: 'all', table: 254, priority: 30000, suppressPrefixLength: 0 },
      { from: '10.0.0.7', to: '10.0.0.0/24', table: 10001, priority: 29001 },
      { from: '10.0.0.8', to: '10.0.0.0/24', table: 10001, priority: 29001 },
      { from: 'all', to: '10.0.0.0/24', fwmark: '0x1000000/0xf000000', table: 10001, priority: 29001 },
      { from: '10.0.0.7', table: 10001, priority: 30001 },
      { from: '10.0.0.8', table: 10001, priority: 30001 },
      { from: 'all', fwmark: '0x1000000/0xf000000', table: 10001, priority: 30001 },
    ],
    routes: [
      { table: 10001, spec: '10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001', dev: 'eth1' },
      { table: 10001, spec: 'default via 10.0.0.1 dev eth1 table 10001', dev: 'eth1' },
    ],
    files: [
      `${SCRIPTS}/ifcfg-eth0`,
      `${SCRIPTS}/ifcfg-eth1`,
      `${SCRIPTS}/route-eth1`,
      `${SCRIPTS}/rule-eth1`,
      SYSCTL_DROPIN,
    ],
    marks: MANUAL_MARKS,
  };
}

/** The connection marks of the manual tree: eth1 is NIC 1, so its addresses get 0x1000000. */
export const MANUAL_MARKS = [
  { ip: '10.0.0.7', mark: 0x1000000 },
  { ip: '10.0.0.8', mark: 0x1000000 },
];

/** The agent's nftables table once the manual tree is applied, as the fake kernel keeps it. */
export const MANUAL_NFT_TABLE = marksScript(MANUAL_MARKS).slice(
  marksScript(MANUAL_MARKS).indexOf('table inet eip-agent {'),
);

/** The files on a fresh guest that the first apply of the manual tree replaces (null: absent). */
export function freshOriginals(): Record<string, string | null> {
  // The backup the first apply makes is the agent's own file: before it, there was none.
  return {
    [`${SCRIPTS}/ifcfg-eth0`]: CLOUD_INIT_ETH0,
    [`${SCRIPTS}/ifcfg-eth0.bak`]: null,
    [`${SCRIPTS}/ifcfg-eth1`]: null,
    [`${SCRIPTS}/route-eth1`]: null,
    [`${SCRIPTS}/rule-eth1`]: null,
    [SYSCTL_DROPIN]: null,
  };
}

/** Mode and owner of the cloud-init ifcfg-eth0 the first apply replaces (memfs files are 0666, owned by the test's user). */
export const ETH0_META = { mode: 0o666, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

/** The state file after applying the manual tree to a fresh guest (with runtime) at NOW. */
export function manualState(): AgentState {
  const sysctls = {
    'net.ipv4.conf.default.rp_filter': '1',
    'net.ipv4.conf.eth1.rp_filter': '1',
    'net.ipv4.conf.eth0.promote_secondaries': '0',
    'net.ipv4.conf.eth1.promote_secondaries': '0',
  };
  return {
    ...emptyState(),
    owned: manualOwned(),
    originalFiles: freshOriginals(),
    originalSysctls: sysctls,
    originalMeta: { [`${SCRIPTS}/ifcfg-eth0`]: ETH0_META },
    primaryIfname: 'eth0',
    lastSnapshot: {
      at: NOW_ISO,
      files: freshOriginals(),
      runtimeUndo: [...FRESH_UNDO].reverse(),
      sysctls,
      marksUndo: marksScript([]),
      meta: { [`${SCRIPTS}/ifcfg-eth0`]: ETH0_META },
      ownedBefore: emptyState().owned,
    },
    lastApply: { at: NOW_ISO, modelHash: MANUAL_HASH, ok: true },
    lastSuccessAt: NOW_ISO,
    counters: { applies: 1, verifyFailures: 0, rollbacks: 0, metadataErrors: 0 },
  };
}

/** Where the manual tree lists each NIC, and eth1's second address. */
export const NIC0_PATH = 'network/interfaces/macs/52:54:00:8A:7A:64';
export const NIC1_PATH = 'network/interfaces/macs/20:90:6F:F7:93:2E';
export const IP8_PATH = `${NIC1_PATH}/local-ipv4s/10.0.0.8`;

/** A copy of `tree` with the entry at `path` (slash-separated) set to `value`, or deleted when `value` is undefined. */
export function editTree(tree: MetaTree, path: string, value?: MetaTree | string): MetaTree {
  const copy = structuredClone(tree);
  const names = path.split('/');
  const last = names.pop() ?? '';
  let node = copy;
  for (const name of names) {
    const child = node[name];
    if (typeof child !== 'object') throw new Error(`editTree: ${path}: ${name} is not a directory`);
    node = child;
  }
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

/** The manual tree as the metadata lists it once 10.0.0.8 is unassigned from eth1. */
export function treeWithout8(): MetaTree {
  return editTree(manualTree(), IP8_PATH);
}

/** The manual tree once eth1's ENI is detached: the metadata no longer lists its MAC. */
export function treeWithoutEth1(): MetaTree {
  return editTree(manualTree(), NIC1_PATH);
}

/** The manual tree with eth1's 10.0.0.8 EIP 203.0.113.13 in direct mode (the public IP is put on eth1 as a /32). */
export function treeWithDirectEip(): MetaTree {
  return editTree(manualTree(), `${IP8_PATH}/public-ipv4-mode`, 'direct');
}

/** The desired state of `tree` (the manual one by default) with eth0/eth1 named from the system and eth1 in table 10001. */
export function manualDesired(routing: RoutingMode = 'policy', tree: MetaTree = manualTree()): LinuxDesiredState {
  return renderCentos(buildModel(tree), {
    routing,
    names: new Map([
      [MAC0, 'eth0'],
      [MAC1, 'eth1'],
    ]),
    tables: new Map([[1, 10001]]),
  });
}

/** The live state of a fresh guest as readLinuxState reports it. */
export function freshLive(): LinuxLiveState {
  return {
    links: [
      { ifname: 'lo', mac: '00:00:00:00:00:00', up: true, addresses: [{ ip: '127.0.0.1', prefixLength: 8 }] },
      { ifname: 'eth0', mac: MAC0, up: true, addresses: [{ ip: '10.0.0.2', prefixLength: 24 }] },
      { ifname: 'eth1', mac: MAC1, up: false, addresses: [] },
    ],
    rules: [
      { priority: 0, from: 'all', table: 'local' },
      { priority: 32766, from: 'all', table: 'main' },
      { priority: 32767, from: 'all', table: 'default' },
    ],
    routes: [
      { table: 'main', dst: 'default', dev: 'eth0', gateway: '10.0.0.1', protocol: 'dhcp' },
      { table: 'main', dst: '10.0.0.0/24', dev: 'eth0', protocol: 'kernel', prefsrc: '10.0.0.2' },
      { table: 'local', dst: '10.0.0.2', dev: 'eth0', protocol: 'kernel', prefsrc: '10.0.0.2' },
    ],
    sysctls: new Map<string, string | null>([
      ['net.ipv4.conf.all.rp_filter', '1'],
      ['net.ipv4.conf.default.rp_filter', '1'],
      ['net.ipv4.conf.eth0.rp_filter', '1'],
      ['net.ipv4.conf.eth1.rp_filter', '1'],
      ['net.ipv4.conf.eth0.promote_secondaries', '0'],
      ['net.ipv4.conf.eth1.promote_secondaries', '0'],
    ]),
  };
}

/** The live state once the manual's policy-mode configuration is in place. */
export function convergedLive(): LinuxLiveState {
  return {
    links: [
      { ifname: 'lo', mac: '00:00:00:00:00:00', up: true, addresses: [{ ip: '127.0.0.1', prefixLength: 8 }] },
      {
        ifname: 'eth0',
        mac: MAC0,
        up: true,
        addresses: [
          { ip: '10.0.0.2', prefixLength: 24 },
          { ip: '10.0.0.3', prefixLength: 24 },
        ],
      },
      {
        ifname: 'eth1',
        mac: MAC1,
        up: true,
        addresses: [
          { ip: '10.0.0.7', prefixLength: 24 },
          { ip: '10.0.0.8', prefixLength: 24 },
        ],
      },
    ],
    rules: [
      { priority: 0, from: 'all', table: 'local' },
      { priority: 29001, from: '10.0.0.7/32', to: '10.0.0.0/24', table: '10001' },
      { priority: 29001, from: '10.0.0.8/32', to: '10.0.0.0/24', table: '10001' },
      { priority: 29001, from: 'all', to: '10.0.0.0/24', fwmark: '0x1000000/0xf000000', table: '10001' },
      { priority: 30000, from: 'all', table: 'main', suppressPrefixLength: 0 },
      { priority: 30001, from: '10.0.0.7/32', table: '10001' },
      { priority: 30001, from: '10.0.0.8/32', table: '10001' },
      { priority: 30001, from: 'all', fwmark: '0x1000000/0xf000000', table: '10001' },
      { priority: 32766, from: 'all', table: 'main' },
      { priority: 32767, from: 'all', table: 'default' },
    ],
    routes: [
      { table: 'main', dst: 'default', dev: 'eth0', gateway: '10.0.0.1', protocol: 'dhcp' },
      { table: 'main', dst: '10.0.0.0/24', dev: 'eth0', protocol: 'kernel', prefsrc: '10.0.0.2' },
      { table: 'main', dst: '10.0.0.0/24', dev: 'eth1', protocol: 'kernel', prefsrc: '10.0.0.7' },
      { table: '10001', dst: '10.0.0.0/24', dev: 'eth1', protocol: '234', prefsrc: '10.0.0.7' },
      { table: '10001', dst: 'default', dev: 'eth1', gateway: '10.0.0.1', protocol: '234' },
    ],
    sysctls: new Map<string, string | null>([
      ['net.ipv4.conf.all.rp_filter', '1'],
      ['net.ipv4.conf.default.rp_filter', '2'],
      ['net.ipv4.conf.eth0.rp_filter', '1'],
      ['net.ipv4.conf.eth1.rp_filter', '2'],
      ['net.ipv4.conf.eth0.promote_secondaries', '1'],
      ['net.ipv4.conf.eth1.promote_secondaries', '1'],
    ]),
  };
}
