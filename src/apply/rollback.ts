import { AgentError, HostError } from '../errors.js';
import type { Host } from '../host/host.js';
import { readLinuxState } from './linux-state.js';
import { underRoot } from './root.js';
import { firstLine, runTool } from './run-ip.js';
import { emptyState, loadState, saveState, statePath } from './state.js';
import type { AgentState } from './state.js';
import { ROUTE_PROTO } from '../render/centos/paths.js';

/** What a rollback did. */
export interface RollbackResult {
  files: string[];
  runtime: string[];
  warnings: string[];
}

async function restoreFiles(host: Host, root: string, files: Record<string, string | null>): Promise<string[]> {
  const done: string[] = [];
  for (const [path, content] of Object.entries(files)) {
    if (content === null) await host.fs.remove(underRoot(root, path));
    else await host.fs.writeAtomic(underRoot(root, path), content, 0o644);
    done.push(content === null ? `removed ${path}` : `restored ${path}`);
  }
  return done;
}

async function runUndo(host: Host, lines: string[], sysctls: Record<string, string>, warnings: string[]): Promise<string[]> {
  if ((lines.length > 0 || Object.keys(sysctls).length > 0) && !host.isPrivileged()) {
    throw new HostError('rolling back addresses, rules and sysctls needs root (CAP_NET_ADMIN)');
  }
  if (lines.length > 0) {
    // -force: put back as much as possible; an interface that has gone since cannot be restored.
    const result = await runTool(host, ['ip', '-force', '-batch', '-'], { input: `${lines.join('\n')}\n` });
    if (result.exitCode !== 0) warnings.push(`some runtime changes could not be undone: ${firstLine(result.stderr)}`);
  }
  const pairs = Object.entries(sysctls).map(([k, v]) => `${k}=${v}`);
  if (pairs.length > 0) {
    const result = await runTool(host, ['sysctl', '-q', '-w', ...pairs]);
    if (result.exitCode !== 0) warnings.push(`some sysctls could not be restored: ${firstLine(result.stderr)}`);
  }
  return [...lines, ...pairs.map((p) => `sysctl ${p}`)];
}

/** `eip-agent rollback`: undoes the last apply recorded in the state file (files, runtime, sysctls, ownership). */
export async function rollbackLast(host: Host, root: string): Promise<RollbackResult> {
  const state = await loadState(host, root);
  const snap = state.lastSnapshot;
  if (snap === undefined) throw new AgentError('apply', `nothing to roll back: ${statePath(host, root)} records no apply`);
  const warnings: string[] = [];
  const runtime = await runUndo(host, snap.runtimeUndo, snap.sysctls, warnings);
  const files = await restoreFiles(host, root, snap.files);
  const next: AgentState = { ...state, owned: snap.ownedBefore, absentOnce: [] };
  delete next.lastSnapshot;
  delete next.lastApply;
  next.counters = { ...state.counters, rollbacks: state.counters.rollbacks + 1 };
  await saveState(host, root, next);
  return { files, runtime, warnings };
}

/**
 * `eip-agent rollback --original`: puts back what the guest had before the agent first touched it:
 * removes every address, rule and route the agent added (never the primary address of the primary
 * NIC), restores the original sysctl values and files. The agent then owns nothing.
 */
export async function rollbackOriginal(host: Host, root: string): Promise<RollbackResult> {
  const state = await loadState(host, root);
  const warnings: string[] = [];
  const owned = state.owned;
  const live = owned.addresses.length + owned.routes.length > 0 || Object.keys(state.originalSysctls).length > 0 ? await readLinuxState(host) : null;
  const present = new Set(live?.links.map((l) => l.ifname) ?? []);
  const lines: string[] = [];
  for (const r of owned.rules) lines.push(`rule del from ${r.from}/32 table ${r.table} priority ${r.priority}`);
  // Routes of an interface that has gone went with it.
  for (const r of owned.routes) if (present.has(r.dev)) lines.push(`route del ${r.spec} proto ${ROUTE_PROTO}`);
  for (const a of state.owned.addresses) {
    const link = live?.links.find((l) => l.mac === a.mac);
    if (link === undefined) continue; // the interface is gone, and its addresses with it
    if (link.ifname === state.primaryIfname && `${link.addresses[0]?.ip}/${link.addresses[0]?.prefixLength}` === a.cidr) {
      warnings.push(`${a.cidr} is the primary address of ${link.ifname}: kept`);
      continue;
    }
    lines.push(`address del ${a.cidr} dev ${link.ifname}`);
  }
  // Per-interface sysctls of an interface that has gone cannot be restored (nor need to be).
  const sysctls = Object.fromEntries(Object.entries(state.originalSysctls).filter(([key]) => {
    const iface = /^net\.ipv4\.conf\.([^.]+)\./.exec(key)?.[1];
    return iface === undefined || iface === 'all' || iface === 'default' || present.has(iface);
  }));
  const runtime = await runUndo(host, lines, sysctls, warnings);
  const files = await restoreFiles(host, root, state.originalFiles);
  await saveState(host, root, { ...emptyState(), counters: { ...state.counters, rollbacks: state.counters.rollbacks + 1 } });
  return { files, runtime, warnings };
}
