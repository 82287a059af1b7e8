// Proves the lab before product tests rely on it: links, NAT, anti-spoofing, the internet edge, the metadata
// emulator behind 169.254.0.23, and a teardown that leaves nothing behind. Needs root; see labAvailable.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetaTree } from '../../src/metadata/tree.js';
import { listNamespaces } from './cleanup.js';
import { manualTree, threeNicTree } from './fixtures.js';
import { labOk, requireLab } from './guard.js';
import { startLab, sweepStaleLabs, type Lab } from './vpc.js';

requireLab('emulated VPC');

interface IfaceState {
  mac: string;
  up: boolean;
  master: string | undefined;
  inet: string[];
}

/** `ip -j address` of a namespace, by interface name. */
async function interfaces(lab: Lab, ns: string): Promise<Map<string, IfaceState>> {
  const result = await lab.exec(ns, ['ip', '-j', 'address']);
  expect(result.exitCode, result.stderr).toBe(0);
  const links = JSON.parse(result.stdout) as {
    ifname: string;
    address: string;
    flags: string[];
    master?: string;
    addr_info: { family: string; local: string; prefixlen: number }[];
  }[];
  return new Map(
    links.map((l) => [
      l.ifname,
      {
        mac: l.address,
        up: l.flags.includes('UP'),
        master: l.master,
        inet: l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
      },
    ]),
  );
}

/** GET from the guest's namespace, as the agent would; the body, or `HTTP <status>` when it is not 200. */
async function getFromGuest(lab: Lab, guest: string, url: string): Promise<string> {
  const script = `const r = await fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) });
process.stdout.write(r.status === 200 ? await r.text() : 'HTTP ' + r.status);`;
  const result = await lab.exec(lab.guestNs(guest), [process.execPath, '--input-type=module', '-e', script]);
  expect(result.exitCode, result.stderr).toBe(0);
  return result.stdout;
}

async function pingFromGuest(lab: Lab, guest: string, source: string, target: string): Promise<boolean> {
  // Two tries: the first may be spent on ARP.
  for (let i = 0; i < 2; i++) {
    const result = await lab.exec(lab.guestNs(guest), ['ping', '-n', '-c1', '-W1', '-I', source, target]);
    if (result.exitCode === 0) return true;
  }
  return false;
}

async function mustExec(lab: Lab, ns: string, argv: string[]): Promise<void> {
  const result = await lab.exec(ns, argv);
  expect(result.exitCode, `${argv.join(' ')}: ${result.stderr}`).toBe(0);
}

/** Pids whose command line mentions `text`: how a leftover emulator (its socket path is unique) is found. */
function processesMentioning(text: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text);
      } catch {
        return false; // Exited while we looked.
      }
    })
    .map(Number);
}

async function destroyAndCheck(lab: Lab, guests: string[]): Promise<void> {
  const sockets = guests.map((g) => lab.metadataControlSocket(g));
  const namespaces = [lab.routerNs, lab.internetNs, ...guests.map((g) => lab.guestNs(g))];
  expect(listNamespaces()).toEqual(expect.arrayContaining(namespaces));
  expect(sockets.flatMap(processesMentioning)).not.toEqual([]);
  await lab.destroy();
  expect(listNamespaces().filter((ns) => ns.startsWith(`${lab.id}-`))).toEqual([]);
  expect(sockets.flatMap(processesMentioning)).toEqual([]);
}

/** A second guest in the manual example's subnet: one NIC, 10.0.0.20, no EIP. */
function neighbourTree(): MetaTree {
  return {
    'instance-id': 'ins-lab00002',
    mac: '52:54:00:00:00:20',
    network: {
      interfaces: {
        macs: {
          '52:54:00:00:00:20': {
            'primary-local-ipv4': '10.0.0.20',
            'local-ipv4s': { '10.0.0.20': { gateway: '10.0.0.1', 'subnet-mask': '255.255.255.0' } },
          },
        },
      },
    },
  };
}

