// Tree builders for the model tests: a fresh copy of the product manual's example, and one-line mutators.
import type { MetaTree } from '../../src/metadata/tree.js';

/** eth0 and eth1 of the product manual's example. */
export const M1 = '52:54:00:8A:7A:64';
export const M2 = '20:90:6F:F7:93:2E';
/** NIC directory paths (trailing slash) and their local-ipv4s/ listings. */
export const N1 = `network/interfaces/macs/${M1}/`;
export const N2 = `network/interfaces/macs/${M2}/`;
export const L1 = `${N1}local-ipv4s/`;
export const L2 = `${N2}local-ipv4s/`;

/** One `local-ipv4s/<ip>/` directory; options override or drop (`null`) leaves. */
export function ipDir(leaves: Record<string, string | null> = {}): MetaTree {
  const all: Record<string, string | null> = { gateway: '10.0.0.1', 'subnet-mask': '255.255.255.0', ...leaves };
  const dir: MetaTree = {};
  for (const [name, value] of Object.entries(all)) if (value !== null) dir[name] = value;
  return dir;
}

/** The manual's example: two NICs in 10.0.0.0/24, each with a primary and a secondary IP, EIPs 203.0.113.10..13. */
export function manualTree(): MetaTree {
  return {
    'instance-id': 'ins-r8hr2upy',
    mac: M1,
    'local-ipv4': '10.0.0.2',
    placement: { region: 'ap-guangzhou', zone: 'ap-guangzhou-3' },
    network: {
      interfaces: {
        macs: {
          [M1]: {
            'primary-local-ipv4': '10.0.0.2',
            'vpc-id': 'vpc-m9xbc1ph',
            'subnet-id': 'subnet-9vkjgn4o',
            'local-ipv4s': {
              '10.0.0.2': ipDir({ 'public-ipv4': '203.0.113.10', 'public-ipv4-mode': 'NAT' }),
              '10.0.0.3': ipDir({ 'public-ipv4': '203.0.113.11', 'public-ipv4-mode': 'NAT' }),
            },
          },
          [M2]: {
            'primary-local-ipv4': '10.0.0.7',
            'vpc-id': 'vpc-m9xbc1ph',
            'subnet-id': 'subnet-9vkjgn4o',
            'local-ipv4s': {
              '10.0.0.7': ipDir({ 'public-ipv4': '203.0.113.12', 'public-ipv4-mode': 'NAT' }),
              // No mode: the model must default it to NAT.
              '10.0.0.8': ipDir({ 'public-ipv4': '203.0.113.13' }),
            },
          },
        },
      },
    },
  };
}

// Paths are split on '/', which no MAC or IP contains; a name with '/' in it must be given as an array.
function segments(path: string | readonly string[]): string[] {
  return typeof path === 'string' ? path.split('/').filter((s) => s !== '') : [...path];
}

function parentOf(tree: MetaTree, path: string | readonly string[]): { dir: MetaTree; name: string } {
  const parts = segments(path);
  const name = parts.pop();
  if (name === undefined) throw new Error('empty path');
  let dir = tree;
  for (const part of parts) {
    const next = dir[part];
    if (next === undefined) dir[part] = {};
    else if (typeof next === 'string') throw new Error(`${part} is a leaf`);
    dir = dir[part] as MetaTree;
  }
  return { dir, name };
}

/** Sets a leaf or directory, creating parent directories. */
export function set(tree: MetaTree, path: string | readonly string[], value: MetaTree | string): void {
  const { dir, name } = parentOf(tree, path);
  dir[name] = value;
}

/** Removes an entry. */
export function del(tree: MetaTree, path: string | readonly string[]): void {
  const { dir, name } = parentOf(tree, path);
  delete dir[name];
}

/** Renames an entry in place, keeping its position in the listing. */
export function rename(tree: MetaTree, path: string | readonly string[], to: string): void {
  const { dir, name } = parentOf(tree, path);
  const entries = Object.entries(dir).map(([k, v]) => [k === name ? to : k, v] as const);
  for (const k of Object.keys(dir)) delete dir[k];
  for (const [k, v] of entries) dir[k] = v;
}

/** Sets `gateway` on every address of a NIC, so only the gateway-vs-private-IP rule can fire. */
export function setNicGateway(tree: MetaTree, nicPath: string, gateway: string): void {
  const { dir, name } = parentOf(tree, `${nicPath}local-ipv4s`);
  for (const ip of Object.values(dir[name] as MetaTree)) (ip as MetaTree).gateway = gateway;
}

/** Every leaf and every directory name in the tree, as segment arrays, in listing order. */
export function positions(tree: MetaTree, prefix: string[] = []): { leaves: string[][]; dirs: string[][] } {
  const leaves: string[][] = [];
  const dirs: string[][] = [];
  for (const [name, node] of Object.entries(tree)) {
    const path = [...prefix, name];
    if (typeof node === 'string') leaves.push(path);
    else {
      dirs.push(path);
      const inner = positions(node, path);
      leaves.push(...inner.leaves);
      dirs.push(...inner.dirs);
    }
  }
  return { leaves, dirs };
}
