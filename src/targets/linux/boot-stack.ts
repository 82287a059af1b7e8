// Which network stack will configure the NICs at the next boot: read from the guest's files (under --root), never
// changed. A target uses it to refuse writing files that nothing would read at boot.
import { underRoot } from '../../plan/root.js';
import type { Host } from '../../host/host.js';

/** What a guest's files say about who configures its network at boot. */
export interface NetworkStack {
  /** initscripts' `network` service: its init script and `ifup-eth` are there, and it starts at boot (rc3.d or systemd). */
  legacyNetwork: 'enabled' | 'disabled' | 'absent';
  /** NetworkManager: running (its pid file names a live process), and the settings plugins NetworkManager.conf lists. */
  networkManager: { running: boolean; plugins?: string[] };
  /**
   * Other stacks that may own the NICs at boot: systemd-networkd enabled or configured, netplan configured (Ubuntu/Debian
   * style), ifupdown configuring an interface besides lo in /etc/network/interfaces or interfaces.d (Debian 12 and older).
   */
  others?: OtherStack[];
  /** cloud-init is installed, whether a drop-in disables its network configuration, whether it renders it at every boot. */
  cloudInit: { present: boolean; networkDisabled: boolean; everyBoot?: boolean };
}

/** A network stack besides the two the agent writes for. */
export type OtherStack = 'systemd-networkd' | 'netplan' | 'ifupdown';

const INIT_SCRIPT = '/etc/rc.d/init.d/network';
const IFUPDOWN = '/etc/network/interfaces';
const IFUP_ETH = '/etc/sysconfig/network-scripts/ifup-eth';
const RC_DIRS = ['/etc/rc.d/rc2.d', '/etc/rc.d/rc3.d', '/etc/rc.d/rc4.d', '/etc/rc.d/rc5.d'];
const SYSTEMD_WANTS = '/etc/systemd/system/multi-user.target.wants/network.service';
const NM_PID = '/run/NetworkManager/NetworkManager.pid';
const NM_CONF = '/etc/NetworkManager/NetworkManager.conf';

async function exists(host: Host, root: string, path: string): Promise<boolean> {
  return (await host.fs.meta(underRoot(root, path))) !== null;
}

async function legacyNetwork(host: Host, root: string): Promise<NetworkStack['legacyNetwork']> {
  if (!(await exists(host, root, INIT_SCRIPT)) || !(await exists(host, root, IFUP_ETH))) return 'absent';
  if (await exists(host, root, SYSTEMD_WANTS)) return 'enabled';
  for (const dir of RC_DIRS) {
    if (((await host.fs.list(underRoot(root, dir))) ?? []).some((name) => /^S\d+network$/.test(name))) return 'enabled';
  }
  return 'disabled';
}

async function networkManager(host: Host, root: string): Promise<NetworkStack['networkManager']> {
  const conf = await host.fs.readText(underRoot(root, NM_CONF), { follow: true }).catch(() => null);
  const line = conf === null ? undefined : /^\s*plugins\s*=\s*(.*)$/m.exec(conf)?.[1];
  const plugins =
    line === undefined
      ? undefined
      : line
          .split(',')
          .map((p) => p.trim())
          .filter(Boolean);
  const pid = (await host.fs.readText(underRoot(root, NM_PID)).catch(() => null))?.trim();
  // A pid file says something only about the running system (--root /).
  const running =
    root === '/' && pid !== undefined && /^\d+$/.test(pid) && (await host.fs.meta(`/proc/${pid}`)) !== null;
  return { running, ...(plugins !== undefined ? { plugins } : {}) };
}

