// IPv4 arithmetic on unsigned 32-bit numbers: the model needs parsing, masks, subnet ends and containment, nothing
// more, and plain numbers keep a model build of hundreds of addresses cheap (no BigInt, no object per address).

/** A validated dotted quad and its value as an unsigned 32-bit number. */
export interface Ipv4 {
  readonly text: string;
  readonly value: number;
}

/** The value of a dotted quad the caller has already matched against a strict pattern. */
export function ipv4Value(text: string): number {
  const [a, b, c, d] = text.split('.').map(Number) as [number, number, number, number];
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

/** The dotted quad of an unsigned 32-bit number. */
export function ipv4Text(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** The mask of a prefix length from 0 to 32. */
export function prefixMask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** The prefix length of a contiguous netmask (ones, then zeros), or undefined when it is not contiguous. */
export function maskPrefix(mask: number): number | undefined {
  const hostBits = ~mask >>> 0;
  // Contiguous exactly when the host part is 2^k - 1.
  if ((hostBits & (hostBits + 1)) !== 0) return undefined;
  return 32 - Math.log2(hostBits + 1);
}

/** The first (network) and last (broadcast) addresses of the subnet of `value` with `prefixLength`. */
export function subnetEnds(value: number, prefixLength: number): { first: number; last: number } {
  const mask = prefixMask(prefixLength);
  const first = (value & mask) >>> 0;
  return { first, last: (first | ~mask) >>> 0 };
}
