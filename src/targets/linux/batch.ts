// Every `ip -batch` that changes the runtime goes through here, so that removing one address never takes another.
import type { Host, RunResult } from '../../host/host.js';
import { readLinuxState, readSysctls } from './live-state.js';
import { firstLine, runTool } from '../../host/run-tool.js';

/** What a guarded batch did besides running its lines. */
export interface BatchOutcome {
  result: RunResult;
  /** Lines that put back addresses the kernel removed along with a deleted one (`address add ...`). */
  restored: string[];
  /** Things that went wrong around the batch (a sysctl that could not be set, a restore that failed). */
  warnings: string[];
}

const ADDRESS_DEL = /^address del (\S+) dev (\S+)$/;
const ADDRESS_ADD = /^address add (\S+) dev (\S+)(?: noprefixroute)?$/;

/** The sysctl that makes the kernel promote a secondary address when its subnet's primary is deleted. */
export function promoteSecondariesKey(ifname: string): string {
  return `net.ipv4.conf.${ifname}.promote_secondaries`;
}

/**
 * Runs `ip [-force] -batch -` with `lines`. When it deletes addresses, it first sets
 * promote_secondaries=1 on their interfaces (the kernel default 0 deletes every secondary address of a
 * subnet together with its primary) for the time of the batch, and afterwards re-reads
 * the interfaces and adds back any address that was there before, was not meant to go, and is gone.
 */
export async function runGuardedBatch(
  host: Host,
  lines: readonly string[],
  options: { force: boolean },
): Promise<BatchOutcome> {
  const argv = ['ip', ...(options.force ? ['-force'] : []), '-batch', '-'];
  const deleting = new Map<string, Set<string>>();
  for (const line of lines) {
    const match = ADDRESS_DEL.exec(line);
    if (match === null) continue;
    const [, cidr = '', ifname = ''] = match;
    deleting.set(ifname, (deleting.get(ifname) ?? new Set()).add(cidr));
  }
  if (deleting.size === 0)
    return { result: await runTool(host, argv, { input: `${lines.join('\n')}\n` }), restored: [], warnings: [] };

  const warnings: string[] = [];
  const before = await readLinuxState(host);
  const ifnames = [...deleting.keys()].filter((name) => before.links.some((l) => l.ifname === name));
  const current = await readSysctls(host, ifnames.map(promoteSecondariesKey));
  const changed = [...current].filter((entry): entry is [string, string] => entry[1] !== null && entry[1] !== '1');
  if (changed.length > 0) {
    const set = await runTool(host, ['sysctl', '-q', '-w', ...changed.map(([key]) => `${key}=1`)]);
    if (set.exitCode !== 0)
      warnings.push(
        `could not set promote_secondaries (${firstLine(set.stderr)}); addresses lost with a deleted one are added back`,
      );
  }
  let result: RunResult;
  try {
    result = await runTool(host, argv, { input: `${lines.join('\n')}\n` });
  } finally {
    // Only for the deletions: the setting itself is the plan's to change (the sysctl drop-in), or the guest's.
    if (changed.length > 0) {
      const back = await runTool(host, ['sysctl', '-q', '-w', ...changed.map(([key, value]) => `${key}=${value}`)]);
      if (back.exitCode !== 0) warnings.push(`could not put promote_secondaries back: ${firstLine(back.stderr)}`);
    }
  }

  const after = await readLinuxState(host);
  // What a line of this batch added (only when every line ran: after a failure the caller undoes what ran).
  const added = result.exitCode !== 0 ? [] : lines.flatMap((l) => ADDRESS_ADD.exec(l) ?? []);
  const restored: string[] = [];
  for (const ifname of ifnames) {
    const was = before.links.find((l) => l.ifname === ifname);
    const now = after.links.find((l) => l.ifname === ifname);
    if (was === undefined || now === undefined) continue;
    const meant = deleting.get(ifname) ?? new Set();
    // What should be there: what was, less what was meant to go, plus what the batch added here.
    const addedHere = added.flatMap((m) => (m[2] === ifname ? [m[1] as string] : []));
    const expected = new Set([
      ...was.addresses.map((a) => `${a.ip}/${a.prefixLength}`).filter((c) => !meant.has(c)),
      ...addedHere,
    ]);
    for (const cidr of expected) {
      const ip = cidr.split('/')[0];
      if (now.addresses.some((b) => b.ip === ip)) continue;
      restored.push(`address add ${cidr} dev ${ifname}`);
    }
  }
  if (restored.length > 0) {
    const put = await runTool(host, ['ip', '-force', '-batch', '-'], { input: `${restored.join('\n')}\n` });
    if (put.exitCode !== 0)
      warnings.push(`could not add back every address the kernel removed with a deleted one: ${firstLine(put.stderr)}`);
  }
  return { result, restored, warnings };
}
