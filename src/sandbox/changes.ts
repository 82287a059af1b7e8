// The manual's operations as changes to the sandbox's metadata trees: what the cloud's console does when an operator
// binds or unbinds an EIP, adds or removes a secondary IP, attaches or detaches an ENI, or moves a private IP with its
// EIP to a second server. Pure: the trees in, the changed trees out, or one line saying why not.
import { ConfigError, quoteShort } from '../errors.js';
import type { MetaTree } from '../metadata/tree.js';
import {
  cloudOwned,
  hostOf,
  ipv4ToInt,
  maskText,
  type GuestPlan,
  type SubnetPlan,
  type TopologyPlan,
} from './topology.js';

/** One operation of `sandbox change`. `guest` is where an IP is added or an ENI attached or detached. */
export type SandboxChange =
  | { op: 'bind-eip'; ip: string; eip: string; direct: boolean }
  | { op: 'unbind-eip'; ip: string }
  | { op: 'add-ip'; ip: string; guest: string; nic: string }
  | { op: 'remove-ip'; ip: string }
  | { op: 'attach-eni'; ip: string; guest: string; mac?: string }
  | { op: 'detach-eni'; guest: string; nic: string }
  | { op: 'move-ip'; ip: string };

/** The new trees of the guests the change touches, in the order the cloud changes them, and what it did in words. */
export interface ChangeResult {
  trees: { guest: string; tree: MetaTree }[];
  description: string;
}

/** Where an address is listed: the guest, the ENI's key as listed, and its `local-ipv4s/<ip>/` directory. */
interface Found {
  guest: string;
  tree: MetaTree;
  mac: string;
  nic: MetaTree;
  address: MetaTree;
}

function macsOf(tree: MetaTree): MetaTree {
  const network = (tree.network ??= {}) as MetaTree;
  const interfaces = (network.interfaces ??= {}) as MetaTree;
  return (interfaces.macs ??= {}) as MetaTree;
}

function addressesOf(nic: MetaTree): MetaTree {
  return (nic['local-ipv4s'] ??= {}) as MetaTree;
}

function requireIpv4(option: string, ip: string): void {
  if (ipv4ToInt(ip) === undefined)
    throw new ConfigError(`${option} ${quoteShort(ip)}: expected an IPv4 address such as 10.0.0.9`);
}

function find(trees: Record<string, MetaTree>, ip: string): Found | undefined {
  for (const [guest, tree] of Object.entries(trees)) {
    for (const [mac, nic] of Object.entries(macsOf(tree))) {
      if (typeof nic !== 'object') continue;
      const address = addressesOf(nic)[ip];
      if (typeof address === 'object') return { guest, tree, mac, nic, address };
    }
  }
  return undefined;
}

function mustFind(trees: Record<string, MetaTree>, ip: string): Found {
  const found = find(trees, ip);
  if (found === undefined)
    throw new ConfigError(
      `--ip ${ip}: no ENI in the sandbox has this private IP (eip-agent sandbox status lists them)`,
    );
  return found;
}

/** A guest's NIC by interface name (eth1) or MAC, with its listed key and directory. */
function nicOf(
  tree: MetaTree,
  guest: GuestPlan,
  nic: string,
): { mac: string; dir: MetaTree; plan: GuestPlan['nics'][number] } {
  const plan = guest.nics.find((n) => n.guestIf === nic || n.mac === nic.toLowerCase());
  const listed =
    plan === undefined ? undefined : Object.keys(macsOf(tree)).find((mac) => mac.toLowerCase() === plan.mac);
  const dir = listed === undefined ? undefined : macsOf(tree)[listed];
  if (plan === undefined || listed === undefined || typeof dir !== 'object') {
    throw new ConfigError(
      `--nic ${quoteShort(nic)}: guest ${guest.name} has ${guest.nics.map((n) => `${n.guestIf} (${n.mac})`).join(', ')}`,
    );
  }
  return { mac: listed, dir, plan };
}

function guestOf(plan: TopologyPlan, name: string): GuestPlan {
  const guest = plan.guests.find((g) => g.name === name);
  if (guest === undefined)
    throw new ConfigError(
      `--guest ${quoteShort(name)}: the sandbox has guest ${plan.guests.map((g) => g.name).join(' and ')}`,
    );
  return guest;
}

