#!/bin/sh
# Installs eip-agent from this unpacked tarball: the executable in /usr/local/bin, the default config (kept if one
# exists), and, where systemd runs, the systemd service, which eip-agent writes, enables and starts itself. Run as
# root. DESTDIR=/path installs into an image root instead (no service is touched there).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${DESTDIR:-}
# Decided before anything is installed, so that the script never stops half-way: no systemd is not an error.
service=yes
if [ -n "$dest" ] || ! command -v systemctl >/dev/null 2>&1 || [ ! -d /run/systemd/system ]; then service=no; fi
install -D -m 0755 "$here/eip-agent" "$dest/usr/local/bin/eip-agent"
if [ ! -e "$dest/etc/eip-agent/config.json" ]; then install -D -m 0644 "$here/config.json" "$dest/etc/eip-agent/config.json"; fi
if [ "$service" = no ]; then
  echo "install.sh: installed $dest/usr/local/bin/eip-agent and $dest/etc/eip-agent/config.json; no service installed, since systemd is not running here: where it runs, \`eip-agent install --systemd\` adds it; elsewhere start \`eip-agent run\` as root from the init system" >&2
  exit 0
fi
"$dest/usr/local/bin/eip-agent" install --systemd
