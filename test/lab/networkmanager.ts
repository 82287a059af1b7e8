// A real NetworkManager (Debian's network-manager, 1.42) managing one lab guest: its own system D-Bus (a private
// dbus-daemon --system config and socket), the keyfile plugin only, its config under the guest's --root and its state
// in a temp dir, running in the guest's namespace in a private mount namespace where /sys is read-only (so it runs
// without udev, as in a container, and manages the guest's NICs). Stopped by pid, never by name.
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUS_CONFIG, flushGuest, waitExit } from './guest-daemon.js';
import type { Lab, LabRun } from './vpc.js';

const NM = '/usr/sbin/NetworkManager';
const READY_MS = 30_000;

/** Whether NetworkManager and dbus-daemon are installed (.ci/run installs them). */
export function networkManagerAvailable(): boolean {
  try {
    execFileSync(NM, ['--version'], { stdio: 'ignore' });
    execFileSync('dbus-daemon', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface LabNetworkManager {
  /** DBUS_SYSTEM_BUS_ADDRESS of its bus: pass it to the agent and to nmcli. */
  readonly env: Record<string, string>;
  /** Where its keyfile plugin reads profiles (under the guest's root). */
  readonly profileDir: string;
  nmcli(args: readonly string[]): Promise<LabRun>;
  /** A reboot as NetworkManager sees it: stopped, the guest's addresses, rules and tables flushed, started again. */
  reboot(): Promise<void>;
  /** Stops NetworkManager and its bus, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** What a cloud image ships for eth0 (cloud-init's "System eth0", priority 120): the primary as the lease left it. */
export function cloudProfile(device: string, cidr: string, gateway: string): string {
  return [
    '[connection]',
    `id=System ${device}`,
    'uuid=5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03',
    'type=ethernet',
    `interface-name=${device}`,
    'autoconnect-priority=120',
    '',
    '[ipv4]',
    'method=manual',
    `address1=${cidr}`,
    `gateway=${gateway}`,
    '',
    '[ipv6]',
    'method=disabled',
    '',
  ].join('\n');
}

/**
 * Starts NetworkManager for `guest` as a boot does: the guest's addresses flushed, `profiles` (file name -> keyfile) in
 * its profile directory; waits until it runs and every device in `connected` is connected.
 */
export async function startNetworkManager(
  lab: Lab,
  guest: string,
  profiles: Record<string, string>,
  connected: readonly string[],
): Promise<LabNetworkManager> {
  const dir = mkdtempSync(join(tmpdir(), 'eipnm-'));
  const socket = join(dir, 'bus');
  const root = lab.guestRoot(guest);
  const ns = lab.guestNs(guest);
  const profileDir = join(root, 'etc/NetworkManager/system-connections');
  mkdirSync(profileDir, { recursive: true });
  mkdirSync(join(dir, 'state'));
  for (const [name, content] of Object.entries(profiles)) {
    writeFileSync(join(profileDir, name), content);
    chmodSync(join(profileDir, name), 0o600);
  }
  const conf = join(root, 'etc/NetworkManager/NetworkManager.conf');
  writeFileSync(
    conf,
    `[main]\nplugins=keyfile\nno-auto-default=*\nauth-polkit=false\n\n[keyfile]\npath=${profileDir}\n\n[logging]\nlevel=INFO\n`,
  );
  writeFileSync(join(dir, 'bus.conf'), BUS_CONFIG(socket));
  const script = join(dir, 'run-nm.sh');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      'set -e',
      // Read-only /sys: NetworkManager runs without udev (which it would wait for) and manages the NICs it sees.
      'mount -o remount,ro /sys',
      'mkdir -p /run/NetworkManager /var/lib/NetworkManager',
      'mount -t tmpfs tmpfs /run/NetworkManager',
      `mount --bind ${dir}/state /var/lib/NetworkManager`,
      `exec ${NM} --no-daemon --debug --config=${conf} --state-file=${dir}/state/NetworkManager.state`,
      '',
    ].join('\n'),
  );
  chmodSync(script, 0o755);
  const env = { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${socket}` };
  let log = '';
  const bus = spawn('dbus-daemon', [`--config-file=${join(dir, 'bus.conf')}`, '--nofork'], { stdio: 'ignore' });
  let nm: ChildProcess | undefined;
  const nmcli = (args: readonly string[]) => lab.exec(ns, ['nmcli', ...args], { env });

  const start = async (): Promise<void> => {
    nm = spawn('ip', ['netns', 'exec', ns, 'unshare', '-m', '--propagation', 'private', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    });
    nm.stderr!.on('data', (b: Buffer) => (log = (log + b.toString()).slice(-20_000)));
    const deadline = Date.now() + READY_MS;
    for (;;) {
      if (nm.exitCode !== null) throw new Error(`NetworkManager exited ${nm.exitCode}:\n${log.slice(-3000)}`);
      const running = await nmcli(['-t', '-f', 'RUNNING', 'general']);
      const devices =
        running.stdout.trim() === 'running' ? await nmcli(['-t', '-f', 'DEVICE,STATE', 'device']) : undefined;
      const states = new Map((devices?.stdout ?? '').split('\n').map((l) => l.split(':') as [string, string]));
      if (devices !== undefined && connected.every((d) => states.get(d) === 'connected')) return;
      if (Date.now() > deadline)
        throw new Error(
          `NetworkManager not ready after ${READY_MS} ms (${devices?.stdout.trim() ?? running.stdout.trim()}):\n${log.slice(-3000)}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const stopNm = async (): Promise<void> => {
    if (nm === undefined) return;
    nm.kill('SIGTERM');
    await waitExit(nm, 10_000);
    nm = undefined;
  };

  try {
    // As at boot: NetworkManager configures eth0 from its profile (on a configured NIC it would only assume it).
    await flushGuest(lab, ns);
    await start();
  } catch (error) {
    await stopNm();
    bus.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  let stopped = false;
  return {
    env,
    profileDir,
    nmcli,
    async reboot() {
      await stopNm();
      await flushGuest(lab, ns);
      await start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopNm();
      bus.kill('SIGTERM');
      await waitExit(bus, 5_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
