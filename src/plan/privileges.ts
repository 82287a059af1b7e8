import { HostError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { Plan } from './plan.js';

/** Refuses, before anything is written, a plan with runtime changes when the agent cannot make them. */
export function requirePrivileges(host: Host, plan: Plan, options: { runtime: boolean }): void {
  if (options.runtime && plan.runtime.length > 0 && !host.isPrivileged()) {
    throw new HostError(
      'changing addresses, rules and sysctls needs root (CAP_NET_ADMIN): run as root, or use --no-runtime to write files only',
    );
  }
}