describe.skipIf(!labOk)('emulated VPC: the product manual example', () => {
  let lab: Lab;
  const ns = (): string => lab.guestNs('a');

  beforeAll(async () => {
    lab = await startLab([
      { name: 'a', tree: manualTree() },
      { name: 'b', tree: neighbourTree() },
    ]);
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('leaves the guest as DHCP would: eth0 with only its primary IP, eth1 attached but down', async () => {
    const ifaces = await interfaces(lab, ns());
    expect(ifaces.get('eth0')).toEqual({
      mac: '52:54:00:8a:7a:64',
      up: true,
      master: undefined,
      inet: ['10.0.0.2/24'],
    });
    expect(ifaces.get('eth1')).toEqual({ mac: '20:90:6f:f7:93:2e', up: false, master: undefined, inet: [] });
    const routes = JSON.parse((await lab.exec(ns(), ['ip', '-j', 'route', 'show', 'default'])).stdout) as {
      gateway: string;
      dev: string;
    }[];
    expect(routes.map((r) => [r.gateway, r.dev])).toEqual([['10.0.0.1', 'eth0']]);
    expect(lab.id).toMatch(new RegExp(`^eipt${process.pid}-\\d+$`));
  });

  it('answers an EIP from the internet only where the guest holds its private IP', async () => {
    expect(await lab.pingFromInternet('203.0.113.10')).toBe(true);
    // 10.0.0.2: the internet has no route to private addresses.
    const unreachable = ['203.0.113.12', '203.0.113.13', '10.0.0.2'];
    expect(await Promise.all(unreachable.map((ip) => lab.pingFromInternet(ip, 2)))).toEqual([false, false, false]);
    // Outbound, the EIP is the source the internet host answers.
    expect(await pingFromGuest(lab, 'a', '10.0.0.2', '198.51.100.2')).toBe(true);
  });

  it('drops what a port sends from an IP its ENI does not hold', async () => {
    try {
      await mustExec(lab, ns(), ['ip', 'address', 'add', '10.0.0.3/24', 'dev', 'eth0']);
      await mustExec(lab, ns(), ['ip', 'address', 'add', '10.0.0.8/24', 'dev', 'eth0']);
      expect(await pingFromGuest(lab, 'a', '10.0.0.2', '10.0.0.1')).toBe(true);
      // eth0's own secondary passes; eth1's secondary sent out of eth0 does not.
      expect(await pingFromGuest(lab, 'a', '10.0.0.3', '10.0.0.1')).toBe(true);
      expect(await pingFromGuest(lab, 'a', '10.0.0.8', '10.0.0.1')).toBe(false);
    } finally {
      await lab.exec(ns(), ['ip', 'address', 'del', '10.0.0.8/24', 'dev', 'eth0']);
      await lab.exec(ns(), ['ip', 'address', 'del', '10.0.0.3/24', 'dev', 'eth0']);
    }
    expect((await interfaces(lab, ns())).get('eth0')?.inet).toEqual(['10.0.0.2/24']);
  });

  it("keeps each gateway's MAC fixed when a port with a lower MAC joins its bridge and leaves it, as a VPC gateway does", async () => {
    const before = (await interfaces(lab, lab.routerNs)).get('br-0')?.mac;
    expect(before).toBe('02:ee:00:00:00:00');
    const add = await lab.exec(lab.routerNs, [
      'ip',
      'link',
      'add',
      'lowmac0',
      'address',
      '00:00:00:00:00:01',
      'type',
      'veth',
      'peer',
      'name',
      'lowmac1',
    ]);
    expect(add.exitCode, add.stderr).toBe(0);
    expect((await lab.exec(lab.routerNs, ['ip', 'link', 'set', 'lowmac0', 'master', 'br-0', 'up'])).exitCode).toBe(0);
    expect((await interfaces(lab, lab.routerNs)).get('br-0')?.mac).toBe(before);
    expect((await lab.exec(lab.routerNs, ['ip', 'link', 'del', 'lowmac0'])).exitCode).toBe(0);
    expect((await interfaces(lab, lab.routerNs)).get('br-0')?.mac).toBe(before);
  });

  it('bridges guests of one subnet', async () => {
    expect(await pingFromGuest(lab, 'a', '10.0.0.2', '10.0.0.20')).toBe(true);
  });

  it('serves each guest its own tree at 169.254.0.23 and follows updateGuest', async () => {
    const base = 'http://169.254.0.23/latest/meta-data/';
    const eth1Ip = `${base}network/interfaces/macs/20:90:6F:F7:93:2E/local-ipv4s/10.0.0.8/`;
    expect(await getFromGuest(lab, 'a', `${base}mac`)).toBe('52:54:00:8A:7A:64');
    expect(await getFromGuest(lab, 'b', `${base}mac`)).toBe('52:54:00:00:00:20');
    expect(await getFromGuest(lab, 'a', `${eth1Ip}public-ipv4`)).toBe('203.0.113.13');

    const tree = manualTree();
    const ipDir = (
      ((((tree.network as MetaTree).interfaces as MetaTree).macs as MetaTree)['20:90:6F:F7:93:2E'] as MetaTree)[
        'local-ipv4s'
      ] as MetaTree
    )['10.0.0.8'] as MetaTree;
    delete ipDir['public-ipv4'];
    delete ipDir['public-ipv4-mode'];
    await lab.updateGuest('a', tree);

    expect(await getFromGuest(lab, 'a', eth1Ip)).toBe('gateway\nsubnet-mask\n');
    expect(await getFromGuest(lab, 'a', `${eth1Ip}public-ipv4`)).toBe('HTTP 404');
    const nat = await lab.exec(lab.routerNs, ['nft', 'list', 'table', 'ip', 'eipnat']);
    expect(nat.stdout).toContain('203.0.113.12');
    expect(nat.stdout).not.toContain('203.0.113.13');
    // NAT of the EIPs that stayed still works after the rebuild, and the other guest's tree is untouched.
    expect(await lab.pingFromInternet('203.0.113.10')).toBe(true);
    expect(await getFromGuest(lab, 'b', `${base}instance-id`)).toBe('ins-lab00002');
  });

  it('runs the real CLI inside the guest and refuses namespaces that are not the lab’s', async () => {
    const help = await lab.agent('a', ['--help']);
    expect(help.exitCode, help.stderr).toBe(0);
    expect(help.stdout).toContain('eip-agent');
    expect(lab.guestRoot('a').startsWith(tmpdir())).toBe(true);
    // A fresh CentOS 7 guest: nothing but initscripts' network service (stand-ins), which reads ifcfg files at boot.
    expect(readdirSync(lab.guestRoot('a'))).toEqual(['etc']);
    expect(readdirSync(join(lab.guestRoot('a'), 'etc/sysconfig/network-scripts'))).toEqual(['ifup-eth']);
    await expect(lab.exec('host', ['true'])).rejects.toThrow(/is not a namespace of lab/);
  });

  it('destroy removes every namespace and emulator', async () => {
    await destroyAndCheck(lab, ['a', 'b']);
  });
});

describe.skipIf(!labOk)('emulated VPC: three NICs in three subnets with a direct EIP', () => {
  let lab: Lab;
  const ns = (): string => lab.guestNs('c');

  beforeAll(async () => {
    lab = await startLab([{ name: 'c', tree: threeNicTree() }]);
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('puts each NIC on the bridge of its subnet', async () => {
    const guest = await interfaces(lab, ns());
    expect(['eth0', 'eth1', 'eth2'].map((name) => guest.get(name))).toEqual([
      { mac: '52:54:00:12:34:56', up: true, master: undefined, inet: ['10.1.3.4/20'] },
      { mac: '52:54:00:ab:cd:01', up: false, master: undefined, inet: [] },
      { mac: '52:54:00:ab:cd:02', up: false, master: undefined, inet: [] },
    ]);
    const router = await interfaces(lab, lab.routerNs);
    const gatewayOf = (port: string): string[] | undefined => router.get(router.get(port)?.master ?? '')?.inet;
    expect(['c0', 'c1', 'c2'].map(gatewayOf)).toEqual([['10.1.0.1/20'], ['10.1.16.1/24'], ['172.16.5.1/24']]);
    expect(router.get('lo')?.inet).toContain('169.254.0.23/32');
  });

  it('routes the direct EIP to its private IP, reachable once the guest routes replies out of eth1', async () => {
    const routes = JSON.parse((await lab.exec(lab.routerNs, ['ip', '-j', 'route', 'show', '203.0.113.21'])).stdout) as {
      gateway: string;
    }[];
    expect(routes.map((r) => r.gateway)).toEqual(['10.1.16.5']);
    await mustExec(lab, ns(), ['ip', 'address', 'add', '10.1.16.5/24', 'dev', 'eth1']);
    await mustExec(lab, ns(), ['ip', 'address', 'add', '203.0.113.21/32', 'dev', 'eth1']);
    await mustExec(lab, ns(), ['ip', 'link', 'set', 'eth1', 'up']);
    // Replies would leave through eth0 by the main table (and strict rp_filter drops the request anyway).
    expect(await lab.pingFromInternet('203.0.113.21', 2)).toBe(false);
    await mustExec(lab, ns(), ['ip', 'route', 'add', 'default', 'via', '10.1.16.1', 'dev', 'eth1', 'table', '101']);
    await mustExec(lab, ns(), ['ip', 'rule', 'add', 'from', '203.0.113.21', 'table', '101']);
    expect(await lab.pingFromInternet('203.0.113.21')).toBe(true);
  });

  it('lets only EIP traffic cross the internet edge', async () => {
    expect(await lab.pingFromInternet('203.0.113.20')).toBe(true);
    await mustExec(lab, ns(), ['ip', 'address', 'add', '10.1.15.200/20', 'dev', 'eth0']);
    expect(await pingFromGuest(lab, 'c', '10.1.3.4', '198.51.100.2')).toBe(true);
    // eth0's ENI holds 10.1.15.200, so the port lets it through; it has no EIP, so the edge does not.
    expect(await pingFromGuest(lab, 'c', '10.1.15.200', '10.1.0.1')).toBe(true);
    expect(await pingFromGuest(lab, 'c', '10.1.15.200', '198.51.100.2')).toBe(false);
  });

  it('destroy removes every namespace and emulator', async () => {
    await destroyAndCheck(lab, ['c']);
  });
});

describe.skipIf(!labOk)('sweepStaleLabs', () => {
  it('removes namespaces and temp dirs of a process that is gone, and nothing of a live one', () => {
    const done = spawnSync('true');
    const dead = done.pid;
    const stale = `eipt${dead}-1-rtr`;
    const staleDir = join(tmpdir(), `eipt${dead}-1-sweep`);
    const live = `eipt${process.pid}-sweep`;
    expect(spawnSync('ip', ['netns', 'add', stale]).status).toBe(0);
    try {
      expect(spawnSync('ip', ['netns', 'add', live]).status).toBe(0);
      mkdirSync(staleDir);
      sweepStaleLabs();
      // The return value is not checked: a concurrent test process's sweep may remove them first.
      expect(listNamespaces()).not.toContain(stale);
      expect(listNamespaces()).toContain(live);
      expect(readdirSync(tmpdir())).not.toContain(`eipt${dead}-1-sweep`);
    } finally {
      spawnSync('ip', ['netns', 'del', stale]);
      spawnSync('ip', ['netns', 'del', live]);
    }
  });
});
