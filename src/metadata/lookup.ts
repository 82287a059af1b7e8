import type { MetaTree } from './tree.js';

/** The node at `segments` below `tree`, or undefined; own keys only, so names like `constructor` are just names. */
export function lookup(tree: MetaTree, segments: readonly string[]): MetaTree | string | undefined {
  let node: MetaTree | string = tree;
  for (const segment of segments) {
    if (typeof node === 'string' || !Object.hasOwn(node, segment)) return undefined;
    node = node[segment] as MetaTree | string;
  }
  return node;
}

/** Listing entries of a directory node as a metadata server shows them: sub-directories end with `/`. */
export function listingOf(dir: MetaTree): string[] {
  return Object.entries(dir).map(([name, child]) => (typeof child === 'string' ? name : `${name}/`));
}
