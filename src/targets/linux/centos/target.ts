import { describeNetworkStack, detectNetworkStack } from '../boot-stack.js';
import { renderCentos } from './render.js';
import { linuxTarget } from '../target.js';

/** CentOS/RHEL with initscripts: ifcfg-ethN, route-/rule-ethN, a sysctl drop-in, `ip` at runtime. */
export const centosTarget = linuxTarget({
  name: 'centos',
  render: renderCentos,
  async bootCheck(host, root, known) {
    // ifcfg files with NM_CONTROLLED=no are read at boot only by the legacy network service: without it, a reboot
    // would leave the NICs (eth0 too) unconfigured, and the agent could not even reach the metadata to repair it.
    const stack = known ?? (await detectNetworkStack(host, root));
    const description = describeNetworkStack(stack);
    if (stack.legacyNetwork === 'enabled') return { description, stack };
    const has =
      stack.legacyNetwork === 'absent'
        ? 'none (/etc/rc.d/init.d/network and ifup-eth)'
        : 'it installed but not enabled';
    const refusal =
      `target centos writes ifcfg files with NM_CONTROLLED=no, which only the legacy network service reads at boot, ` +
      `and this guest has ${has}: a reboot would leave its NICs unconfigured`;
    if (stack.others !== undefined) {
      // A Debian or Ubuntu guest: the legacy service is not the way; netplan is where it is configured, else NetworkManager.
      const owner = `${stack.others.join(' and ')} configured here`;
      const todo = stack.others.includes('netplan')
        ? 'use --target netplan (the default target chooses it where netplan is configured)'
        : 'eip-agent writes for netplan, NetworkManager and the legacy network service, not for bare systemd-networkd or ifupdown: ' +
          'configure the NICs by hand (`eip-agent plan` shows what they need), ' +
          "or have netplan or NetworkManager manage them (apt-get install netplan.io or network-manager, take them out of the other stack's files) " +
          'and use --target netplan or networkmanager';
      return { description, stack, refusal: `${refusal} (${owner}); ${todo}; nothing was written` };
    }
    return {
      description,
      stack,
      refusal: `${refusal}; install and enable it (EL8: dnf install network-scripts && systemctl enable network), nothing was written`,
    };
  },
});
