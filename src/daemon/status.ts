// `eip-agent status`: per address, where it is, whether the agent owns it and whether the live system matches.
import type { LinuxLiveState } from '../targets/linux/live-state.js';
import type { Plan } from '../plan/plan.js';
import type { AgentState } from '../plan/record.js';
import type { InstanceModel } from '../model/types.js';
import type { LinuxDesiredRuntime } from '../render/types.js';
import { FULL_READ_MS } from './loop.js';
import { isLiveRule } from '../targets/linux/rules.js';

/** One private address of the metadata (with its EIP, if any) as the live system has it. */
export interface AddressStatus {
  /** Interface name on this system; null when the NIC is not attached. */
  interface: string | null;
  mac: string;
  /** CIDR, e.g. 10.0.0.8/24. */
  address: string;
  eip: string | null;
  mode: 'NAT' | 'direct' | null;
  /** Whether the agent added the address (a primary address from DHCP, or one a person added, is not the agent's). */
  owned: boolean;
  inSync: boolean;
  /** What differs, e.g. `not on eth1`; empty when in sync. */
  drift: string[];
}

/** Everything `status` shows. */
export interface StatusReport {
  root: string;
  target: string;
  routing: string;
  /** True when the plan is empty and every address is in sync. */
  inSync: boolean;
  addresses: AddressStatus[];
  /** Rendered files that differ from disk, with what apply would do. */
  files: { path: string; action: string }[];
  /** Runtime changes apply would make. */
  runtime: string[];
  pendingRemovals: string[];
  /** What configures the network at boot, and why apply would refuse (when it would). */
  bootStack?: string;
  refusal?: string;
  lastApply: NonNullable<AgentState['lastApply']> | null;
  lastError: NonNullable<AgentState['lastError']> | null;
  failedModelHash: string | null;
  /** When the failed model is tried again, and how many times in a row it failed. */
  retryAfter: string | null;
  failedAttempts: number | null;
  counters: AgentState['counters'];
}

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

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)];
}

/** The human form: the address table, then files, runtime, the last apply and the last error. */
export function formatStatus(report: StatusReport): string {
  const rows = report.addresses.map((a) => [
    a.interface ?? '-',
    a.mac,
    a.address,
    a.eip ?? '-',
    a.mode ?? '-',
    a.owned ? 'yes' : 'no',
    a.inSync ? 'in sync' : `drift: ${a.drift.join('; ')}`,
  ]);
  const out = [`Target ${report.target}, routing ${report.routing}, root ${report.root}`, ''];
  out.push(...table(['INTERFACE', 'MAC', 'ADDRESS', 'EIP', 'MODE', 'OWNED', 'STATE'], rows));
  out.push('');
  // The lists are in `plan` (with diffs) and in --json; here only how much is pending.
  const files = report.files.length;
  const runtime = report.runtime.length;
  out.push(
    `Files:        ${files === 0 ? 'in sync' : `${files} file${files === 1 ? '' : 's'} to write (${report.files.map((f) => f.path.split('/').at(-1)).join(', ')})`}`,
  );
  out.push(`Runtime:      ${runtime === 0 ? 'in sync' : `${runtime} change${runtime === 1 ? '' : 's'} pending`}`);
  if (report.pendingRemovals.length > 0) out.push(`Pending:      ${report.pendingRemovals.join('; ')}`);
  if (report.bootStack !== undefined) out.push(`At boot:      ${report.bootStack.replace(/^network at boot: /, '')}`);
  if (report.refusal !== undefined) out.push(`Refused:      ${report.refusal}`);
  const last = report.lastApply;
  out.push(
    `Last apply:   ${last === null ? 'never' : `${last.at} ${last.ok ? 'ok' : 'FAILED (rolled back)'}, model ${last.modelHash.slice(0, 12)}`}`,
  );
  out.push(
    `Last error:   ${report.lastError === null ? 'none' : `${report.lastError.at} ${report.lastError.message}`}`,
  );
  if (report.failedModelHash !== null) {
    const times = report.failedAttempts === 1 ? 'once' : `${report.failedAttempts} times in a row`;
    const when =
      report.retryAfter !== null
        ? `the service tries it again after ${report.retryAfter} (the wait doubles with each failure, at most 15 min)`
        : 'the service tries it again at its next read';
    out.push(
      `Retry:        model ${report.failedModelHash.slice(0, 12)} failed verification ${times} and was rolled back; ${when}, or at once when the metadata changes; \`eip-agent apply\` retries it now (stop the service first)`,
    );
  }
  out.push(
    `Reads:        the service sees an ENI attached or detached and a private IP added, removed or moved within one interval; an EIP bound, unbound or put in direct mode and a NIC's primary IP swapped (the same addresses listed) at its next full read, at most ${FULL_READ_MS / 1000} s later`,
  );
  const c = report.counters;
  out.push(
    `Counters:     ${c.applies} applies, ${c.verifyFailures} verify failures, ${c.rollbacks} rollbacks, ${c.metadataErrors} metadata errors`,
  );
  out.push('', report.inSync ? 'In sync.' : 'Not in sync: `eip-agent plan` shows what apply would change.');
  return `${out.join('\n')}\n`;
}
