/** Where initscripts read interface configuration. */
export const NETWORK_SCRIPTS_DIR = '/etc/sysconfig/network-scripts';

/**
 * The sysctl drop-in. sysctl.d files apply in lexical order and a later file wins; CentOS links
 * /etc/sysctl.conf as 99-sysctl.conf, so the name sorts after it to keep its rp_filter lines from winning.
 */
export const SYSCTL_DROPIN = '/etc/sysctl.d/99-zz-eip-agent.conf';

/** Route protocol number that marks routes the agent added, visible as `proto 234` in `ip route`. */
export const ROUTE_PROTO = 234;

/** First candidate routing table id; NIC n (n >= 1) starts at TABLE_BASE + n. */
export const TABLE_BASE = 10000;

/**
 * Rule priority base; below `main` (32766) so the per-NIC tables are consulted first. At the base itself: the rule
 * that lets main's own routes (a container bridge, a VPN, a peering route) win over the tables, all but its default.
 */
export const RULE_PRIORITY_BASE = 30000;

/**
 * Base of the rules that send a secondary NIC's own subnet to its table from its addresses, ahead of the main rule:
 * where eth0 shares the subnet, main's prefix route would otherwise send eth1's traffic there out of eth0.
 */
export const SUBNET_RULE_PRIORITY_BASE = 29000;

/** Path of ifcfg-<device> and friends. */
export function networkScript(kind: 'ifcfg' | 'route' | 'rule', device: string): string {
  return `${NETWORK_SCRIPTS_DIR}/${kind}-${device}`;
}
