import { readFileSync } from 'node:fs';
import type { MetaTree } from '../../src/metadata/tree.js';

/** The product manual's example instance (two NICs, two addresses each, all with EIPs). */
export function manualTree(): MetaTree {
  return JSON.parse(readFileSync(new URL('../../examples/manual.json', import.meta.url), 'utf8')) as MetaTree;
}

export const MAC1 = '52:54:00:8A:7A:64';
export const MAC2 = '20:90:6F:F7:93:2E';
/** Metadata directory of NIC 1, ending in `/`. */
export const NIC1 = `network/interfaces/macs/${MAC1}/`;
/** Metadata directory of NIC 2's second address, ending in `/`. */
export const IP8 = `network/interfaces/macs/${MAC2}/local-ipv4s/10.0.0.8/`;

/** Requests a full read of the manual tree takes: 4 leaves + macs listing, 2 × (3 leaves + listing), 4 × 4 leaves. */
export const MANUAL_REQUESTS = 5 + 2 * 4 + 4 * 4;

/** A copy of `tree` with the item at `path` (slash-separated) set, or deleted when `value` is undefined. */
export function edit(tree: MetaTree, path: string, value: MetaTree | string | undefined): MetaTree {
  const copy = structuredClone(tree);
  const names = path.replace(/\/$/u, '').split('/');
  const last = names.pop() as string;
  let node = copy;
  for (const name of names) {
    node[name] ??= {};
    node = node[name] as MetaTree;
  }
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

/** The manual tree plus keys the agent must never request. */
export function manualWithExtras(): MetaTree {
  let tree = manualTree();
  tree = edit(tree, 'hostname', 'vm-1');
  tree = edit(tree, 'placement/zone', 'ap-example-1a');
  tree = edit(tree, 'network/interfaces/other/thing', 'x');
  tree = edit(tree, `${NIC1}mac`, MAC1);
  tree = edit(tree, `${NIC1}ipv6s/fe80::1/gateway`, 'fe80::ff');
  tree = edit(tree, `${IP8}extra`, 'x');
  return tree;
}
