import { bunGlobal, type Hasher } from './bun.js';

/**
 * A hex digest of a text: Bun's native hasher on Bun (the release executable), node:crypto on Node. On Bun,
 * node:crypto is a module of its own that the daemon would keep in memory for one hash a poll.
 */
export function hexDigest(algorithm: 'sha1' | 'sha256', text: string): string {
  const bun = bunGlobal();
  const hasher: Hasher =
    bun !== undefined ? new bun.CryptoHasher(algorithm) : process.getBuiltinModule('node:crypto').createHash(algorithm);
  return hasher.update(text).digest('hex');
}
