import { describe, expect, it } from 'vitest';
import type { LinuxLiveState } from '../../src/targets/linux/live-state.js';
import type { RoutingMode } from '../../src/render/types.js';
import type { Check } from '../../src/plan/verify-report.js';
import { checkState } from '../../src/targets/linux/verify.js';
import { MAC1, convergedLive, manualDesired } from '../helpers/manual-guest.js';

function link(live: LinuxLiveState, name: string): LinuxLiveState['links'][number] {
  const found = live.links.find((l) => l.ifname === name);
  if (found === undefined) throw new Error(`no ${name}`);
  return found;
}

function failed(routing: RoutingMode, mutate: (live: LinuxLiveState) => void): Check[] {
  const live = convergedLive();
  mutate(live);
  return checkState(manualDesired(routing).runtime, live).filter((c) => !c.ok);
}

function rpFilter(all: string | null, eth0: string | null, eth1: string | null): (live: LinuxLiveState) => void {
  return (live) => {
    live.sysctls = new Map([
      ['net.ipv4.conf.all.rp_filter', all],
      ['net.ipv4.conf.eth0.rp_filter', eth0],
      ['net.ipv4.conf.eth1.rp_filter', eth1],
    ]);
  };
}

describe('checkState', () => {
  it('passes every check of a converged guest, in a fixed order', () => {
    const checks = checkState(manualDesired('policy').runtime, convergedLive());
    expect(checks).toEqual<Check[]>([
      { kind: 'link', subject: 'eth0', ok: true, detail: 'up, MAC 52:54:00:8a:7a:64' },
      { kind: 'link', subject: 'eth1', ok: true, detail: `up, MAC ${MAC1}` },
      { kind: 'address', subject: '10.0.0.2/24 eth0', ok: true, detail: 'on eth0' },
      { kind: 'address', subject: '10.0.0.3/24 eth0', ok: true, detail: 'on eth0' },
      { kind: 'address', subject: '10.0.0.7/24 eth1', ok: true, detail: 'on eth1' },
      { kind: 'address', subject: '10.0.0.8/24 eth1', ok: true, detail: 'on eth1' },
      {
        kind: 'rule',
        subject: 'from all lookup main suppress_prefixlength 0 priority 30000',
        ok: true,
        detail: 'present',
      },
      { kind: 'rule', subject: 'from 10.0.0.7 to 10.0.0.0/24 table 10001', ok: true, detail: 'present' },
      { kind: 'rule', subject: 'from 10.0.0.8 to 10.0.0.0/24 table 10001', ok: true, detail: 'present' },
      {
        kind: 'rule',
        subject: 'from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001',
        ok: true,
        detail: 'present',
      },
      { kind: 'rule', subject: 'from 10.0.0.7 table 10001', ok: true, detail: 'present' },
      { kind: 'rule', subject: 'from 10.0.0.8 table 10001', ok: true, detail: 'present' },
      { kind: 'rule', subject: 'from all fwmark 0x1000000/0xf000000 table 10001', ok: true, detail: 'present' },
      { kind: 'route', subject: '10.0.0.0/24 dev eth1 table 10001', ok: true, detail: 'present' },
      { kind: 'route', subject: 'default via 10.0.0.1 dev eth1 table 10001', ok: true, detail: 'present' },
      { kind: 'route', subject: 'default via 10.0.0.1 dev eth0 (main table)', ok: true, detail: 'present' },
      { kind: 'rp_filter', subject: 'eth1', ok: true, detail: 'effective 2 (all 1, eth1 2), expected 2' },
    ]);
  });

  const MAIN = 'default via 10.0.0.1 dev eth0 (main table)';
  const mainDefault = (live: LinuxLiveState) => live.routes.filter((r) => r.table === 'main' && r.dst === 'default');
  it.each<[string, (live: LinuxLiveState) => void, string]>([
    [
      // What initscripts' ifup-eth does at boot for a secondary NIC whose ifcfg has GATEWAY= and no DEFROUTE=no.
      'the main default route moved to a secondary NIC',
      (live) => {
        for (const r of mainDefault(live)) r.dev = 'eth1';
      },
      "the main table's default route is via 10.0.0.1 dev eth1",
    ],
    [
      'a second default route with a lower metric',
      (live) => {
        for (const r of mainDefault(live)) r.metric = 100;
        live.routes.push({
          table: 'main',
          dst: 'default',
          dev: 'eth1',
          gateway: '10.0.0.1',
          protocol: 'boot',
          metric: 10,
        });
      },
      "the main table's default route is via 10.0.0.1 dev eth1",
    ],
    [
      'no default route in the main table',
      (live) => {
        live.routes = live.routes.filter((r) => !(r.table === 'main' && r.dst === 'default'));
      },
      'the main table has no default route',
    ],
  ])('fails the main default route check for %s', (_name, mutate, detail) => {
    const live = convergedLive();
    mutate(live);
    const failed = checkState(manualDesired('policy').runtime, live).filter((c) => !c.ok);
    expect(failed).toEqual([{ kind: 'route', subject: MAIN, ok: false, detail }]);
  });

  it('passes when the main default route via eth0 has the lower metric of two', () => {
    const live = convergedLive();
    live.routes.push({
      table: 'main',
      dst: 'default',
      dev: 'eth1',
      gateway: '10.0.0.1',
      protocol: 'boot',
      metric: 101,
    });
    expect(checkState(manualDesired('policy').runtime, live).filter((c) => !c.ok)).toEqual([]);
  });

  it.each<[string, RoutingMode, (live: LinuxLiveState) => void, Omit<Check, 'ok'>[]]>([
    [
      'a missing address',
      'policy',
      (live) => {
        link(live, 'eth1').addresses.pop();
      },
      [{ kind: 'address', subject: '10.0.0.8/24 eth1', detail: 'missing from eth1' }],
    ],
    [
      'an address on another interface',
      'policy',
      (live) => {
        link(live, 'eth1').addresses.pop();
        link(live, 'eth0').addresses.push({ ip: '10.0.0.8', prefixLength: 24 });
      },
      [{ kind: 'address', subject: '10.0.0.8/24 eth1', detail: 'missing; found on eth0' }],
    ],
    [
      'an address with another prefix length',
      'policy',
      (live) => {
        link(live, 'eth0').addresses[1] = { ip: '10.0.0.3', prefixLength: 32 };
      },
      [{ kind: 'address', subject: '10.0.0.3/24 eth0', detail: 'on eth0 as /32' }],
    ],
    [
      'a wrong MAC',
      'policy',
      (live) => {
        link(live, 'eth1').mac = '52:54:00:00:00:99';
      },
      [{ kind: 'link', subject: 'eth1', detail: `MAC is 52:54:00:00:00:99, expected ${MAC1}` }],
    ],
    [
      'a link that is down',
      'policy',
      (live) => {
        link(live, 'eth1').up = false;
      },
      [{ kind: 'link', subject: 'eth1', detail: 'interface is down' }],
    ],
    [
      'a missing interface',
      'rp-filter',
      (live) => {
        live.links = live.links.filter((l) => l.ifname !== 'eth1');
        rpFilter('0', '0', null)(live);
      },
      [
        { kind: 'link', subject: 'eth1', detail: 'interface not found' },
        { kind: 'address', subject: '10.0.0.7/24 eth1', detail: 'missing from eth1' },
        { kind: 'address', subject: '10.0.0.8/24 eth1', detail: 'missing from eth1' },
        { kind: 'rp_filter', subject: 'eth1', detail: 'effective NaN (all 0, eth1 absent), expected 0' },
      ],
    ],
    [
      'a missing rule',
      'policy',
      (live) => {
        live.rules = live.rules.filter((r) => r.from !== '10.0.0.8/32' || r.to !== undefined);
      },
      [{ kind: 'rule', subject: 'from 10.0.0.8 table 10001', detail: 'missing' }],
    ],
    [
      'a missing subnet rule',
      'policy',
      (live) => {
        live.rules = live.rules.filter((r) => !(r.from === '10.0.0.8/32' && r.to !== undefined));
      },
      [{ kind: 'rule', subject: 'from 10.0.0.8 to 10.0.0.0/24 table 10001', detail: 'missing' }],
    ],
    [
      "the main rule missing (only wg-quick's, at 32764)",
      'policy',
      (live) => {
        live.rules = live.rules.map((r) => (r.suppressPrefixLength !== undefined ? { ...r, priority: 32764 } : r));
      },
      [{ kind: 'rule', subject: 'from all lookup main suppress_prefixlength 0 priority 30000', detail: 'missing' }],
    ],
    [
      'a rule pointing at another table',
      'policy',
      (live) => {
        live.rules = live.rules.map((r) =>
          r.from === '10.0.0.7/32' && r.to === undefined ? { ...r, table: '10101' } : r,
        );
      },
      [{ kind: 'rule', subject: 'from 10.0.0.7 table 10001', detail: 'missing' }],
    ],
    [
      'a missing table route',
      'policy',
      (live) => {
        live.routes = live.routes.filter((r) => !(r.table === '10001' && r.dst === 'default'));
      },
      [{ kind: 'route', subject: 'default via 10.0.0.1 dev eth1 table 10001', detail: 'missing' }],
    ],
    [
      'a table route through another gateway',
      'policy',
      (live) => {
        live.routes = live.routes.map((r) =>
          r.table === '10001' && r.dst === 'default' ? { ...r, gateway: '10.0.0.254' } : r,
        );
      },
      [{ kind: 'route', subject: 'default via 10.0.0.1 dev eth1 table 10001', detail: 'missing' }],
    ],
    [
      "the subnet route in main instead of the agent's table",
      'policy',
      (live) => {
        live.routes = live.routes.filter((r) => !(r.table === '10001' && r.dst === '10.0.0.0/24'));
      },
      [{ kind: 'route', subject: '10.0.0.0/24 dev eth1 table 10001', detail: 'missing' }],
    ],
    ['rp_filter all=1, eth1=2 (effective 2, as expected)', 'policy', rpFilter('1', '1', '2'), []],
    ['rp_filter all=2, eth1=0 (effective 2, as expected)', 'policy', rpFilter('2', '1', '0'), []],
    ['rp_filter all=0, eth1=2 (effective 2, as expected)', 'policy', rpFilter('0', '0', '2'), []],
    [
      'rp_filter all=1, eth1=1 (strict)',
      'policy',
      rpFilter('1', '1', '1'),
      [{ kind: 'rp_filter', subject: 'eth1', detail: 'effective 1 (all 1, eth1 1), expected 2' }],
    ],
    [
      'rp_filter all=0, eth1=0 (off)',
      'policy',
      rpFilter('0', '0', '0'),
      [{ kind: 'rp_filter', subject: 'eth1', detail: 'effective 0 (all 0, eth1 0), expected 2' }],
    ],
    [
      'rp_filter all=1, eth1 absent',
      'policy',
      rpFilter('1', '1', null),
      [{ kind: 'rp_filter', subject: 'eth1', detail: 'effective NaN (all 1, eth1 absent), expected 2' }],
    ],
    ['rp_filter all absent, eth1=2 (all counts as 0)', 'policy', rpFilter(null, '1', '2'), []],
    ["rp_filter all=0 everywhere (the manual's setting)", 'rp-filter', rpFilter('0', '0', '0'), []],
    [
      'rp_filter all=2, interfaces 0 (all wins)',
      'rp-filter',
      rpFilter('2', '0', '0'),
      [
        { kind: 'rp_filter', subject: 'eth0', detail: 'effective 2 (all 2, eth0 0), expected 0' },
        { kind: 'rp_filter', subject: 'eth1', detail: 'effective 2 (all 2, eth1 0), expected 0' },
      ],
    ],
    [
      'rp_filter all=0, eth1=1 (the interface wins)',
      'rp-filter',
      rpFilter('0', '0', '1'),
      [{ kind: 'rp_filter', subject: 'eth1', detail: 'effective 1 (all 0, eth1 1), expected 0' }],
    ],
  ])('reports %s (%s mode)', (_name, routing, mutate, expected) => {
    expect(failed(routing, mutate)).toEqual(expected.map((c) => ({ ...c, ok: false })));
  });

  it('checks no rule or table route in rp-filter mode, but rp_filter on every interface', () => {
    const live = convergedLive();
    rpFilter('0', '0', '0')(live);
    live.rules = [];
    live.routes = live.routes.filter((r) => r.table === 'main' && r.dst === 'default');
    expect(
      checkState(manualDesired('rp-filter').runtime, live).map((c) => `${c.ok ? 'ok' : 'FAIL'} ${c.kind} ${c.subject}`),
    ).toEqual([
      'ok link eth0',
      'ok link eth1',
      'ok address 10.0.0.2/24 eth0',
      'ok address 10.0.0.3/24 eth0',
      'ok address 10.0.0.7/24 eth1',
      'ok address 10.0.0.8/24 eth1',
      'ok route default via 10.0.0.1 dev eth0 (main table)',
      'ok rp_filter eth0',
      'ok rp_filter eth1',
    ]);
  });
});
