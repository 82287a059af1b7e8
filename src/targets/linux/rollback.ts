import type { RollbackResult } from '../../plan/rollback-result.js';
import { loadProfiles } from './networkmanager/profiles.js';
import { AgentError, HostError } from '../../errors.js';
import type { FileMeta, Host } from '../../host/host.js';
import { addressIndex, readLinuxState } from './live-state.js';
import { insideRoot } from '../../plan/root.js';
import { runGuardedBatch } from './batch.js';
import { firstLine, runTool } from '../../host/run-tool.js';
import { emptyState, loadState, saveState, statePath } from '../../plan/record.js';
import type { AgentState } from '../../plan/record.js';
import { ROUTE_PROTO } from './paths.js';
import { routeSpec } from './plan-runtime.js';
import { isLiveRule } from './rules.js';
import { ruleSpec } from './rule-spec.js';
import { marksPlace, readMarks, replaceScript, runMarksScript } from './marks.js';
import type { MarksTool } from '../../plan/record.js';

const UNDO_NEEDS_ROOT = 'rolling back addresses, rules and sysctls needs root (CAP_NET_ADMIN)';

/** Runs the connection marks' undo script; a failure is a warning (false), as for the other runtime undo. */
async function undoMarks(
  host: Host,
  tool: MarksTool,
  script: string | undefined,
  warnings: string[],
  done = 'put back',
): Promise<{ done: string[]; complete: boolean }> {
  if (script === undefined) return { done: [], complete: true };
  if (!host.isPrivileged()) throw new HostError(UNDO_NEEDS_ROOT);
  try {
    await runMarksScript(host, tool, script);
    return { done: [`${marksPlace(tool)} ${done}`], complete: true };
  } catch (error) {
    warnings.push(`the connection marks could not be put back: ${(error as Error).message}`);
    return { done: [], complete: false };
  }
}

async function restoreFiles(
  host: Host,
  root: string,
  files: Record<string, string | null>,
  meta: Record<string, FileMeta> = {},
): Promise<string[]> {
  const done: string[] = [];
  for (const [path, content] of Object.entries(files)) {
    const target = await insideRoot(host, root, path);
    const m = meta[path];
    if (content === null) await host.fs.remove(target);
    else await host.fs.writeAtomic(target, content, m?.mode ?? 0o644, m);
    done.push(content === null ? `removed ${path}` : `restored ${path}`);
  }
  return done;
}

async function runUndo(
  host: Host,
  lines: string[],
  sysctls: Record<string, string>,
  warnings: string[],
): Promise<{ done: string[]; complete: boolean }> {
  if ((lines.length > 0 || Object.keys(sysctls).length > 0) && !host.isPrivileged()) {
    throw new HostError(UNDO_NEEDS_ROOT);
  }
  const done = [...lines];
  let complete = true;
  if (lines.length > 0) {
    // -force: put back as much as possible; an interface that has gone since cannot be restored.
    const { result, restored, warnings: around } = await runGuardedBatch(host, lines, { force: true });
    if (result.exitCode !== 0) {
      complete = false;
      warnings.push(`some runtime changes could not be undone: ${firstLine(result.stderr)}`);
    }
    warnings.push(...around);
    done.push(...restored.map((line) => `${line} (removed by the kernel with a deleted address; put back)`));
  }
  const pairs = Object.entries(sysctls).map(([k, v]) => `${k}=${v}`);
  if (pairs.length > 0) {
    const result = await runTool(host, ['sysctl', '-q', '-w', ...pairs]);
    if (result.exitCode !== 0) {
      complete = false;
      warnings.push(`some sysctls could not be restored: ${firstLine(result.stderr)}`);
    }
  }
  return { done: [...done, ...pairs.map((p) => `sysctl ${p}`)], complete };
}

/** `eip-agent rollback`: undoes the last apply recorded in the state file (files, runtime, sysctls, ownership). */
export async function rollbackLast(host: Host, root: string): Promise<RollbackResult> {
  const state = await loadState(host, root);
  const snap = state.lastSnapshot;
  if (snap === undefined)
    throw new AgentError('apply', `nothing to roll back: ${statePath(host, root)} records no apply`);
  const warnings: string[] = [];
  const marks = await undoMarks(host, snap.marksTool ?? 'nft', snap.marksUndo, warnings);
  const { done, complete } = await runUndo(host, snap.runtimeUndo, snap.sysctls, warnings);
  const runtime = [...marks.done, ...done];
  const files = await restoreFiles(host, root, snap.files, snap.meta);
  const told = await tellProfiles(host, root, Object.keys(snap.files), warnings);
  const next: AgentState = { ...state, owned: snap.ownedBefore, absentOnce: [] };
  delete next.lastSnapshot;
  delete next.lastApply;
  next.counters = { ...state.counters, rollbacks: state.counters.rollbacks + 1 };
  await saveState(host, root, next);
  return { files, runtime, warnings, complete: complete && marks.complete && told };
}

