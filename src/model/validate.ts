import { ValidationError } from '../errors.js';
import { ipv4Value, maskPrefix, type Ipv4 } from './ipv4.js';
import type { PublicIpMode } from './types.js';

// Allow-lists, not deny-lists: these strings end up in files bash sources as root. JS `\d` is ASCII-only and
// `$` without the m flag does not match before a trailing newline, so nothing outside the pattern slips through.
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4_RE = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
const MAC_RE = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$/;
const ID_CHARS_RE = /^[A-Za-z0-9._-]*$/;
const ID_MAX = 128;

/** Parses a strict dotted quad (no leading zeros, no spaces); `path` and `value` name the culprit on failure. */
export function parseIpv4(path: string, value: string): Ipv4 {
  if (!IPV4_RE.test(value)) throw new ValidationError(path, value, 'is not a valid IPv4 address');
  return { text: value, value: ipv4Value(value) };
}

/** Checks a MAC in colon notation; returns it unchanged because URLs must use the listed spelling. */
export function checkMac(path: string, value: string): string {
  if (!MAC_RE.test(value)) throw new ValidationError(path, value, 'is not a valid MAC address');
  return value;
}

/** Checks an identifier (instance, VPC, subnet, region): `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`. */
export function checkId(path: string, value: string): string {
  if (value === '') throw new ValidationError(path, value, 'is empty');
  if (!ID_CHARS_RE.test(value)) {
    throw new ValidationError(
      path,
      value,
      "contains characters that are not allowed (allowed: letters, digits, '.', '_', '-')",
    );
  }
  if (!/^[A-Za-z0-9]/.test(value)) throw new ValidationError(path, value, 'must start with a letter or digit');
  if (value.length > ID_MAX) throw new ValidationError(path, value, `is longer than ${ID_MAX} characters`);
  return value;
}

/** Parses a NIC subnet mask to its prefix length; /0 and /31–/32 leave no room for a gateway plus hosts. */
export function parseNicNetmask(path: string, value: string): number {
  const prefix = maskPrefix(parseIpv4(path, value).value);
  if (prefix === undefined) throw new ValidationError(path, value, 'is not a contiguous netmask');
  if (prefix < 1 || prefix > 30) throw new ValidationError(path, value, 'is not a usable subnet mask for a NIC');
  return prefix;
}

/**
 * Parses an EIP. Any unicast address is accepted (tests use the RFC 5737 documentation ranges); only addresses
 * that can never be a host's public address are refused: 0/8, loopback, link-local (the metadata service), 224/3.
 */
export function parsePublicIpv4(path: string, value: string): Ipv4 {
  const ip = parseIpv4(path, value);
  const n = ip.value;
  const first = n >>> 24;
  const linkLocal = n >>> 16 === (169 << 8) + 254;
  if (first === 0 || first === 127 || first >= 224 || linkLocal) {
    throw new ValidationError(path, value, 'is not a usable public IPv4 address');
  }
  return ip;
}

/** Checks `public-ipv4-mode`: exactly `NAT` or `direct`, case included. */
export function parsePublicMode(path: string, value: string): PublicIpMode {
  if (value === 'NAT' || value === 'direct') return value;
  throw new ValidationError(path, value, 'is not a known public-ipv4-mode (expected NAT or direct)');
}
