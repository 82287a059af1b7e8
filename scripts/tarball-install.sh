#!/bin/sh
# Installs eip-agent from this unpacked tarball: the executable in /usr/local/bin, the default config (kept if one
# exists), and the systemd service, which eip-agent writes, enables and starts itself. Run as root.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
install -D -m 0755 "$here/eip-agent" /usr/local/bin/eip-agent
if [ ! -e /etc/eip-agent/config.json ]; then install -D -m 0644 "$here/config.json" /etc/eip-agent/config.json; fi
/usr/local/bin/eip-agent install --systemd
