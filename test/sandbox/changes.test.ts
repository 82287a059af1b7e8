// The manual's operations as changes to the sandbox's trees, without a sandbox: what each one changes, and the one
// line that refuses what a cloud would not do.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { applyChange, type SandboxChange } from '../../src/sandbox/changes.js';
import { planTopology } from '../../src/sandbox/topology.js';
import { manualTree, serverBTree } from '../lab/fixtures.js';

const plan = () =>
  planTopology([
    { name: 'a', tree: manualTree() },
    { name: 'b', tree: serverBTree() },
  ]);
const trees = () => ({ a: manualTree(), b: serverBTree() });
const nic = (tree: MetaTree, mac: string) =>
  (((tree.network as MetaTree).interfaces as MetaTree).macs as MetaTree)[mac] as MetaTree;
const addresses = (tree: MetaTree, mac: string) => nic(tree, mac)['local-ipv4s'] as MetaTree;
const ETH0 = '52:54:00:8A:7A:64';
const ETH1 = '20:90:6F:F7:93:2E';

function changed(change: SandboxChange): { guest: string; tree: MetaTree }[] {
  return applyChange(plan(), trees(), change).trees;
}

describe('applyChange', () => {
  it('unbind-eip clears the EIP and its mode; bind-eip --direct sets both again', () => {
    const unbound = applyChange(plan(), trees(), { op: 'unbind-eip', ip: '10.0.0.3' });
    expect(unbound.description).toBe('unbound EIP 203.0.113.11 from 10.0.0.3 of guest a');
    const a = unbound.trees[0]?.tree as MetaTree;
    expect(addresses(a, ETH0)['10.0.0.3']).toEqual({ gateway: '10.0.0.1', 'subnet-mask': '255.255.255.0' });
    const bound = applyChange(
      plan(),
      { a, b: serverBTree() },
      { op: 'bind-eip', ip: '10.0.0.3', eip: '203.0.113.50', direct: true },
    );
    expect(addresses(bound.trees[0]?.tree as MetaTree, ETH0)['10.0.0.3']).toMatchObject({
      'public-ipv4': '203.0.113.50',
      'public-ipv4-mode': 'direct',
    });
  });

  it("add-ip copies the NIC's gateway and mask; remove-ip deletes a secondary", () => {
    const [added] = changed({ op: 'add-ip', ip: '10.0.0.9', guest: 'a', nic: 'eth1' });
    expect(addresses(added?.tree as MetaTree, ETH1)['10.0.0.9']).toEqual({
      gateway: '10.0.0.1',
      'subnet-mask': '255.255.255.0',
    });
    const [removed] = changed({ op: 'remove-ip', ip: '10.0.0.8' });
    expect(Object.keys(addresses(removed?.tree as MetaTree, ETH1))).toEqual(['10.0.0.7']);
  });

  it('attach-eni lists a new ENI with its primary IP; detach-eni drops it from the listing', () => {
    const [attached] = changed({ op: 'attach-eni', ip: '10.0.0.30', guest: 'a' });
    expect(nic(attached?.tree as MetaTree, '52:54:00:ee:00:01')).toEqual({
      'primary-local-ipv4': '10.0.0.30',
      'local-ipv4s': { '10.0.0.30': { gateway: '10.0.0.1', 'subnet-mask': '255.255.255.0' } },
    });
    const [detached] = changed({ op: 'detach-eni', guest: 'a', nic: 'eth1' });
    expect(nic(detached?.tree as MetaTree, ETH1)).toBeUndefined();
  });

  it("move-ip takes the address and its EIP from one server to the other's eth0, the source first", () => {
    const result = applyChange(plan(), trees(), { op: 'move-ip', ip: '10.0.0.8' });
    expect(result.trees.map((t) => t.guest)).toEqual(['a', 'b']);
    expect(addresses(result.trees[0]?.tree as MetaTree, ETH1)['10.0.0.8']).toBeUndefined();
    expect(addresses(result.trees[1]?.tree as MetaTree, '52:54:00:00:00:20')['10.0.0.8']).toMatchObject({
      'public-ipv4': '203.0.113.13',
    });
    expect(result.description).toBe('moved 10.0.0.8 and its EIP 203.0.113.13 from guest a to eth0 of guest b');
  });

  it.each<[string, SandboxChange, string]>([
    [
      'an IP no ENI has',
      { op: 'unbind-eip', ip: '10.0.0.99' },
      '--ip 10.0.0.99: no ENI in the sandbox has this private IP (eip-agent sandbox status lists them)',
    ],
    [
      'text that is not an address',
      { op: 'remove-ip', ip: '10.0.0.3; reboot' },
      '--ip "10.0.0.3; reboot": expected an IPv4 address such as 10.0.0.9',
    ],
    [
      'an address already bound',
      { op: 'bind-eip', ip: '10.0.0.3', eip: '203.0.113.50', direct: false },
      '--ip 10.0.0.3: already bound to EIP 203.0.113.11; unbind it first',
    ],
    [
      "an EIP on the sandbox's internet link",
      { op: 'bind-eip', ip: '10.0.0.20', eip: '198.51.100.2', direct: false },
      "--eip 198.51.100.2: the sandbox's own internet link",
    ],
    [
      'a primary IP',
      { op: 'remove-ip', ip: '10.0.0.7' },
      '--ip 10.0.0.7: the primary IP of ENI 20:90:6F:F7:93:2E; a cloud cannot remove it (detach the ENI instead)',
    ],
    [
      "an IP outside the NIC's subnet",
      { op: 'add-ip', ip: '10.9.0.9', guest: 'a', nic: 'eth0' },
      "--ip 10.9.0.9: not a host address of eth0's subnet 10.0.0.0/24 (gateway 10.0.0.1)",
    ],
    ['the gateway', { op: 'add-ip', ip: '10.0.0.1', guest: 'a', nic: 'eth0' }, '--ip 10.0.0.1: not a host address'],
    [
      'an IP in use',
      { op: 'attach-eni', ip: '10.0.0.8', guest: 'a' },
      '--ip 10.0.0.8: already a private IP of guest a',
    ],
    [
      'eth0',
      { op: 'detach-eni', guest: 'a', nic: 'eth0' },
      '--nic eth0: the primary NIC (eth0) of guest a; a cloud cannot detach it',
    ],
    [
      'a NIC the guest lacks',
      { op: 'detach-eni', guest: 'a', nic: 'eth5' },
      '--nic "eth5": guest a has eth0 (52:54:00:8a:7a:64), eth1 (20:90:6f:f7:93:2e)',
    ],
    [
      'a guest the sandbox lacks',
      { op: 'add-ip', ip: '10.0.0.9', guest: 'c', nic: 'eth0' },
      '--guest "c": the sandbox has guest a and b',
    ],
  ])('refuses %s in one line', (_what, change, message) => {
    expect(() => applyChange(plan(), trees(), change)).toThrow(ConfigError);
    expect(() => applyChange(plan(), trees(), change)).toThrow(message);
  });

  it('refuses move-ip without a second server', () => {
    const one = planTopology([{ name: 'a', tree: manualTree() }]);
    expect(() => applyChange(one, { a: manualTree() }, { op: 'move-ip', ip: '10.0.0.8' })).toThrow(
      'move-ip needs a second server: eip-agent sandbox up --server-b',
    );
  });

  it('leaves the trees it was given as they were', () => {
    const given = trees();
    applyChange(plan(), given, { op: 'move-ip', ip: '10.0.0.8' });
    expect(given).toEqual(trees());
  });
});
