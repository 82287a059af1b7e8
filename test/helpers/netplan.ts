// What the netplan tests share.

/** eth0 as cloud-init renders it on an Ubuntu cloud image (by MAC, renamed, DHCP). */
export function cloudInitNetplan(mac: string): string {
  return `# This file is generated from information provided by the datasource.\nnetwork:\n    ethernets:\n        eth0:\n            dhcp4: true\n            match:\n                macaddress: ${mac}\n            set-name: eth0\n    version: 2\n`;
}
