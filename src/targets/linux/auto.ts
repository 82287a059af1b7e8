import { detectNetworkStack, withNetworkManagerAsked, type NetworkStack } from './boot-stack.js';
import type { Host } from '../../host/host.js';
import { centosTarget } from './centos/target.js';
import { netplanTarget } from './netplan/target.js';
import { networkManagerTarget } from './networkmanager/target.js';
import type { Target } from '../target.js';

const LINUX = { centos: centosTarget, networkmanager: networkManagerTarget, netplan: netplanTarget } as const;
type LinuxName = keyof typeof LINUX;

/**
 * The Linux target whose files this guest reads at boot: centos where the legacy network service starts at boot
 * (CentOS 7, TencentOS 2), networkmanager where NetworkManager runs (EL8 and later, TencentOS 3/4), netplan where
 * netplan is configured (Ubuntu, Debian cloud images), else centos, whose plan then says what is missing. Read-only.
 */
export async function chooseLinuxTarget(host: Host, root: string): Promise<LinuxName> {
  return (await readBootStack(host, root)).choice;
}

/** The boot stack with NetworkManager's running resolved (asked on the bus only when the legacy service is not enabled), and the choice. */
async function readBootStack(host: Host, root: string): Promise<{ choice: LinuxName; stack: NetworkStack }> {
  const stack = await detectNetworkStack(host, root);
  if (stack.legacyNetwork === 'enabled') return { choice: 'centos', stack };
  const asked = await withNetworkManagerAsked(host, stack);
  if (asked.networkManager.running) return { choice: 'networkmanager', stack: asked };
  return { choice: asked.others?.includes('netplan') === true ? 'netplan' : 'centos', stack: asked };
}

function targetOf(name: string): Target {
  return name in LINUX ? LINUX[name as LinuxName] : LINUX.centos;
}

/** The default on Linux: plans with the target chosen from the guest's boot stack; the plan names it, and the rest follows the plan. */
export const autoTarget: Target = {
  name: 'auto',
  async plan(host, model, options) {
    const { choice, stack } = await readBootStack(host, options.root);
    return LINUX[choice].plan(host, model, { ...options, knownStack: stack });
  },
  apply: (host, plan, options) => targetOf(plan.target).apply(host, plan, options),
  verify: (host, plan) => targetOf(plan.target).verify(host, plan),
  status: (host, model, plan, state, options) => targetOf(plan.target).status(host, model, plan, state, options),
  // Every Linux target sees the live NICs the same way.
  liveNics: (host, macs) => LINUX.centos.liveNics(host, macs),
  // The Linux targets share one rollback from the agent's records; no boot stack needs reading for it.
  rollback: (host, root, options) => LINUX.centos.rollback(host, root, options),
  watch: (host, plan, onDrift) => targetOf(plan.target).watch!(host, plan, onDrift),
};
