// The RPM of the release: the executable, the systemd unit, a default config; built on any system with rpmbuild
// (Debian's `rpm` package). Scriptlets follow the systemd conventions of EL packages, guarded so that they also
// work in a chroot or image build where systemd is not running.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What the package requires: only what the agent runs (ip, ping/arping, sysctl, systemctl). */
export const RPM_REQUIRES = ['iproute', 'iputils', 'procps', 'systemd'];

/** The scriptlets, as rpm runs them (`$1`: how many versions will be installed when the scriptlet is done). */
export const SCRIPTLETS = {
  post: `# First install: enable (and start, when systemd runs); upgrade: restart a running service on the new binary.
running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
# systemd < 239 (CentOS 7 has 219) reads SystemCallFilter=@system-service as an allow-list of almost nothing.
version=$(systemctl --version 2>/dev/null | sed -n '1s/^systemd \\([0-9]*\\).*/\\1/p')
# systemd < 231 has no ExecStartPre=+ (it would ignore the line with a warning; the reset keeps the journal quiet).
if [ -n "$version" ] && [ "$version" -lt 239 ]; then
  mkdir -p /etc/systemd/system/eip-agent.service.d
  {
    printf '# Written by the eip-agent package for systemd %s (< 239).\\n[Service]\\nSystemCallFilter=\\n' "$version"
    if [ "$version" -lt 231 ]; then printf 'ExecStartPre=\\n'; fi
  } > /etc/systemd/system/eip-agent.service.d/10-eip-agent-old-systemd.conf
fi
if running; then systemctl daemon-reload >/dev/null 2>&1 || :; fi
if [ "$1" -eq 1 ]; then
  if running; then systemctl enable --now eip-agent.service >/dev/null 2>&1 || :
  elif command -v systemctl >/dev/null 2>&1; then systemctl enable eip-agent.service >/dev/null 2>&1 || :
  fi
elif running; then
  systemctl try-restart eip-agent.service >/dev/null 2>&1 || :
fi
`,
  preun: `# Erase only (not an upgrade): stop and disable.
if [ "$1" -eq 0 ] && command -v systemctl >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then systemctl disable --now eip-agent.service >/dev/null 2>&1 || :
  else systemctl disable eip-agent.service >/dev/null 2>&1 || :
  fi
fi
`,
  postun: `# Erase only: the drop-in %post wrote goes; the state in /var/lib/eip-agent stays (what the agent owns).
if [ "$1" -eq 0 ]; then
  rm -f /etc/systemd/system/eip-agent.service.d/10-eip-agent-old-systemd.conf
  rmdir /etc/systemd/system/eip-agent.service.d 2>/dev/null || :
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload >/dev/null 2>&1 || :; fi
fi
`,
};

function spec({ version, release, summary }) {
  return `%global __os_install_post %{nil}
%global debug_package %{nil}
%global _build_id_links none
Name: eip-agent
Version: ${version}
Release: ${release}
Summary: ${summary}
License: Apache-2.0
BuildArch: x86_64
AutoReqProv: no
${RPM_REQUIRES.map((r) => `Requires: ${r}`).join('\n')}
Source0: eip-agent
Source1: eip-agent.service
Source2: config.json

%description
eip-agent configures a cloud VM's elastic network interfaces, secondary private IPs and elastic public IPs
from its instance metadata: it renders the guest's network configuration, applies it live, verifies it and
rolls back if verification fails. One self-contained executable (no Node.js needed) and a systemd service.

%install
install -D -m 0755 %{SOURCE0} %{buildroot}/usr/bin/eip-agent
install -D -m 0644 %{SOURCE1} %{buildroot}/usr/lib/systemd/system/eip-agent.service
install -D -m 0644 %{SOURCE2} %{buildroot}/etc/eip-agent/config.json

%files
/usr/bin/eip-agent
/usr/lib/systemd/system/eip-agent.service
%dir /etc/eip-agent
%config(noreplace) /etc/eip-agent/config.json

%post
${SCRIPTLETS.post}
%preun
${SCRIPTLETS.preun}
%postun
${SCRIPTLETS.postun}
`;
}

/** Builds eip-agent-VERSION-RELEASE.x86_64.rpm into outDir; returns its path. */
export function buildRpm({
  executable,
  unit,
  config = '{}\n',
  version,
  release = '1',
  outDir,
  summary = 'Configures ENIs, secondary private IPs and EIPs from the instance metadata',
}) {
  const top = mkdtempSync(join(tmpdir(), 'eip-rpmbuild-'));
  try {
    for (const d of ['SOURCES', 'SPECS', 'BUILD', 'RPMS', 'SRPMS', 'BUILDROOT'])
      mkdirSync(join(top, d), { recursive: true });
    copyFileSync(executable, join(top, 'SOURCES', 'eip-agent'));
    writeFileSync(join(top, 'SOURCES', 'eip-agent.service'), unit);
    writeFileSync(join(top, 'SOURCES', 'config.json'), config);
    writeFileSync(join(top, 'SPECS', 'eip-agent.spec'), spec({ version, release, summary }));
    execFileSync(
      'rpmbuild',
      [
        '-bb',
        '--define',
        `_topdir ${top}`,
        '--define',
        '_binary_payload w6.gzdio',
        join(top, 'SPECS', 'eip-agent.spec'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const dir = join(top, 'RPMS', 'x86_64');
    const [name] = readdirSync(dir);
    mkdirSync(outDir, { recursive: true });
    copyFileSync(join(dir, name), join(outDir, name));
    return join(outDir, name);
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
}