/** NetworkManager profiles put back are loaded again, so that the next boot uses them; false when that failed. */
async function tellProfiles(host: Host, root: string, paths: readonly string[], warnings: string[]): Promise<boolean> {
  try {
    warnings.push(...(await loadProfiles(host, root, paths)));
    return true;
  } catch (error) {
    warnings.push(
      `${(error as Error).message}: NetworkManager still has the profiles of before the rollback until it reloads them (nmcli connection reload)`,
    );
    return false;
  }
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
  const live =
    owned.addresses.length + owned.routes.length + owned.rules.length > 0 ||
    Object.keys(state.originalSysctls).length > 0
      ? await readLinuxState(host)
      : null;
  const present = new Set(live?.links.map((l) => l.ifname) ?? []);
  const lines: string[] = [];
  // What is already gone needs no removal (and removing it would fail).
  for (const r of owned.rules) {
    if (live?.rules.some((l) => isLiveRule(l, r) && l.priority === r.priority)) lines.push(`rule del ${ruleSpec(r)}`);
  }
  // Routes of an interface that has gone went with it; the same route of another protocol is not the agent's any more
  // (NetworkManager put it there from a profile at boot, and takes it away with the profile).
  const protocol = String(ROUTE_PROTO);
  for (const r of owned.routes) {
    const table = String(r.table);
    const there = live?.routes.some(
      (l) =>
        l.table === table &&
        l.protocol === protocol &&
        routeSpec(r.table, l.dst, l.dev ?? '', l.gateway, l.prefsrc) === r.spec,
    );
    if (present.has(r.dev) && there) lines.push(`route del ${r.spec} proto ${ROUTE_PROTO}`);
  }
  const position = (a: { mac: string; cidr: string }) =>
    addressIndex(
      live?.links.find((l) => l.mac === a.mac),
      a.cidr,
    );
  // A subnet's primary goes after its secondaries.
  for (const a of [...state.owned.addresses].sort((x, y) => position(y) - position(x))) {
    const link = live?.links.find((l) => l.mac === a.mac);
    if (link === undefined) continue; // the interface is gone, and its addresses with it
    if (addressIndex(link, a.cidr) < 0) continue;
    if (
      link.ifname === state.primaryIfname &&
      `${link.addresses[0]?.ip}/${link.addresses[0]?.prefixLength}` === a.cidr
    ) {
      warnings.push(`${a.cidr} is the primary address of ${link.ifname}: kept`);
      continue;
    }
    lines.push(`address del ${a.cidr} dev ${link.ifname}`);
  }
  // Per-interface sysctls of an interface that has gone cannot be restored (nor need to be).
  const sysctls = Object.fromEntries(
    Object.entries(state.originalSysctls).filter(([key]) => {
      const iface = /^net\.ipv4\.conf\.([^.]+)\./.exec(key)?.[1];
      return iface === undefined || iface === 'all' || iface === 'default' || present.has(iface);
    }),
  );
  // The agent's table goes first, before the rules that route what it marks.
  const table = (state.owned.marks?.length ?? 0) > 0 ? await readMarks(host) : undefined;
  const marks =
    (table?.tool === 'nft' || table?.tool === 'iptables') && table.listing !== null
      ? await undoMarks(host, table.tool, replaceScript(table.tool, [], table.listing), warnings, 'deleted')
      : { done: [], complete: true };
  const { done, complete: ipComplete } = await runUndo(host, lines, sysctls, warnings);
  const runtime = [...marks.done, ...done];
  const complete = ipComplete && marks.complete;
  const files = await restoreFiles(host, root, state.originalFiles, state.originalMeta);
  const told = await tellProfiles(host, root, Object.keys(state.originalFiles), warnings);
  await saveState(host, root, {
    ...emptyState(),
    counters: { ...state.counters, rollbacks: state.counters.rollbacks + 1 },
  });
  return { files, runtime, warnings, complete: complete && told };
}
