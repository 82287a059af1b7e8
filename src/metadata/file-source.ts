import { MetadataError } from '../errors.js';
import type { Host } from '../host/host.js';
import { listingOf, lookup } from './lookup.js';
import { treeShapeProblem } from './shape.js';
import type { MetadataSource, MetaTree } from './tree.js';
import { readAgentTree, type MetaReader } from './walker.js';

function segments(path: string): string[] {
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
  return trimmed === '' ? [] : trimmed.split('/');
}

/** A reader over an in-memory tree; a file is stricter than HTTP and names a directory found where a leaf belongs. */
function treeReader(tree: MetaTree, file: string): MetaReader {
  const where = (): string => `in ${file}`;
  return {
    async list(path) {
      const node = lookup(tree, segments(path));
      if (node === undefined) return undefined;
      if (typeof node === 'string') throw new MetadataError(`${path}: expected an object, got a string (${where()})`);
      return listingOf(node);
    },
    async leaf(path) {
      const node = lookup(tree, segments(path));
      if (node !== undefined && typeof node !== 'string')
        throw new MetadataError(`${path}: expected a string, got an object (${where()})`);
      return node;
    },
    where,
    notFound: () => `not found ${where()}`,
  };
}

async function load(host: Host, path: string): Promise<MetaTree> {
  let text: string | null;
  try {
    text = await host.fs.readText(path, { follow: true });
  } catch (error) {
    throw new MetadataError(
      `metadata file ${path}: cannot read: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  if (text === null) throw new MetadataError(`metadata file ${path}: not found`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    // The parser's own message may quote the file; only the position is kept.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new MetadataError(
      `metadata file ${path}: invalid JSON${position !== undefined ? ` at position ${position}` : ''}`,
      { cause: error },
    );
  }
  const problem = treeShapeProblem(data);
  if (problem !== undefined) throw new MetadataError(`${problem} (in ${path})`);
  return data as MetaTree;
}

/** Reads the metadata from a JSON file of the same tree, projected exactly as the HTTP source projects it. */
export function fileMetadataSource(host: Host, path: string): MetadataSource {
  return {
    describe: path,
    read: async () => readAgentTree(treeReader(await load(host, path), path)),
  };
}
