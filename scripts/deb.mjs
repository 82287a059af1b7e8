// The .deb of the release (Debian 12/13, Ubuntu 20.04 to 24.04): the executable, the systemd unit, a default config as
// a conffile; built with Debian's own dpkg-deb, no debhelper. The maintainer scripts follow what debhelper's systemd
// snippets do, guarded so that they also work in a chroot or image build where systemd is not running.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Buffer } from 'node:buffer';
import { gzipSync } from 'node:zlib';

/**
 * What the package depends on: the C library the executable links (glibc 2.17, as `objdump -T` shows in the release
 * tests) and what the agent runs (ip, ping, sysctl, systemctl); the rest it finds if there.
 */
export const DEB_DEPENDS = ['libc6 (>= 2.17)', 'iproute2', 'iputils-ping', 'procps', 'systemd'];
/** Used when installed: arping (gratuitous ARP after an address moves), nft (connection marks), netplan (its target). */
export const DEB_RECOMMENDS = ['iputils-arping', 'nftables'];

const UNIT = 'eip-agent.service';

/** The maintainer scripts, as dpkg runs them (`$1`: the action; postinst's `$2`: the version replaced, empty on a first install). */
export const MAINTAINER_SCRIPTS = {
  postinst: `#!/bin/sh
# First install: enable and start (enable only, when systemd is not running); upgrade: restart a running service.
set -e
running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
if [ "$1" = configure ]; then
  if running; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
  if [ -z "$2" ]; then
    if running; then systemctl enable --now ${UNIT} >/dev/null 2>&1 || true
    elif command -v systemctl >/dev/null 2>&1; then systemctl enable ${UNIT} >/dev/null 2>&1 || true
    fi
  elif running; then
    systemctl try-restart ${UNIT} >/dev/null 2>&1 || true
  fi
fi
exit 0
`,
  prerm: `#!/bin/sh
# Removal (not an upgrade): stop and disable.
set -e
if [ "$1" = remove ] && command -v systemctl >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then systemctl disable --now ${UNIT} >/dev/null 2>&1 || true
  else systemctl disable ${UNIT} >/dev/null 2>&1 || true
  fi
fi
exit 0
`,
  postrm: `#!/bin/sh
# Remove keeps the agent's state (/var/lib/eip-agent: what it owns, so a reinstall can still remove it); purge clears it.
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
fi
if [ "$1" = purge ]; then
  rm -rf /var/lib/eip-agent /run/eip-agent
fi
exit 0
`,
};

/**
 * lintian's findings that are true of the executable by design, each with its reason (lintian prints them as
 * overridden, `O:`, not as errors).
 */
const LINTIAN_OVERRIDES = `# The executable is Bun's runtime with the agent's compiled bundle appended to it: strip would cut the bundle off.
eip-agent: unstripped-binary-or-object [usr/bin/eip-agent]
# Bun's runtime links libjpeg statically; the executable is self-contained by design (no Node.js on the guest).
eip-agent: embedded-library libjpeg [usr/bin/eip-agent]
`;

const COPYRIGHT = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: eip-agent

Files: *
Copyright: 2026 eip-agent developers
License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0.
`;

function control({ version, size }) {
  return `Package: eip-agent
Version: ${version}
Architecture: amd64
Maintainer: eip-agent developers <eip-agent@users.noreply.github.com>
Installed-Size: ${size}
Depends: ${DEB_DEPENDS.join(', ')}
Recommends: ${DEB_RECOMMENDS.join(', ')}
Suggests: netplan.io
Section: net
Priority: optional
Homepage: https://github.com/eip-agent/eip-agent
Description: configures ENIs, secondary private IPs and EIPs from instance metadata
 eip-agent reads a cloud VM's elastic network interfaces, secondary private
 IPs and elastic public IPs from the instance metadata, renders the guest's
 network configuration (netplan and systemd-networkd, NetworkManager, ifcfg),
 applies it live, verifies it and rolls back if verification fails. One
 self-contained executable and a systemd service.
`;
}

function changelog(version) {
  return `eip-agent (${version}) unstable; urgency=medium

  * Release ${version}.

 -- eip-agent developers <eip-agent@users.noreply.github.com>  Thu, 01 Jan 2026 00:00:00 +0000
`;
}

/** Builds eip-agent_VERSION_amd64.deb into outDir with dpkg-deb; returns its path. */
export function buildDeb({ executable, unit, config = '{}\n', version, outDir }) {
  const stage = mkdtempSync(join(tmpdir(), 'eip-deb-'));
  try {
    const put = (path, content, mode) => {
      mkdirSync(join(stage, path, '..'), { recursive: true });
      if (typeof content === 'string' || Buffer.isBuffer(content)) writeFileSync(join(stage, path), content);
      else copyFileSync(content.copyOf, join(stage, path));
      chmodSync(join(stage, path), mode);
    };
    put('usr/bin/eip-agent', { copyOf: executable }, 0o755);
    put(`lib/systemd/system/${UNIT}`, unit, 0o644);
    put('etc/eip-agent/config.json', config, 0o644);
    put('usr/share/doc/eip-agent/copyright', COPYRIGHT, 0o644);
    put('usr/share/lintian/overrides/eip-agent', LINTIAN_OVERRIDES, 0o644);
    put('usr/share/doc/eip-agent/changelog.gz', gzipSync(changelog(version), { level: 9 }), 0o644);
    const files = [];
    const walk = (dir) => {
      for (const name of readdirSync(join(stage, dir)).sort()) {
        const path = dir === '' ? name : `${dir}/${name}`;
        if (statSync(join(stage, path)).isDirectory()) {
          chmodSync(join(stage, path), 0o755);
          walk(path);
        } else files.push(path);
      }
    };
    walk('');
    const size = Math.ceil(files.reduce((sum, f) => sum + statSync(join(stage, f)).size, 0) / 1024);
    const md5sums = files
      .filter((f) => !f.startsWith('etc/'))
      .map(
        (f) =>
          `${createHash('md5')
            .update(readFileSync(join(stage, f)))
            .digest('hex')}  ${f}\n`,
      )
      .join('');
    put('DEBIAN/control', control({ version, size }), 0o644);
    put('DEBIAN/conffiles', '/etc/eip-agent/config.json\n', 0o644);
    put('DEBIAN/md5sums', md5sums, 0o644);
    for (const [name, text] of Object.entries(MAINTAINER_SCRIPTS)) put(`DEBIAN/${name}`, text, 0o755);
    chmodSync(join(stage, 'DEBIAN'), 0o755);
    mkdirSync(outDir, { recursive: true });
    const deb = join(outDir, `eip-agent_${version}_amd64.deb`);
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', stage, deb], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    return deb;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
