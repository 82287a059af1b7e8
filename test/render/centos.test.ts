import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderCentos } from '../../src/targets/linux/centos/render.js';
import type { RoutingMode } from '../../src/render/types.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { manualTree, threeNicTree } from '../lab/fixtures.js';
import { GOLDEN_FIXTURES as fixtures, ROUTING_MODES as modes, renderInputs } from './inputs.js';

function render(tree: MetaTree, routing: RoutingMode, taken: Set<number> = new Set()) {
  const { model, options } = renderInputs(tree, routing, taken);
  return renderCentos(model, options);
}

/** KEY=value lines of an ifcfg/sysctl file, comments and blank lines dropped, in order. */
function settings(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

describe('CentOS renderer golden files', () => {
  for (const [name, tree] of fixtures) {
    for (const routing of modes) {
      it(`${name} / ${routing}`, async () => {
        const { files } = render(tree(), routing);
        expect(files.map((f) => f.path)).toMatchSnapshot();
        for (const file of files) {
          expect(file.mode).toBe(0o644);
          await expect(file.content).toMatchFileSnapshot(`__golden__/${name}/${routing}${file.path}`);
        }
      });
    }
  }
});

describe('--routing rp-filter reproduces the manual', () => {
  const { files } = render(manualTree(), 'rp-filter');
  const byPath = new Map(files.map((f) => [f.path, f.content]));
  const manual = (file: string) => readFileSync(new URL(`../fixtures/manual/${file}`, import.meta.url), 'utf8');
  // Where the agent knowingly differs from the manual: HWADDR binds each file to its NIC (the manual comments it
  // out only because its eth1 file is a copy of eth0's), DEFROUTE=no keeps ifup-eth at boot from moving the main
  // default route to a secondary NIC, promote_secondaries keeps a subnet's addresses when its first one goes, and
  // arp_ignore/arp_announce make each address answered only by the NIC that holds it.
  const additions: Record<string, string[]> = {
    'ifcfg-eth0': ['HWADDR=52:54:00:8A:7A:64'],
    'ifcfg-eth1': ['HWADDR=20:90:6F:F7:93:2E', 'DEFROUTE=no'],
    'sysctl-rp_filter.conf': [
      'net.ipv4.conf.eth0.promote_secondaries = 1',
      'net.ipv4.conf.eth1.promote_secondaries = 1',
      'net.ipv4.conf.eth0.arp_ignore = 1',
      'net.ipv4.conf.eth0.arp_announce = 1',
      'net.ipv4.conf.eth1.arp_ignore = 1',
      'net.ipv4.conf.eth1.arp_announce = 1',
    ],
  };
  const wanted = (file: string) => [...settings(manual(file)), ...(additions[file] ?? [])];

  it.each(['eth0', 'eth1'])(
    'ifcfg-%s has exactly the manual settings, plus HWADDR (and DEFROUTE=no on a secondary NIC)',
    (dev) => {
      const ours = settings(byPath.get(`/etc/sysconfig/network-scripts/ifcfg-${dev}`) ?? '');
      // The manual lists the same keys in a slightly different order for eth1; the settings must match one for one.
      expect([...ours].sort()).toEqual(wanted(`ifcfg-${dev}`).sort());
      expect(ours[0]).toBe('BOOTPROTO=static');
    },
  );

  it('ifcfg-eth0 keeps the manual order line for line, HWADDR where the manual has it commented out', () => {
    const manualOrder = settings(manual('ifcfg-eth0').replace('#HWADDR=52:54:00:8a:7a:64', 'HWADDR=52:54:00:8A:7A:64'));
    expect(settings(byPath.get('/etc/sysconfig/network-scripts/ifcfg-eth0') ?? '')).toEqual(manualOrder);
  });

  it('the sysctl drop-in holds the four rp_filter lines of the manual, in its order, then promote_secondaries and the ARP settings', () => {
    expect(settings(byPath.get('/etc/sysctl.d/99-zz-eip-agent.conf') ?? '')).toEqual(wanted('sysctl-rp_filter.conf'));
  });

  it('writes no policy routing files', () => {
    expect([...byPath.keys()].filter((p) => /\/(route|rule)-/.test(p))).toEqual([]);
  });
});

describe('policy routing', () => {
  it.each(modes)(
    'writes DEFROUTE=no and HWADDR for every secondary NIC (%s mode), never DEFROUTE=no for eth0',
    (routing) => {
      const { files } = render(threeNicTree(), routing);
      const ifcfg = (dev: string) => settings(files.find((f) => f.path.endsWith(`ifcfg-${dev}`))?.content ?? '');
      expect(ifcfg('eth0')).not.toContain('DEFROUTE=no');
      expect(ifcfg('eth0')).toContain('HWADDR=52:54:00:12:34:56');
      for (const [dev, mac] of [
        ['eth1', '52:54:00:AB:CD:01'],
        ['eth2', '52:54:00:AB:CD:02'],
      ] as const) {
        expect(ifcfg(dev)).toContain('DEFROUTE=no');
        expect(ifcfg(dev)).toContain(`HWADDR=${mac}`);
        // The manual's GATEWAY line stays (ifup-eth then adds no default route for this NIC).
        expect(ifcfg(dev).some((l) => l.startsWith('GATEWAY='))).toBe(true);
      }
    },
  );

  it('gives each secondary NIC its own table, DEFROUTE=no, and loose rp_filter', () => {
    const { files, runtime } = render(threeNicTree(), 'policy');
    const ifcfg1 = files.find((f) => f.path.endsWith('ifcfg-eth1'))?.content ?? '';
    expect(settings(ifcfg1)).toContain('DEFROUTE=no');
    expect(settings(files.find((f) => f.path.endsWith('ifcfg-eth0'))?.content ?? '')).not.toContain('DEFROUTE=no');
    // Main's own routes first (all but its default), each NIC's subnet ahead of that, then the NIC's table for the rest.
    expect(runtime.rules).toEqual([
      { dev: 'eth0', from: 'all', table: 254, priority: 30000, suppressPrefixLength: 0 },
      { dev: 'eth1', from: '10.1.16.5', to: '10.1.16.0/24', table: 10001, priority: 29001 },
      { dev: 'eth1', from: '203.0.113.21', to: '10.1.16.0/24', table: 10001, priority: 29001 },
      // The replies of connections to its addresses (a container's published port), by their mark, likewise.
      { dev: 'eth1', from: 'all', to: '10.1.16.0/24', fwmark: '0x1000000/0xf000000', table: 10001, priority: 29001 },
      { dev: 'eth1', from: '10.1.16.5', table: 10001, priority: 30001 },
      { dev: 'eth1', from: '203.0.113.21', table: 10001, priority: 30001 },
      { dev: 'eth1', from: 'all', fwmark: '0x1000000/0xf000000', table: 10001, priority: 30001 },
      { dev: 'eth2', from: '172.16.5.10', to: '172.16.5.0/24', table: 10002, priority: 29002 },
      { dev: 'eth2', from: 'all', to: '172.16.5.0/24', fwmark: '0x2000000/0xf000000', table: 10002, priority: 29002 },
      { dev: 'eth2', from: '172.16.5.10', table: 10002, priority: 30002 },
      { dev: 'eth2', from: 'all', fwmark: '0x2000000/0xf000000', table: 10002, priority: 30002 },
    ]);
    expect(runtime.marks).toEqual([
      { dev: 'eth1', ip: '10.1.16.5', mark: 0x1000000 },
      { dev: 'eth1', ip: '203.0.113.21', mark: 0x1000000 },
      { dev: 'eth2', ip: '172.16.5.10', mark: 0x2000000 },
    ]);
    expect(runtime.routes).toEqual([
      { table: 10001, dst: '10.1.16.0/24', dev: 'eth1', src: '10.1.16.5' },
      { table: 10001, dst: 'default', dev: 'eth1', gateway: '10.1.16.1' },
      { table: 10002, dst: '172.16.5.0/24', dev: 'eth2', src: '172.16.5.10' },
      { table: 10002, dst: 'default', dev: 'eth2', gateway: '172.16.5.1' },
    ]);
    expect(runtime.sysctls).toEqual([
      { key: 'net.ipv4.conf.default.rp_filter', value: '2' },
      { key: 'net.ipv4.conf.eth1.rp_filter', value: '2' },
      { key: 'net.ipv4.conf.eth2.rp_filter', value: '2' },
      { key: 'net.ipv4.conf.eth0.promote_secondaries', value: '1' },
      { key: 'net.ipv4.conf.eth1.promote_secondaries', value: '1' },
      { key: 'net.ipv4.conf.eth2.promote_secondaries', value: '1' },
      ...['eth0', 'eth1', 'eth2'].flatMap((dev) => [
        { key: `net.ipv4.conf.${dev}.arp_ignore`, value: '1' },
        { key: `net.ipv4.conf.${dev}.arp_announce`, value: '1' },
      ]),
    ]);
    expect(runtime.rpFilter).toEqual([
      { ifname: 'eth1', effective: 2 },
      { ifname: 'eth2', effective: 2 },
    ]);
  });

  it('puts a direct EIP on its NIC as a /32 and keeps NAT EIPs off the NIC', () => {
    const { runtime } = render(threeNicTree(), 'policy');
    expect(runtime.addresses).toContainEqual({ ifname: 'eth1', ip: '203.0.113.21', prefixLength: 32 });
    expect(runtime.addresses.map((a) => a.ip)).not.toContain('203.0.113.20');
  });

  it('never picks a table id that something else uses', () => {
    const { runtime } = render(manualTree(), 'policy', new Set([10001, 10101]));
    expect(new Set(runtime.rules.map((r) => r.table))).toEqual(new Set([254, 10201]));
    expect(new Set(runtime.routes.map((r) => r.table))).toEqual(new Set([10201]));
  });

  it('pings each gateway from every private address of its NIC', () => {
    const { runtime } = render(manualTree(), 'policy');
    expect(runtime.pings).toEqual([
      { ifname: 'eth0', source: '10.0.0.2', target: '10.0.0.1' },
      { ifname: 'eth0', source: '10.0.0.3', target: '10.0.0.1' },
      { ifname: 'eth1', source: '10.0.0.7', target: '10.0.0.1' },
      { ifname: 'eth1', source: '10.0.0.8', target: '10.0.0.1' },
    ]);
  });
});
