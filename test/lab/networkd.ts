// A real systemd-networkd (Debian's systemd 252) managing one lab guest: in the guest's namespace, in a private mount
// namespace where /sys is read-only (so it runs without udev, as in a container), /run/systemd a tmpfs, and
// /etc/systemd/network and /run/systemd/network bound from the guest's --root, so it reads what the agent and
// `netplan generate --root-dir` wrote there. Its own system bus (a private dbus-daemon, as the NetworkManager lab has):
// `networkctl` and the agent reach it with DBUS_SYSTEM_BUS_ADDRESS. Stopped by pid, never by name.
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUS_CONFIG, flushGuest, waitExit } from './guest-daemon.js';
import type { Lab } from './vpc.js';

const NETWORKD = '/lib/systemd/systemd-networkd';

/** Whether systemd-networkd and netplan are installed (.ci/run installs netplan.io; networkd comes with systemd). */
export function networkdAvailable(): boolean {
  try {
    execFileSync('sh', ['-c', `test -x ${NETWORKD} && command -v netplan && getent passwd systemd-network`], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

export interface LabNetworkd {
  /** DBUS_SYSTEM_BUS_ADDRESS of its bus: pass it to the agent and to networkctl. */
  readonly env: Record<string, string>;
  /** `systemctl restart systemd-networkd`: stopped and started on the files as they are. */
  restart(): Promise<void>;
  /** A reboot as networkd sees it: stopped, the guest's addresses, rules and tables flushed, `netplan generate`, started. */
  reboot(): Promise<void>;
  /** What networkd logged lately. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts networkd for `guest` as a boot does: `netplan generate --root-dir` on the guest's root, the guest flushed,
 * networkd started; waits until `ready` (a check of the live state, as a boot waits for the network to be online) holds.
 */
export async function startNetworkd(lab: Lab, guest: string, ready: () => Promise<boolean>): Promise<LabNetworkd> {
  const dir = mkdtempSync(join(tmpdir(), 'eipnd-'));
  const root = lab.guestRoot(guest);
  const ns = lab.guestNs(guest);
  for (const sub of ['etc/systemd/network', 'run/systemd/network']) mkdirSync(join(root, sub), { recursive: true });
  // networkd drops to the systemd-network user before it connects to the bus: the socket's directory must let it in.
  chmodSync(dir, 0o755);
  const socket = join(dir, 'bus');
  writeFileSync(join(dir, 'bus.conf'), BUS_CONFIG(socket));
  const env = { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${socket}` };
  const bus = spawn('dbus-daemon', [`--config-file=${join(dir, 'bus.conf')}`, '--nofork'], { stdio: 'ignore' });
  const script = join(dir, 'run-networkd.sh');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      'set -e',
      'mount -o remount,ro /sys 2>/dev/null || { mount --bind /sys /sys; mount -o remount,ro,bind /sys; }',
      'mount -t tmpfs tmpfs /run/systemd',
      'mkdir -p /run/systemd/netif /run/systemd/network',
      'chown systemd-network:systemd-network /run/systemd/netif',
      `mount --bind ${root}/run/systemd/network /run/systemd/network`,
      `mount --bind ${root}/etc/systemd/network /etc/systemd/network`,
      `exec ${NETWORKD}`,
      '',
    ].join('\n'),
  );
  chmodSync(script, 0o755);
  let networkd: ChildProcess | undefined;
  let log = '';
  const start = async (): Promise<void> => {
    const child = spawn('ip', ['netns', 'exec', ns, 'unshare', '-m', '--propagation', 'private', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env, SYSTEMD_LOG_LEVEL: 'info' },
    });
    networkd = child;
    child.stderr!.on('data', (b: Buffer) => (log = (log + b.toString()).slice(-20_000)));
    const deadline = Date.now() + 30_000;
    while (!(await ready())) {
      if (child.exitCode !== null) throw new Error(`systemd-networkd exited ${child.exitCode}:\n${log.slice(-3000)}`);
      if (Date.now() > deadline)
        throw new Error(`systemd-networkd did not configure the guest within 30 s:\n${log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const stopNetworkd = async (): Promise<void> => {
    if (networkd === undefined) return;
    networkd.kill('SIGTERM');
    await waitExit(networkd, 10_000);
    networkd = undefined;
  };
  const generate = (): void => {
    execFileSync('netplan', ['generate', '--root-dir', root], { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  try {
    generate();
    await flushGuest(lab, ns);
    await start();
  } catch (error) {
    await stopNetworkd();
    bus.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    env,
    async restart() {
      await stopNetworkd();
      await start();
    },
    async reboot() {
      await stopNetworkd();
      await flushGuest(lab, ns);
      generate();
      await start();
    },
    log: () => log,
    async stop() {
      await stopNetworkd();
      bus.kill('SIGTERM');
      await waitExit(bus, 5_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