/** Refuses an IP that the sandbox already uses as a private address or EIP. */
function requireUnused(trees: Record<string, MetaTree>, ip: string): void {
  const holder = find(trees, ip);
  if (holder !== undefined) throw new ConfigError(`--ip ${ip}: already a private IP of guest ${holder.guest}`);
  for (const [guest, tree] of Object.entries(trees)) {
    for (const nic of Object.values(macsOf(tree))) {
      if (typeof nic !== 'object') continue;
      for (const address of Object.values(addressesOf(nic))) {
        if (typeof address === 'object' && address['public-ipv4'] === ip)
          throw new ConfigError(`${ip}: already an EIP of guest ${guest}`);
      }
    }
  }
}

function subnetFor(subnets: readonly SubnetPlan[], ip: string, option: string): SubnetPlan {
  const subnet = subnets.find((s) => hostOf(s, ip));
  if (subnet === undefined)
    throw new ConfigError(
      `${option} ${ip}: not a free host address of the sandbox's subnets ${subnets.map((s) => `${s.cidr} (gateway ${s.gateway})`).join(', ')}`,
    );
  return subnet;
}

/** A MAC for a new ENI that no guest of the sandbox has: 52:54:00:ee:00:NN. */
function freeMac(plan: TopologyPlan): string {
  const used = new Set(plan.guests.flatMap((g) => g.nics.map((n) => n.mac)));
  for (let n = 1; n < 256; n++) {
    const mac = `52:54:00:ee:00:${n.toString(16).padStart(2, '0')}`;
    if (!used.has(mac)) return mac;
  }
  throw new ConfigError('no free MAC left for a new ENI; give --mac');
}

