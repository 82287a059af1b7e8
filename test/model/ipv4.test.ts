import { describe, expect, it } from 'vitest';
import { ipv4Text, ipv4Value, maskPrefix, prefixMask, subnetEnds } from '../../src/model/ipv4.js';

describe('ipv4', () => {
  it('converts dotted quads to unsigned numbers and back, high bit included', () => {
    for (const [text, value] of [
      ['0.0.0.0', 0],
      ['10.0.0.2', 0x0a000002],
      ['192.0.2.255', 0xc00002ff],
      ['255.255.255.255', 0xffffffff],
      ['128.0.0.1', 0x80000001],
    ] as const) {
      expect(ipv4Value(text)).toBe(value);
      expect(ipv4Text(value)).toBe(text);
    }
  });

  it('gives the mask of every prefix length and the prefix of every contiguous mask', () => {
    for (let prefix = 0; prefix <= 32; prefix++) {
      const mask = prefixMask(prefix);
      expect(mask.toString(2).replace(/^0$/, '').padStart(32, '0')).toBe('1'.repeat(prefix) + '0'.repeat(32 - prefix));
      expect(maskPrefix(mask)).toBe(prefix);
    }
    expect(ipv4Text(prefixMask(24))).toBe('255.255.255.0');
  });

  it('refuses masks whose ones are not contiguous', () => {
    for (const text of ['255.0.255.0', '255.255.255.1', '0.255.255.255', '255.255.254.128', '128.0.0.1'])
      expect(maskPrefix(ipv4Value(text))).toBeUndefined();
  });

  it('gives the network and broadcast ends of a subnet', () => {
    const ends = (ip: string, prefix: number) => Object.values(subnetEnds(ipv4Value(ip), prefix)).map(ipv4Text);
    expect(ends('10.0.0.7', 24)).toEqual(['10.0.0.0', '10.0.0.255']);
    expect(ends('172.16.5.9', 20)).toEqual(['172.16.0.0', '172.16.15.255']);
    expect(ends('203.0.113.6', 30)).toEqual(['203.0.113.4', '203.0.113.7']);
    expect(ends('200.1.2.3', 1)).toEqual(['128.0.0.0', '255.255.255.255']);
    expect(ends('10.1.2.3', 0)).toEqual(['0.0.0.0', '255.255.255.255']);
    expect(ends('10.1.2.3', 32)).toEqual(['10.1.2.3', '10.1.2.3']);
  });
});
