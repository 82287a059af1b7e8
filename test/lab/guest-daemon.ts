// What the lab's real network daemons (NetworkManager, systemd-networkd) share: a system bus of their own, stopping a
// child by pid, and a guest flushed as a boot finds it.
import type { ChildProcess } from 'node:child_process';
import type { Lab } from './vpc.js';

/** A system bus for one lab daemon: its own socket, everyone allowed (the lab's processes are root anyway). */
export const BUS_CONFIG = (
  socket: string,
) => `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="*"/>
  </policy>
</busconfig>
`;

/** Waits for a child to exit, killing it after ms. */
export function waitExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Flushes what a boot would not find: every address but lo's, every rule but the kernel's three, their tables. */
export async function flushGuest(lab: Lab, ns: string): Promise<void> {
  const rules = JSON.parse((await lab.exec(ns, ['ip', '-j', '-4', 'rule'])).stdout) as {
    priority: number;
    table: string;
  }[];
  const lines: string[] = [];
  const tables = new Set<string>();
  for (const r of rules) {
    if ([0, 32766, 32767].includes(r.priority)) continue;
    lines.push(`rule del priority ${r.priority} table ${r.table}`);
    tables.add(r.table);
  }
  for (const t of tables) lines.push(`route flush table ${t}`);
  const links = JSON.parse((await lab.exec(ns, ['ip', '-j', 'link'])).stdout) as { ifname: string }[];
  for (const l of links) if (l.ifname !== 'lo') lines.push(`address flush dev ${l.ifname}`);
  const result = await lab.exec(ns, ['ip', '-batch', '-'], { input: `${lines.join('\n')}\n` });
  if (result.exitCode !== 0) throw new Error(`flushing the guest failed: ${result.stderr}`);
}
