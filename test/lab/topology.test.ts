// The lab's plan and rulesets from metadata trees: pure, so it runs without root, unlike vpc.test.ts.
import { describe, expect, it } from 'vitest';
import type { MetaTree } from '../../src/metadata/tree.js';
import { manualTree, threeNicTree } from './fixtures.js';
import { cloudPolicy, planTopology, renderRuleset, type LabGuestSpec } from '../../src/sandbox/topology.js';

function nicsDir(tree: MetaTree): MetaTree {
  return ((tree.network as MetaTree).interfaces as MetaTree).macs as MetaTree;
}

function ipDir(tree: MetaTree, mac: string, ip: string): MetaTree {
  return ((nicsDir(tree)[mac] as MetaTree)['local-ipv4s'] as MetaTree)[ip] as MetaTree;
}

describe('planTopology', () => {
  it('gives the manual example one bridge and eth0/eth1 in metadata order', () => {
    const plan = planTopology([{ name: 'a', tree: manualTree() }]);
    const subnet = { cidr: '10.0.0.0/24', prefix: 24, gateway: '10.0.0.1', bridge: 'br-0' };
    expect(plan).toEqual({
      subnets: [subnet],
      guests: [
        {
          name: 'a',
          metadataPort: 8001,
          nics: [
            { mac: '52:54:00:8a:7a:64', guestIf: 'eth0', port: 'a0', primaryIp: '10.0.0.2', subnet },
            { mac: '20:90:6f:f7:93:2e', guestIf: 'eth1', port: 'a1', primaryIp: '10.0.0.7', subnet },
          ],
        },
      ],
    });
  });

  it('makes the top-level mac eth0 wherever it is listed, and one bridge per subnet', () => {
    const plan = planTopology([{ name: 'c', tree: threeNicTree() }]);
    expect(plan.subnets.map((s) => [s.cidr, s.gateway, s.bridge])).toEqual([
      ['10.1.0.0/20', '10.1.0.1', 'br-0'],
      ['10.1.16.0/24', '10.1.16.1', 'br-1'],
      ['172.16.5.0/24', '172.16.5.1', 'br-2'],
    ]);
    expect(plan.guests[0]?.nics.map((n) => [n.guestIf, n.mac, n.port, n.primaryIp, n.subnet.bridge])).toEqual([
      ['eth0', '52:54:00:12:34:56', 'c0', '10.1.3.4', 'br-0'],
      ['eth1', '52:54:00:ab:cd:01', 'c1', '10.1.16.5', 'br-1'],
      ['eth2', '52:54:00:ab:cd:02', 'c2', '172.16.5.10', 'br-2'],
    ]);
  });

  it('shares a bridge between guests of one subnet and gives each guest its own emulator port', () => {
    const second = manualTree();
    const macs = nicsDir(second);
    second.mac = '52:54:00:00:00:01';
    second.network = {
      interfaces: {
        macs: { '52:54:00:00:00:01': { ...(macs['52:54:00:8A:7A:64'] as MetaTree), 'primary-local-ipv4': '10.0.0.3' } },
      },
    };
    const plan = planTopology([
      { name: 'a', tree: manualTree() },
      { name: 'b', tree: second },
    ]);
    expect(plan.subnets).toHaveLength(1);
    expect(plan.guests.map((g) => [g.name, g.metadataPort, g.nics.map((n) => n.port)])).toEqual([
      ['a', 8001, ['a0', 'a1']],
      ['b', 8002, ['b0']],
    ]);
  });

  const broken: [string, (tree: MetaTree) => void, string][] = [
    [
      'a non-contiguous mask',
      (t) => void (ipDir(t, '52:54:00:8A:7A:64', '10.0.0.2')['subnet-mask'] = '255.0.255.0'),
      'lab: guest a: network/interfaces/macs/52:54:00:8A:7A:64/local-ipv4s/10.0.0.2/subnet-mask: 255.0.255.0 is not a usable netmask',
    ],
    [
      'a gateway outside the subnet',
      (t) => void (ipDir(t, '52:54:00:8A:7A:64', '10.0.0.2').gateway = '10.0.1.1'),
      'lab: guest a: network/interfaces/macs/52:54:00:8A:7A:64/local-ipv4s/10.0.0.2/gateway: 10.0.1.1 is outside the subnet',
    ],
    [
      'two gateways in one subnet',
      (t) => void (ipDir(t, '20:90:6F:F7:93:2E', '10.0.0.7').gateway = '10.0.0.254'),
      'lab: guest a: network/interfaces/macs/20:90:6F:F7:93:2E/local-ipv4s/10.0.0.7/gateway: 10.0.0.254, but another NIC in 10.0.0.0/24 has gateway 10.0.0.1',
    ],
    [
      'a primary IP that is not listed',
      (t) => void ((nicsDir(t)['20:90:6F:F7:93:2E'] as MetaTree)['primary-local-ipv4'] = '10.0.0.9'),
      'lab: guest a: network/interfaces/macs/20:90:6F:F7:93:2E/local-ipv4s/: no primary address',
    ],
    [
      'a top-level mac that is not listed',
      (t) => void (t.mac = '52:54:00:00:00:99'),
      'lab: guest a: top-level mac is not one of network/interfaces/macs/',
    ],
    [
      'overlapping subnets',
      (t) => void (ipDir(t, '20:90:6F:F7:93:2E', '10.0.0.7')['subnet-mask'] = '255.255.0.0'),
      'local-ipv4s/10.0.0.7/subnet-mask: 10.0.0.0/16 overlaps 10.0.0.0/24 of another NIC',
    ],
  ];
  it.each(broken)('refuses %s', (_what, breakIt, message) => {
    const tree = manualTree();
    breakIt(tree);
    expect(() => planTopology([{ name: 'a', tree }])).toThrow(message);
  });

  it.each([
    [
      [
        { name: 'eth', tree: manualTree() },
        { name: 'eth', tree: threeNicTree() },
      ],
      'lab: guest eth: name used twice',
    ],
    [
      [{ name: 'a1', tree: manualTree() }],
      'lab: guest a1: name must be 1-8 lower-case letters (it becomes interface names like a0)',
    ],
    [
      [
        { name: 'a', tree: manualTree() },
        { name: 'b', tree: manualTree() },
      ],
      'lab: guest b: network/interfaces/macs/52:54:00:8A:7A:64/: MAC already used by guest a',
    ],
  ] as [LabGuestSpec[], string][])('refuses guests %#', (guests, message) => {
    expect(() => planTopology(guests)).toThrow(message);
  });
});