async function cloudInit(host: Host, root: string): Promise<NetworkStack['cloudInit']> {
  const present = await exists(host, root, '/etc/cloud/cloud.cfg');
  let networkDisabled = false;
  let everyBoot = false;
  const names = ((await host.fs.list(underRoot(root, '/etc/cloud/cloud.cfg.d'))) ?? [])
    .filter((n) => n.endsWith('.cfg'))
    .map((n) => `/etc/cloud/cloud.cfg.d/${n}`);
  for (const path of ['/etc/cloud/cloud.cfg', ...names]) {
    const text = await host.fs.readText(underRoot(root, path), { follow: true }).catch(() => null);
    if (text === null) continue;
    if (/network:\s*\{?\s*config:\s*disabled/.test(text)) networkDisabled = true;
    // updates: network: when: [boot] (or boot-legacy): the network config is rendered again at every boot.
    if (/updates:\s*\n\s+network:\s*\n\s+when:\s*\[[^\]]*\bboot(?:-legacy)?\b(?!-new)/.test(text)) everyBoot = true;
  }
  return { present, networkDisabled, ...(everyBoot ? { everyBoot } : {}) };
}

async function otherStacks(host: Host, root: string): Promise<NonNullable<NetworkStack['others']>> {
  const others: NonNullable<NetworkStack['others']> = [];
  const networkFiles = ((await host.fs.list(underRoot(root, '/etc/systemd/network'))) ?? []).some((n) =>
    n.endsWith('.network'),
  );
  if (
    networkFiles ||
    (await exists(host, root, '/etc/systemd/system/multi-user.target.wants/systemd-networkd.service'))
  )
    others.push('systemd-networkd');
  if (((await host.fs.list(underRoot(root, '/etc/netplan'))) ?? []).some((n) => n.endsWith('.yaml')))
    others.push('netplan');
  if (await ifupdownConfigures(host, root)) others.push('ifupdown');
  return others;
}

/** Whether ifupdown's files configure an interface other than lo (`iface eth0 inet dhcp`, as Debian's cloud images have). */
async function ifupdownConfigures(host: Host, root: string): Promise<boolean> {
  const parts = ((await host.fs.list(underRoot(root, `${IFUPDOWN}.d`))) ?? []).map((n) => `${IFUPDOWN}.d/${n}`);
  for (const path of [IFUPDOWN, ...parts]) {
    const text = await host.fs.readText(underRoot(root, path), { follow: true }).catch(() => null);
    if (text !== null && /^\s*iface\s+(?!lo\s)\S+\s+inet6?\s/m.test(text)) return true;
  }
  return false;
}

/** Reads what configures the network at boot. Read-only. */
export async function detectNetworkStack(host: Host, root: string): Promise<NetworkStack> {
  const [legacy, nm, ci, others] = await Promise.all([
    legacyNetwork(host, root),
    networkManager(host, root),
    cloudInit(host, root),
    otherStacks(host, root),
  ]);
  return { legacyNetwork: legacy, networkManager: nm, ...(others.length > 0 ? { others } : {}), cloudInit: ci };
}

/** One line for plan and status, e.g. `network at boot: legacy network service enabled; NetworkManager not running`. */
export function describeNetworkStack(stack: NetworkStack): string {
  const legacy = {
    enabled: 'legacy network service enabled',
    disabled: 'legacy network service installed but not enabled',
    absent: 'no legacy network service',
  }[stack.legacyNetwork];
  const nm = stack.networkManager.running
    ? `NetworkManager running${stack.networkManager.plugins ? ` (plugins ${stack.networkManager.plugins.join(', ')})` : ''}`
    : 'NetworkManager not running';
  const ci = stack.cloudInit.present
    ? `; cloud-init present${stack.cloudInit.networkDisabled ? ' (network config disabled)' : ''}`
    : '';
  const others = (stack.others ?? []).map((o) => `; ${o} configured`).join('');
  return `network at boot: ${legacy}; ${nm}${others}${ci}`;
}

/** The stack with NetworkManager's `running` settled: its pid file, else asking it on the bus. */
export async function withNetworkManagerAsked(host: Host, stack: NetworkStack): Promise<NetworkStack> {
  if (stack.networkManager.running) return stack;
  return { ...stack, networkManager: { ...stack.networkManager, running: await networkManagerAnswers(host) } };
}

/**
 * Whether a NetworkManager answers on the system bus (`nmcli -t -f RUNNING general`): the pid file is not always where
 * the agent looks (a container, a private /run). False when nmcli is missing or says anything else. Read-only.
 */
export async function networkManagerAnswers(host: Host): Promise<boolean> {
  try {
    const result = await host.run(['nmcli', '-t', '-f', 'RUNNING', 'general'], { timeoutMs: 10_000 });
    return result.exitCode === 0 && result.stdout.trim() === 'running';
  } catch {
    return false;
  }
}
