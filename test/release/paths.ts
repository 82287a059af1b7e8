// Where `npm run release` puts what it builds.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** The Linux executable of this version. */
export function releaseExecutable(): string {
  const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  return join(REPO, 'release', `eip-agent-${version}-linux-x64`);
}

/** The tarball for other distributions, of this version. */
export function releaseTarball(): string {
  return `${releaseExecutable()}.tar.gz`;
}

/** The .deb of this version (Debian's file name: eip-agent_VERSION_amd64.deb). */
export function releaseDeb(): string {
  const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  return join(REPO, 'release', `eip-agent_${version}_amd64.deb`);
}