/** The trees after `change`, or a ConfigError naming the option and value that cannot be carried out. */
export function applyChange(
  plan: TopologyPlan,
  current: Record<string, MetaTree>,
  change: SandboxChange,
): ChangeResult {
  const trees = structuredClone(current);
  switch (change.op) {
    case 'bind-eip': {
      requireIpv4('--ip', change.ip);
      requireIpv4('--eip', change.eip);
      const found = mustFind(trees, change.ip);
      if (typeof found.address['public-ipv4'] === 'string')
        throw new ConfigError(
          `--ip ${change.ip}: already bound to EIP ${found.address['public-ipv4']}; unbind it first`,
        );
      requireUnused(trees, change.eip);
      if (cloudOwned(change.eip))
        throw new ConfigError(
          `--eip ${change.eip}: the sandbox's own internet link (198.51.100.0/30) or metadata address; give another EIP, such as 203.0.113.50`,
        );
      found.address['public-ipv4'] = change.eip;
      found.address['public-ipv4-mode'] = change.direct ? 'direct' : 'NAT';
      return {
        trees: [{ guest: found.guest, tree: found.tree }],
        description: `bound EIP ${change.eip} (${change.direct ? 'direct' : 'NAT'}) to ${change.ip} of guest ${found.guest}`,
      };
    }
    case 'unbind-eip': {
      requireIpv4('--ip', change.ip);
      const found = mustFind(trees, change.ip);
      const eip = found.address['public-ipv4'];
      if (typeof eip !== 'string') throw new ConfigError(`--ip ${change.ip}: has no EIP to unbind`);
      delete found.address['public-ipv4'];
      delete found.address['public-ipv4-mode'];
      return {
        trees: [{ guest: found.guest, tree: found.tree }],
        description: `unbound EIP ${eip} from ${change.ip} of guest ${found.guest}`,
      };
    }
    case 'add-ip': {
      requireIpv4('--ip', change.ip);
      const guest = guestOf(plan, change.guest);
      const tree = trees[guest.name] as MetaTree;
      const nic = nicOf(tree, guest, change.nic);
      if (!hostOf(nic.plan.subnet, change.ip))
        throw new ConfigError(
          `--ip ${change.ip}: not a host address of ${nic.plan.guestIf}'s subnet ${nic.plan.subnet.cidr} (gateway ${nic.plan.subnet.gateway})`,
        );
      requireUnused(trees, change.ip);
      addressesOf(nic.dir)[change.ip] = {
        gateway: nic.plan.subnet.gateway,
        'subnet-mask': maskText(nic.plan.subnet.prefix),
      };
      return {
        trees: [{ guest: guest.name, tree }],
        description: `added secondary IP ${change.ip} to ${nic.plan.guestIf} of guest ${guest.name}`,
      };
    }
    case 'remove-ip': {
      requireIpv4('--ip', change.ip);
      const found = mustFind(trees, change.ip);
      if (found.nic['primary-local-ipv4'] === change.ip)
        throw new ConfigError(
          `--ip ${change.ip}: the primary IP of ENI ${found.mac}; a cloud cannot remove it (detach the ENI instead)`,
        );
      delete addressesOf(found.nic)[change.ip];
      return {
        trees: [{ guest: found.guest, tree: found.tree }],
        description: `removed secondary IP ${change.ip} from guest ${found.guest}`,
      };
    }
    case 'attach-eni': {
      requireIpv4('--ip', change.ip);
      const guest = guestOf(plan, change.guest);
      const tree = trees[guest.name] as MetaTree;
      const subnet = subnetFor(plan.subnets, change.ip, '--ip');
      requireUnused(trees, change.ip);
      const mac = (change.mac ?? freeMac(plan)).toLowerCase();
      if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac))
        throw new ConfigError(`--mac ${quoteShort(mac)}: expected a MAC address such as 52:54:00:ee:00:01`);
      if (plan.guests.some((g) => g.nics.some((n) => n.mac === mac)))
        throw new ConfigError(`--mac ${mac}: already a NIC of the sandbox`);
      macsOf(tree)[mac] = {
        'primary-local-ipv4': change.ip,
        'local-ipv4s': { [change.ip]: { gateway: subnet.gateway, 'subnet-mask': maskText(subnet.prefix) } },
      };
      return {
        trees: [{ guest: guest.name, tree }],
        description: `attached ENI ${mac} with primary IP ${change.ip} (${subnet.cidr}) to guest ${guest.name}`,
      };
    }
    case 'detach-eni': {
      const guest = guestOf(plan, change.guest);
      const tree = trees[guest.name] as MetaTree;
      const nic = nicOf(tree, guest, change.nic);
      if (nic.plan === guest.nics[0])
        throw new ConfigError(
          `--nic ${change.nic}: the primary NIC (eth0) of guest ${guest.name}; a cloud cannot detach it`,
        );
      delete macsOf(tree)[nic.mac];
      return {
        trees: [{ guest: guest.name, tree }],
        description: `detached ENI ${nic.plan.mac} (${nic.plan.guestIf}) from guest ${guest.name}`,
      };
    }
    case 'move-ip': {
      requireIpv4('--ip', change.ip);
      const found = mustFind(trees, change.ip);
      if (found.nic['primary-local-ipv4'] === change.ip)
        throw new ConfigError(`--ip ${change.ip}: the primary IP of ENI ${found.mac}; only a secondary IP moves`);
      const other = plan.guests.find((g) => g.name !== found.guest);
      if (other === undefined) throw new ConfigError('move-ip needs a second server: eip-agent sandbox up --server-b');
      const target = trees[other.name] as MetaTree;
      const eth0 = nicOf(target, other, 'eth0');
      if (!hostOf(eth0.plan.subnet, change.ip))
        throw new ConfigError(
          `--ip ${change.ip}: not in the subnet ${eth0.plan.subnet.cidr} of guest ${other.name}'s eth0`,
        );
      const moved = found.address;
      delete addressesOf(found.nic)[change.ip];
      addressesOf(eth0.dir)[change.ip] = moved;
      const eip = typeof moved['public-ipv4'] === 'string' ? ` and its EIP ${moved['public-ipv4']}` : '';
      // The source first, as the console unbinds before it binds elsewhere.
      return {
        trees: [
          { guest: found.guest, tree: found.tree },
          { guest: other.name, tree: target },
        ],
        description: `moved ${change.ip}${eip} from guest ${found.guest} to eth0 of guest ${other.name}`,
      };
    }
  }
}
