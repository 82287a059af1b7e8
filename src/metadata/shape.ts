import { quoteShort } from '../errors.js';

/** The JSON type name used in shape messages: `null` and `array` are told apart from `object`. */
function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function isDirectory(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deeper than any path of the metadata the agent reads (network/interfaces/macs/<mac>/local-ipv4s/<ip>/<key> is 7). */
const MAX_DEPTH = 16;

function problemAt(node: Record<string, unknown>, prefix: string, depth = 1): string | undefined {
  if (depth > MAX_DEPTH)
    return `${prefix.split('/').slice(0, 3).join('/')}/...: nested more than ${MAX_DEPTH} levels deep`;
  for (const [name, child] of Object.entries(node)) {
    // A key is printed as-is only when it is plain visible ASCII, so a crafted key cannot break the one-line message.
    const path = /^[\x21-\x7e]{1,64}$/.test(name) ? `${prefix}${name}` : `${prefix}${quoteShort(name)}`;
    if (typeof child === 'string') continue;
    if (!isDirectory(child)) return `${path}: expected a string or an object, got ${typeName(child)}`;
    const problem = problemAt(child, `${path}/`, depth + 1);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** What is wrong with a parsed JSON value as a MetaTree (one line naming the JSON path), or undefined if it is one. */
export function treeShapeProblem(value: unknown): string | undefined {
  if (!isDirectory(value)) return `(top level): expected an object, got ${typeName(value)}`;
  return problemAt(value, '');
}
