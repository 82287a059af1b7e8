import { ValidationError } from '../errors.js';
import type { MetaTree } from '../metadata/tree.js';

// A tree read from a JSON file is only MetaTree by assertion, so every check here looks at the runtime shape.

/** True for a directory node: a plain object (not null, not an array). */
export function isDir(node: unknown): node is MetaTree {
  return typeof node === 'object' && node !== null && !Array.isArray(node);
}

function describe(node: unknown): string {
  if (typeof node === 'string') return 'a value';
  if (isDir(node)) return 'a directory';
  if (node === null) return 'null';
  if (Array.isArray(node)) return 'a list';
  return `a ${typeof node}`;
}

// Own properties only: a name like `constructor` must not resolve to Object.prototype members.
function child(dir: MetaTree, name: string): unknown {
  return Object.hasOwn(dir, name) ? dir[name] : undefined;
}

/** The leaf `name` of `dir` (whose path ends in `/`), or undefined when absent. */
export function optionalLeaf(dir: MetaTree, dirPath: string, name: string): string | undefined {
  const node = child(dir, name);
  if (node === undefined) return undefined;
  if (typeof node !== 'string')
    throw new ValidationError(dirPath + name, undefined, `expected a value, found ${describe(node)}`);
  return node;
}

/** The leaf `name` of `dir`; absence is an error. */
export function requiredLeaf(dir: MetaTree, dirPath: string, name: string): string {
  const value = optionalLeaf(dir, dirPath, name);
  if (value === undefined) throw new ValidationError(dirPath + name, undefined, 'is required but missing');
  return value;
}

/** The sub-directory `name` of `dir`, or undefined when absent; its path is `dirPath + name + '/'`. */
export function optionalDir(dir: MetaTree, dirPath: string, name: string): MetaTree | undefined {
  const node = child(dir, name);
  if (node === undefined) return undefined;
  if (!isDir(node))
    throw new ValidationError(`${dirPath}${name}/`, undefined, `expected a directory, found ${describe(node)}`);
  return node;
}

/** The sub-directory `name` of `dir`; absence is an error. */
export function requiredDir(dir: MetaTree, dirPath: string, name: string): MetaTree {
  const node = optionalDir(dir, dirPath, name);
  if (node === undefined) throw new ValidationError(`${dirPath}${name}/`, undefined, 'is required but missing');
  return node;
}

/**
 * Path to report an invalid directory name on. Paths are printed raw (only the value is JSON-escaped), so a
 * name that could break or spoof the one-line message (whitespace, control, non-ASCII) is reported on its listing.
 */
export function namePath(listingPath: string, name: string): string {
  return /^[\x21-\x7e]+$/.test(name) ? listingPath + name : listingPath;
}
