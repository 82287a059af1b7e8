// `eip-agent status` on Linux: the metadata's addresses compared with the live kernel state and the agent's records.
import type { LinuxLiveState } from './live-state.js';
import type { Plan } from '../../plan/plan.js';
import type { AgentState } from '../../plan/record.js';
import type { AddressStatus, StatusReport } from '../../plan/status-report.js';
import type { InstanceModel } from '../../model/types.js';
import type { LinuxDesiredRuntime } from '../../render/types.js';
import { isLiveRule } from './rules.js';

/** What statusReport is computed from. */
export interface StatusInput {
  model: InstanceModel;
  plan: Plan;
  live: LinuxLiveState;
  state: AgentState;
  routing: string;
}

/** Compares the metadata's addresses with the live system and the agent's records. Pure. */
export function statusReport({ model, plan, live, state, routing }: StatusInput): StatusReport {
  const runtime = plan.desired.runtime as LinuxDesiredRuntime;
  const addresses = model.nics.flatMap((nic) => {
    const link = live.links.find((l) => l.mac === nic.macLower);
    return nic.addresses.map((a): AddressStatus => {
      // The target's own prefix where it chose one (netplan gives a NIC on a DHCP lease its other addresses as /32).
      const prefixLength = runtime.addresses.find((x) => x.ip === a.ip)?.prefixLength ?? nic.prefixLength;
      const cidr = `${a.ip}/${prefixLength}`;
      const drift: string[] = [];
      const wanted = [{ ip: a.ip, prefixLength }];
      if (a.publicIp !== undefined && a.publicMode === 'direct') wanted.push({ ip: a.publicIp, prefixLength: 32 });
      if (link === undefined) drift.push('NIC not attached');
      else {
        for (const w of wanted) {
          const found = link.addresses.find((x) => x.ip === w.ip);
          if (found === undefined) drift.push(`${w.ip}/${w.prefixLength} not on ${link.ifname}`);
          else if (found.prefixLength !== w.prefixLength)
            drift.push(`${w.ip} is /${found.prefixLength} on ${link.ifname}, not /${w.prefixLength}`);
          for (const rule of runtime.rules.filter((r) => r.from === w.ip)) {
            if (!live.rules.some((r) => isLiveRule(r, rule)))
              drift.push(
                rule.to !== undefined
                  ? `no rule from ${w.ip}/32 to ${rule.to} lookup ${rule.table}`
                  : `no rule from ${w.ip}/32 to table ${rule.table}`,
              );
          }
        }
      }
      const owned = state.owned.addresses.some((o) => o.mac === nic.macLower && o.cidr === cidr);
      return {
        interface: link?.ifname ?? null,
        mac: nic.macLower,
        address: cidr,
        eip: a.publicIp ?? null,
        mode: a.publicIp === undefined ? null : (a.publicMode ?? 'NAT'),
        owned,
        inSync: drift.length === 0,
        drift,
      };
    });
  });
  const files = plan.files.filter((f) => f.action !== 'unchanged').map((f) => ({ path: f.path, action: f.action }));
  const changes = plan.runtime.map((c) => c.summary);
  return {
    root: plan.root,
    target: plan.target,
    routing,
    inSync:
      addresses.every((a) => a.inSync) &&
      files.length === 0 &&
      changes.length === 0 &&
      plan.ownership.pending.length === 0,
    addresses,
    files,
    runtime: changes,
    pendingRemovals: plan.ownership.pending,
    ...(plan.bootStack !== undefined ? { bootStack: plan.bootStack } : {}),
    ...(plan.refusal !== undefined ? { refusal: plan.refusal } : {}),
    lastApply: state.lastApply ?? null,
    lastError: state.lastError ?? null,
    failedModelHash: state.failedModelHash ?? null,
    retryAfter: state.failedModelHash !== undefined ? (state.retryAfter ?? null) : null,
    failedAttempts: state.failedModelHash !== undefined ? (state.failedAttempts ?? 1) : null,
    counters: state.counters,
  };
}
