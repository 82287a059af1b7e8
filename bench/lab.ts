// A guest namespace whose eth0..ethN are veths with the tree's MACs, and a router namespace at the other end of each
// holding that NIC's gateway, so the agent's verification pings get answers. Nothing is connected to the host.
import { deleteNamespaceSync, PREFIX, registerCleanup } from './cleanup.js';
import type { NicSpec } from './trees.js';
import { exec, must } from './util.js';

export interface BenchGuest {
  ns: string;
  router: string;
  destroy(): void;
}

let count = 0;

/** Runs argv inside one of the bench's namespaces (refuses any other, so a typo cannot reach the host's). */
export function inNs(ns: string, argv: readonly string[]): string[] {
  if (!ns.startsWith(PREFIX)) throw new Error(`not a bench namespace: ${ns}`);
  return ['ip', 'netns', 'exec', ns, ...argv];
}

async function batch(ns: string, lines: readonly string[]): Promise<void> {
  await must(['ip', '-n', ns, '-batch', '-'], `${lines.join('\n')}\n`);
}

/**
 * Builds a fresh guest. `dhcp`: eth0 up with its primary address and the default route, the other NICs down and
 * bare (what a fresh VM looks like). Otherwise every NIC is up and has no address.
 */
export async function createGuest(nics: readonly NicSpec[], opts: { dhcp: boolean }): Promise<BenchGuest> {
  const tag = `${++count}`;
  const ns = `${PREFIX}${tag}-g`;
  const router = `${PREFIX}${tag}-r`;
  const created: string[] = [];
  const destroy = registerCleanup(() => {
    for (const name of [...created].reverse()) deleteNamespaceSync(name);
  });
  try {
    for (const name of [router, ns]) {
      await must(['ip', 'netns', 'add', name]);
      created.push(name);
      // IPv4 only, as the lab's guests: no link-local noise in `ip -j address`.
      await exec(
        inNs(name, [
          'sysctl',
          '-q',
          '-e',
          '-w',
          'net.ipv6.conf.all.disable_ipv6=1',
          'net.ipv6.conf.default.disable_ipv6=1',
        ]),
      );
    }
    const routerLines = ['link set lo up'];
    for (const nic of nics) {
      routerLines.push(
        `link add p${nic.index} type veth peer name ${nic.ifname} netns ${ns}`,
        `address add ${nic.gateway}/${nic.prefix} dev p${nic.index}`,
        `link set p${nic.index} up`,
      );
    }
    await batch(router, routerLines);
    const guestLines = ['link set lo up', ...nics.map((nic) => `link set ${nic.ifname} address ${nic.macLower}`)];
    const eth0 = nics[0];
    if (opts.dhcp && eth0 !== undefined) {
      guestLines.push(
        `address add ${eth0.ips[0]}/${eth0.prefix} dev ${eth0.ifname}`,
        `link set ${eth0.ifname} up`,
        `route add default via ${eth0.gateway} dev ${eth0.ifname}`,
      );
    } else if (!opts.dhcp) {
      guestLines.push(...nics.map((nic) => `link set ${nic.ifname} up`));
    }
    await batch(ns, guestLines);
  } catch (error) {
    destroy();
    throw error;
  }
  return { ns, router, destroy };
}

/** IPv4 addresses per interface in a namespace, from `ip -j -4 address`. */
export async function addressesIn(ns: string, dev?: string): Promise<Map<string, Set<string>>> {
  const result = await must(['ip', '-n', ns, '-j', '-4', 'address', 'show', ...(dev ? ['dev', dev] : [])]);
  const links = JSON.parse(result.stdout.trim() || '[]') as { ifname: string; addr_info?: { local: string }[] }[];
  return new Map(links.map((l) => [l.ifname, new Set((l.addr_info ?? []).map((a) => a.local))]));
}

/** How many of the NICs' addresses are live on their interfaces. */
export async function liveAddressCount(ns: string, nics: readonly NicSpec[]): Promise<number> {
  const live = await addressesIn(ns);
  return nics.reduce((n, nic) => n + nic.ips.filter((ip) => live.get(nic.ifname)?.has(ip)).length, 0);
}
