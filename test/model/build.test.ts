import { describe, expect, it } from 'vitest';
import type { MetaTree } from '../../src/metadata/tree.js';
import { buildModel } from '../../src/model/index.js';
import type { InstanceModel } from '../../src/model/index.js';
import { L1, L2, M1, M2, N1, del, ipDir, manualTree, set } from './fixture.js';

describe('buildModel: happy paths', () => {
  it('builds the product manual example exactly', () => {
    const expected: InstanceModel = {
      instanceId: 'ins-r8hr2upy',
      region: 'ap-guangzhou',
      primaryMac: M1,
      nics: [
        {
          mac: M1,
          macLower: '52:54:00:8a:7a:64',
          isPrimaryNic: true,
          index: 0,
          vpcId: 'vpc-m9xbc1ph',
          subnetId: 'subnet-9vkjgn4o',
          prefixLength: 24,
          netmask: '255.255.255.0',
          network: '10.0.0.0',
          cidr: '10.0.0.0/24',
          gateway: '10.0.0.1',
          addresses: [
            { ip: '10.0.0.2', path: `${L1}10.0.0.2`, publicIp: '203.0.113.10', publicMode: 'NAT' },
            { ip: '10.0.0.3', path: `${L1}10.0.0.3`, publicIp: '203.0.113.11', publicMode: 'NAT' },
          ],
        },
        {
          mac: M2,
          macLower: '20:90:6f:f7:93:2e',
          isPrimaryNic: false,
          index: 1,
          vpcId: 'vpc-m9xbc1ph',
          subnetId: 'subnet-9vkjgn4o',
          prefixLength: 24,
          netmask: '255.255.255.0',
          network: '10.0.0.0',
          cidr: '10.0.0.0/24',
          gateway: '10.0.0.1',
          addresses: [
            { ip: '10.0.0.7', path: `${L2}10.0.0.7`, publicIp: '203.0.113.12', publicMode: 'NAT' },
            { ip: '10.0.0.8', path: `${L2}10.0.0.8`, publicIp: '203.0.113.13', publicMode: 'NAT' },
          ],
        },
      ],
    };
    expect(buildModel(manualTree())).toEqual(expected);
  });

  it('moves the primary NIC first, puts each primary IP first, and handles several subnets including a /20', () => {
    const A = '52:54:00:11:22:33';
    const B = '52:54:00:AA:BB:CC';
    const C = 'FA:16:3E:00:00:01';
    const sub = (gateway: string, mask: string, extra: Record<string, string | null> = {}): MetaTree =>
      ipDir({ gateway, 'subnet-mask': mask, ...extra });
    const tree: MetaTree = {
      'instance-id': 'ins-3nic',
      mac: '52:54:00:aa:bb:cc', // another spelling of B: matched case-insensitively
      'local-ipv4': '10.1.3.4',
      network: {
        interfaces: {
          macs: {
            [A]: {
              'primary-local-ipv4': '10.1.16.5',
              'vpc-id': 'vpc-a',
              'subnet-id': 'subnet-a',
              'local-ipv4s': {
                '10.1.16.5': sub('10.1.16.1', '255.255.255.0'),
                '10.1.16.6': sub('10.1.16.1', '255.255.255.0'),
              },
            },
            [B]: {
              'primary-local-ipv4': '10.1.3.4',
              'vpc-id': 'vpc-a',
              'subnet-id': 'subnet-b',
              'local-ipv4s': {
                // The secondary is listed before the primary.
                '10.1.15.200': sub('10.1.0.1', '255.255.240.0', { 'public-ipv4': '203.0.113.99' }),
                '10.1.3.4': sub('10.1.0.1', '255.255.240.0', {
                  'public-ipv4': '198.51.100.7',
                  'public-ipv4-mode': 'direct',
                }),
              },
            },
            [C]: {
              'primary-local-ipv4': '172.16.5.10',
              'local-ipv4s': { '172.16.5.10': sub('172.16.5.1', '255.255.255.0', { 'public-ipv4-mode': 'direct' }) },
            },
          },
        },
      },
    };
    const la = `network/interfaces/macs/${A}/local-ipv4s/`;
    const lb = `network/interfaces/macs/${B}/local-ipv4s/`;
    const lc = `network/interfaces/macs/${C}/local-ipv4s/`;
    expect(buildModel(tree)).toEqual({
      instanceId: 'ins-3nic',
      primaryMac: B,
      nics: [
        {
          mac: B,
          macLower: '52:54:00:aa:bb:cc',
          isPrimaryNic: true,
          index: 0,
          vpcId: 'vpc-a',
          subnetId: 'subnet-b',
          prefixLength: 20,
          netmask: '255.255.240.0',
          network: '10.1.0.0',
          cidr: '10.1.0.0/20',
          gateway: '10.1.0.1',
          addresses: [
            { ip: '10.1.3.4', path: `${lb}10.1.3.4`, publicIp: '198.51.100.7', publicMode: 'direct' },
            { ip: '10.1.15.200', path: `${lb}10.1.15.200`, publicIp: '203.0.113.99', publicMode: 'NAT' },
          ],
        },
        {
          mac: A,
          macLower: A,
          isPrimaryNic: false,
          index: 1,
          vpcId: 'vpc-a',
          subnetId: 'subnet-a',
          prefixLength: 24,
          netmask: '255.255.255.0',
          network: '10.1.16.0',
          cidr: '10.1.16.0/24',
          gateway: '10.1.16.1',
          addresses: [
            { ip: '10.1.16.5', path: `${la}10.1.16.5` },
            { ip: '10.1.16.6', path: `${la}10.1.16.6` },
          ],
        },
        {
          mac: C,
          macLower: 'fa:16:3e:00:00:01',
          isPrimaryNic: false,
          index: 2,
          prefixLength: 24,
          netmask: '255.255.255.0',
          network: '172.16.5.0',
          cidr: '172.16.5.0/24',
          gateway: '172.16.5.1',
          addresses: [{ ip: '172.16.5.10', path: `${lc}172.16.5.10` }],
        },
      ],
    } satisfies InstanceModel);
  });

  it('omits absent optional fields instead of setting them to undefined', () => {
    const tree = manualTree();
    for (const path of [
      'instance-id',
      'local-ipv4',
      'placement',
      `${N1}vpc-id`,
      `${N1}subnet-id`,
      `${L1}10.0.0.3/public-ipv4`,
    ])
      del(tree, path);
    const model = buildModel(tree);
    expect(Object.keys(model)).toEqual(['primaryMac', 'nics']);
    const nic = model.nics[0];
    expect(nic && Object.keys(nic)).not.toContain('vpcId');
    expect(nic && Object.keys(nic)).not.toContain('subnetId');
    // The mode left behind without an EIP is ignored.
    expect(nic?.addresses[1]).toStrictEqual({ ip: '10.0.0.3', path: `${L1}10.0.0.3` });
  });

  it('ignores entries it does not use and accepts a small (/30) and a large (/8) subnet', () => {
    const tree = manualTree();
    set(tree, 'hostname', 'anything at all; $(even this)');
    set(tree, `${N1}local-ipv4s/10.0.0.2/unknown`, { x: '`y`' });
    set(tree, `network/interfaces/macs/${M2}/local-ipv4s`, {
      '10.9.9.9': ipDir({ gateway: '10.0.0.1', 'subnet-mask': '255.0.0.0' }),
    });
    set(tree, `network/interfaces/macs/${M2}/primary-local-ipv4`, '10.9.9.9');
    set(tree, `${N1}local-ipv4s`, { '10.0.0.2': ipDir({ 'subnet-mask': '255.255.255.252' }) });
    const model = buildModel(tree);
    expect(model.nics.map((n) => n.cidr)).toEqual(['10.0.0.0/30', '10.0.0.0/8']);
  });

  it('is pure: the input tree is not modified and two calls give equal results', () => {
    const tree = manualTree();
    const before = structuredClone(tree);
    expect(buildModel(tree)).toEqual(buildModel(tree));
    expect(tree).toEqual(before);
  });
});
