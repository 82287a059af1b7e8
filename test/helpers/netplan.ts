// What the netplan tests share.
import { execFileSync } from 'node:child_process';

/** eth0 as cloud-init renders it on an Ubuntu cloud image (by MAC, renamed, DHCP). */
export function cloudInitNetplan(mac: string): string {
  return `# This file is generated from information provided by the datasource.\nnetwork:\n    ethernets:\n        eth0:\n            dhcp4: true\n            match:\n                macaddress: ${mac}\n            set-name: eth0\n    version: 2\n`;
}

/**
 * Whether `netplan` is on PATH, for the tests that run it: false skips them, except under CI=true, where a missing
 * netplan fails the file instead.
 */
export function requireNetplan(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v netplan'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI === 'true')
      throw new Error('netplan is not installed (.ci/run installs netplan.io); CI=true: not skipping');
    return false;
  }
}
