import { describe, expect, it } from 'vitest';
import { concernsDrift, driftFilterOf } from '../../src/targets/linux/monitor.js';
import { manualDesired } from '../helpers/manual-guest.js';

// Lines as `ip monitor address route rule link` (iproute2 6.1) prints them.
const FILTER = driftFilterOf(manualDesired('policy').runtime);

describe('concernsDrift', () => {
  it("follows the managed interfaces and the agent's tables", () => {
    // 254: main, for the rule that lets main's own routes win (`lookup main` in rule events).
    expect(FILTER).toEqual({ ifnames: ['eth0', 'eth1'], tables: [10001, 254] });
  });

  it.each<[string, boolean]>([
    ['Deleted 3: eth1    inet 10.0.0.8/24 scope global secondary eth1', true],
    ['3: eth1    inet 10.0.0.7/24 scope global eth1', true],
    ['Deleted 10.0.0.0/24 dev eth1 proto kernel scope link src 10.0.0.7 ', true],
    ['Deleted default via 10.0.0.1 dev eth0 proto dhcp ', true],
    ['Deleted 30001:\tfrom 10.0.0.7 lookup 10001', true],
    ['Deleted 30000:\tfrom all lookup main suppress_prefixlength 0', true],
    ['default via 10.0.0.1 dev eth1 table 10001 proto 234 ', true],
    ['3: eth1@if9: <BROADCAST,MULTICAST> mtu 1500 qdisc noqueue state DOWN group default ', true],
    // Not ours: another interface, another table, IPv6, continuation lines.
    ['4: eth10    inet 192.0.2.5/24 scope global eth10', false],
    ['5: veth-eth1x    inet 192.0.2.6/24 scope global veth-eth1x', false],
    ['Deleted 30005:\tfrom 192.0.2.9 lookup 100', false],
    ['default via 192.0.2.1 dev wg0 table 100001 ', false],
    ['3: eth1    inet6 fe80::7435:a2ff:fe8c:a60e/64 scope link ', false],
    ['local fe80::7435:a2ff:fe8c:a60e dev eth1 table local proto kernel metric 0 pref medium', false],
    ['       valid_lft forever preferred_lft forever', false],
    ['', false],
  ])('%j -> %s', (line, expected) => {
    expect(concernsDrift(line, FILTER)).toBe(expected);
  });
});
