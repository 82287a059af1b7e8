import { join } from 'node:path';

/** Prefixes an absolute guest path with the --root directory ('/' leaves it as it is). */
export function underRoot(root: string, path: string): string {
  return root === '/' ? path : join(root, path);
}