describe('cloudPolicy', () => {
  it('NATs every EIP of the manual example and lets each port use only its own ENI’s IPs', () => {
    const plan = planTopology([{ name: 'a', tree: manualTree() }]);
    expect(cloudPolicy(plan, new Map([['a', manualTree()]]))).toEqual({
      metadata: [{ macs: ['52:54:00:8a:7a:64', '20:90:6f:f7:93:2e'], port: 8001 }],
      nat: [
        { publicIp: '203.0.113.10', privateIp: '10.0.0.2' },
        { publicIp: '203.0.113.11', privateIp: '10.0.0.3' },
        { publicIp: '203.0.113.12', privateIp: '10.0.0.7' },
        { publicIp: '203.0.113.13', privateIp: '10.0.0.8' },
      ],
      direct: [],
      allowed: [
        { port: 'a0', ips: ['10.0.0.2', '10.0.0.3'] },
        { port: 'a1', ips: ['10.0.0.7', '10.0.0.8'] },
      ],
    });
  });

  it('routes a direct EIP to its ENI and lets that ENI send from it', () => {
    const plan = planTopology([{ name: 'c', tree: threeNicTree() }]);
    const policy = cloudPolicy(plan, new Map([['c', threeNicTree()]]));
    expect(policy.direct).toEqual([{ publicIp: '203.0.113.21', privateIp: '10.1.16.5', bridge: 'br-1' }]);
    expect(policy.nat).toEqual([{ publicIp: '203.0.113.20', privateIp: '10.1.3.4' }]);
    expect(policy.allowed).toEqual([
      { port: 'c0', ips: ['10.1.3.4', '10.1.15.200'] },
      { port: 'c1', ips: ['10.1.16.5', '203.0.113.21'] },
      { port: 'c2', ips: ['172.16.5.10'] },
    ]);
  });

  it('follows a changed tree, skipping what is malformed and ENIs the lab has no port for', () => {
    const plan = planTopology([{ name: 'a', tree: manualTree() }]);
    const tree = manualTree();
    delete ipDir(tree, '20:90:6F:F7:93:2E', '10.0.0.8')['public-ipv4'];
    ipDir(tree, '52:54:00:8A:7A:64', '10.0.0.3')['public-ipv4'] = 'not-an-ip';
    nicsDir(tree)['52:54:00:00:00:99'] = { 'local-ipv4s': { '10.0.0.50': { 'public-ipv4': '203.0.113.50' } } };
    delete nicsDir(tree)['20:90:6F:F7:93:2E'];
    const policy = cloudPolicy(plan, new Map([['a', tree]]));
    expect(policy.nat).toEqual([{ publicIp: '203.0.113.10', privateIp: '10.0.0.2' }]);
    // eth1's ENI is gone from the metadata: its port may send nothing.
    expect(policy.allowed).toEqual([
      { port: 'a0', ips: ['10.0.0.2', '10.0.0.3'] },
      { port: 'a1', ips: [] },
    ]);
  });
});

describe('renderRuleset', () => {
  it('renders the manual example', async () => {
    const plan = planTopology([{ name: 'a', tree: manualTree() }]);
    await expect(renderRuleset(cloudPolicy(plan, new Map([['a', manualTree()]])))).toMatchFileSnapshot(
      './__golden__/manual.nft',
    );
  });

  it('renders three subnets with a direct EIP', async () => {
    const plan = planTopology([{ name: 'c', tree: threeNicTree() }]);
    await expect(renderRuleset(cloudPolicy(plan, new Map([['c', threeNicTree()]])))).toMatchFileSnapshot(
      './__golden__/three-nic.nft',
    );
  });

  it('drops everything from a port whose ENI has no IP left', () => {
    const plan = planTopology([{ name: 'a', tree: manualTree() }]);
    const tree = manualTree();
    delete nicsDir(tree)['20:90:6F:F7:93:2E'];
    const text = renderRuleset(cloudPolicy(plan, new Map([['a', tree]])));
    expect(text.split('\n').filter((line) => line.includes('"a1"'))).toEqual([
      '\t\tiifname "a1" arp saddr ip { 0.0.0.0 } accept',
      '\t\tiifname "a1" drop',
    ]);
  });
});
