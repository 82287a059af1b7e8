import { MetadataError, quoteShort } from '../errors.js';
import { lookup } from './lookup.js';
import type { MetaTree } from './tree.js';

/** Raw access to a metadata tree by path relative to its root; the walker alone decides what is required. */
export interface MetaReader {
  /** Raw entries of the listing at `path` (which ends with `/`), directories suffixed with `/`; undefined when absent. */
  list(path: string): Promise<string[] | undefined>;
  /** Raw text of the leaf at `path`; undefined when absent. */
  leaf(path: string): Promise<string | undefined>;
  /** Where `path` lives, for messages: its URL, or the file. */
  where(path: string): string;
  /** How an absent item is reported, e.g. `not found (404) at <url>`. */
  notFound(path: string): string;
}

const MACS = 'network/interfaces/macs/';

/** More NICs or addresses than any instance type has: a listing beyond these is refused, not crawled. */
export const MAX_NICS = 64;
export const MAX_ADDRESSES_PER_NIC = 256;

// A name becomes a URL path segment: anything that could change the path or hide in a log line is refused.
function badName(name: string): boolean {
  if (name === '' || name === '.' || name === '..') return true;
  // Control characters included: they could hide in a log line.
  // eslint-disable-next-line no-control-regex
  return /[\s/\\?#%\u0000-\u001f\u007f]/u.test(name);
}

function fail(reader: MetaReader, path: string, problem: string): never {
  throw new MetadataError(`${path}: ${problem} (${reader.where(path)})`);
}

async function leaf(reader: MetaReader, path: string, required: boolean): Promise<string | undefined> {
  const raw = await reader.leaf(path);
  if (raw === undefined) {
    if (required) throw new MetadataError(`${path}: ${reader.notFound(path)}`);
    return undefined;
  }
  if (raw.includes('\u0000')) fail(reader, path, 'value contains a NUL character');
  // Only the terminator goes: other whitespace is the server's and validation must see it.
  return raw.endsWith('\n') ? raw.slice(0, -1) : raw;
}

/** Names of a required listing whose every entry must be a directory, in listing order. */
async function directories(reader: MetaReader, path: string): Promise<string[]> {
  const entries = await reader.list(path);
  if (entries === undefined) throw new MetadataError(`${path}: ${reader.notFound(path)}`);
  const max = path === MACS ? MAX_NICS : MAX_ADDRESSES_PER_NIC;
  if (entries.length > max) fail(reader, path, `${entries.length} entries, more than the ${max} the agent accepts`);
  const names = new Set<string>();
  entries.forEach((entry, index) => {
    if (entry === '') fail(reader, path, `empty entry at line ${index + 1} of the listing`);
    if (!entry.endsWith('/')) fail(reader, path, `entry ${quoteShort(entry)} is not a directory`);
    const name = entry.slice(0, -1);
    if (badName(name)) fail(reader, path, `bad entry ${quoteShort(entry)}`);
    if (names.has(name)) fail(reader, path, `duplicate entry ${quoteShort(entry)}`);
    names.add(name);
  });
  return [...names];
}

/** An object of the defined values only, keeping order; fromEntries so a name like `__proto__` stays a plain key. */
function present(pairs: [string, MetaTree | string | undefined][]): MetaTree {
  return Object.fromEntries(pairs.filter((pair): pair is [string, MetaTree | string] => pair[1] !== undefined));
}

/** Reads children of `dir` concurrently, each with `read`, as an object in listing order. */
async function eachDirectory(
  reader: MetaReader,
  dir: string,
  read: (path: string) => Promise<MetaTree>,
): Promise<MetaTree> {
  const names = await directories(reader, dir);
  const children = await Promise.all(names.map((name) => read(`${dir}${name}/`)));
  return present(names.map((name, i) => [name, children[i]]));
}

/**
 * The last complete read, for a refresh: what it gave for a path that cannot change while the listings show the
 * same NIC and address (a NIC's VPC and subnet; an address's gateway and mask; the instance's own keys). `value` is
 * undefined for a leaf it found absent; the result is undefined where it did not look (a NIC or address it did not see).
 */
type Known = (path: string) => { value: string | undefined } | undefined;

/** A leaf from the last complete read when it is known there, else read. */
function fixedLeaf(
  reader: MetaReader,
  known: Known | undefined,
  path: string,
  required: boolean,
): Promise<string | undefined> {
  const kept = known?.(path);
  return kept !== undefined ? Promise.resolve(kept.value) : leaf(reader, path, required);
}

async function readAddress(reader: MetaReader, dir: string, known: Known | undefined): Promise<MetaTree> {
  const [gateway, mask, publicIp] = await Promise.all([
    fixedLeaf(reader, known, `${dir}gateway`, true),
    fixedLeaf(reader, known, `${dir}subnet-mask`, true),
    // An EIP is bound and unbound at any time: always read.
    leaf(reader, `${dir}public-ipv4`, false),
  ]);
  // The mode only means something for a bound EIP: most addresses have none, and asking would be a 404 each.
  const mode = publicIp === undefined ? undefined : await leaf(reader, `${dir}public-ipv4-mode`, false);
  return present([
    ['gateway', gateway],
    ['subnet-mask', mask],
    ['public-ipv4', publicIp],
    ['public-ipv4-mode', mode],
  ]);
}

async function readNic(reader: MetaReader, dir: string, known: Known | undefined): Promise<MetaTree> {
  const [primary, vpc, subnet, addresses] = await Promise.all([
    // The cloud can make another listed address the NIC's primary: always read.
    leaf(reader, `${dir}primary-local-ipv4`, true),
    fixedLeaf(reader, known, `${dir}vpc-id`, false),
    fixedLeaf(reader, known, `${dir}subnet-id`, false),
    // Each NIC goes on to its addresses as soon as its own listing is in, not when every NIC's is.
    eachDirectory(reader, `${dir}local-ipv4s/`, (path) => readAddress(reader, path, known)),
  ]);
  return present([
    ['primary-local-ipv4', primary],
    ['vpc-id', vpc],
    ['subnet-id', subnet],
    ['local-ipv4s', addresses],
  ]);
}

/** What a complete read gave for each fixed leaf, by path (see Known). */
function knownFrom(previous: MetaTree): Known {
  return (path) => {
    const segments = path.split('/');
    const dir = lookup(previous, segments.slice(0, -1));
    if (dir === undefined || typeof dir === 'string') return undefined;
    const value = lookup(dir, segments.slice(-1));
    return { value: typeof value === 'string' ? value : undefined };
  };
}

/**
 * Reads exactly the keys the agent uses, each level's requests at once (depth 3, 4 for an EIP's mode), and returns them as a
 * MetaTree; throws MetadataError on the first problem, never a partial tree. With `previous` (a complete read of
 * the same service), a refresh: the listings (eth0's MAC included), each NIC's primary IP and every address's EIP
 * and mode are read again, and what cannot change for a NIC or an address the listings still show is taken from
 * `previous` (the instance's own keys too); a NIC or address that `previous` does not have is read whole.
 */
export async function readAgentTree(reader: MetaReader, previous?: MetaTree): Promise<MetaTree> {
  const known = previous === undefined ? undefined : knownFrom(previous);
  const [instanceId, mac, localIpv4, region, macs] = await Promise.all([
    fixedLeaf(reader, known, 'instance-id', false),
    // eth0's MAC is part of the listings: always read, as they are.
    leaf(reader, 'mac', true),
    fixedLeaf(reader, known, 'local-ipv4', false),
    fixedLeaf(reader, known, 'placement/region', false),
    eachDirectory(reader, MACS, (path) => readNic(reader, path, known)),
  ]);
  return present([
    ['instance-id', instanceId],
    ['mac', mac],
    ['local-ipv4', localIpv4],
    ['placement', region === undefined ? undefined : { region }],
    ['network', { interfaces: { macs } }],
  ]);
}

/** The listings of a tree the agent read: eth0's MAC, the NICs and each NIC's private IPs, as one string. */
export function listingsOf(tree: MetaTree): string {
  const macs = ((tree.network as MetaTree | undefined)?.interfaces as MetaTree | undefined)?.macs as
    MetaTree | undefined;
  const nics = Object.entries(macs ?? {}).map(([mac, nic]) => [
    mac,
    Object.keys(((nic as MetaTree)['local-ipv4s'] as MetaTree | undefined) ?? {}),
  ]);
  return JSON.stringify([tree.mac, nics]);
}

/** Reads the same listings from the service: two levels of requests, one per NIC at the second. */
export async function readListings(reader: MetaReader): Promise<string> {
  const [mac, nics] = await Promise.all([
    leaf(reader, 'mac', true),
    directories(reader, MACS).then((names) =>
      Promise.all(names.map(async (name) => [name, await directories(reader, `${MACS}${name}/local-ipv4s/`)])),
    ),
  ]);
  return JSON.stringify([mac, nics]);
}
