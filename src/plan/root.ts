import { dirname, join, sep } from 'node:path';
import { HostError } from '../errors.js';
import type { Host } from '../host/host.js';

/** Prefixes an absolute guest path with the --root directory ('/' leaves it as it is). */
export function underRoot(root: string, path: string): string {
  return root === '/' ? path : join(root, path);
}

/**
 * underRoot, refusing a path whose directories lead out of --root through a symbolic link (`ROOT/etc/sysctl.d ->
 * /tmp/x`): under another root the agent reads and writes only inside it. The file itself is never followed
 * (HostFs.readText refuses links).
 */
export async function insideRoot(host: Host, root: string, path: string): Promise<string> {
  const full = underRoot(root, path);
  if (root === '/') return full;
  const [realRoot, realDir] = await Promise.all([host.fs.realpath(root), host.fs.realpath(dirname(full))]);
  if (realDir !== realRoot && !realDir.startsWith(realRoot.endsWith(sep) ? realRoot : `${realRoot}${sep}`)) {
    throw new HostError(
      `${full}: ${dirname(full)} leads outside --root ${root} (to ${realDir}) through a symbolic link: refusing to read or write there`,
    );
  }
  return full;
}
