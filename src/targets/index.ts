import type { Target, TargetName } from './target.js';

export type { ApplyOutcome, Target, TargetName, TargetOptions } from './target.js';

/** Each target is loaded when first used: a Linux run never loads the Windows renderer and its templates. */
const registry: Record<TargetName, () => Promise<Target>> = {
  auto: async () => (await import('./linux/auto.js')).autoTarget,
  centos: async () => (await import('./linux/centos/target.js')).centosTarget,
  networkmanager: async () => (await import('./linux/networkmanager/target.js')).networkManagerTarget,
  netplan: async () => (await import('./linux/netplan/target.js')).netplanTarget,
  windows: async () => (await import('./windows/target.js')).windowsTarget,
};

/** The implementation of a target. */
export function getTarget(name: TargetName): Promise<Target> {
  return registry[name]();
}

/** The target for the running OS: on Linux chosen per plan from the guest's boot stack (see auto.ts). */
export function defaultTargetName(platform: NodeJS.Platform): TargetName {
  return platform === 'win32' ? 'windows' : 'auto';
}
