// Connection marks: the replies of connections to a secondary NIC's address leave by that NIC, also when they were
// forwarded or NATed (a container's published port, a NodePort, a user's DNAT). A `from <ip>` rule never sees such a
// reply: it carries the container's address until the un-DNAT after routing. So a new connection whose original
// destination (before DNAT) is one of the NIC's addresses gets a connection mark; packets in the reply direction take
// it as their packet mark, and a `fwmark` rule sends them to the NIC's table. The agent keeps this in an nftables table
// of its own, `inet eip-agent`, which nothing else writes and the agent never leaves half made (one `nft -f`).
import { ApplyError, HostError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { DesiredMark } from '../render/types.js';
import type { RuntimeChange } from './plan.js';
import { firstLine, runTool } from './run-ip.js';
import type { AgentState, OwnedMark } from './state.js';
import { ownedKey } from './state.js';
import { fwmarkSelector, MARK_MASK } from '../render/rule-spec.js';

/** The agent's nftables table (family and name). */
export const MARKS_TABLE = 'inet eip-agent';

/** Every rule of the agent's table carries a comment starting so; the comment says what the rule does. */
const COMMENT_PREFIX = 'eip-agent ';

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** The nftables rules of the entries: one comment per rule, in the order they are written. */
function ruleLines(entries: readonly OwnedMark[]): { prerouting: string[]; output: string[] } {
  const keep = hex(~MARK_MASK);
  const marks = [...new Set(entries.map((e) => e.mark))].sort((a, b) => a - b);
  const prerouting = entries.map(
    (e) => `ct state new ip daddr ${e.ip} ct mark set ct mark and ${keep} or ${hex(e.mark)} comment "${COMMENT_PREFIX}new ${e.ip} ${hex(e.mark)}"`,
  );
  const reply = (mark: number, where: string) =>
    `ct direction reply ct mark and ${hex(MARK_MASK)} == ${hex(mark)} meta mark set meta mark and ${keep} or ${hex(mark)} comment "${COMMENT_PREFIX}${where} ${hex(mark)}"`;
  return { prerouting: [...prerouting, ...marks.map((m) => reply(m, 'reply'))], output: marks.map((m) => reply(m, 'reply-local')) };
}

/** The comments of the entries' rules, sorted: what a live table must carry to be in sync. */
export function expectedComments(entries: readonly OwnedMark[]): string[] {
  const { prerouting, output } = ruleLines(entries);
  return [...prerouting, ...output].map((line) => /comment "([^"]*)"$/.exec(line)?.[1] ?? '').sort();
}

/** The comments of the agent's rules in a listing of its table, sorted. */
export function liveComments(listing: string): string[] {
  return [...listing.matchAll(/comment "([^"]*)"/g)].flatMap((m) => (m[1]?.startsWith(COMMENT_PREFIX) ? [m[1]] : [])).sort();
}

/** A script that creates the table empty if it is missing, so that the delete after it never fails. */
const DROP = `table ${MARKS_TABLE}\ndelete table ${MARKS_TABLE}\n`;

/**
 * The `nft -f` script that replaces the agent's table with one marking the entries' connections: the table is
 * deleted and made again in one transaction (nothing in between), or only deleted when there is no entry.
 * Prerouting at the mangle priority sees a connection's first packet before DNAT, so its original destination;
 * the output chain is of type route so that a locally generated reply is routed again by its new mark.
 */
export function marksScript(entries: readonly OwnedMark[]): string {
  if (entries.length === 0) return DROP;
  const { prerouting, output } = ruleLines(entries);
  const chain = (name: string, type: string, hook: string, lines: string[]) => [
    `  chain ${name} {`,
    `    type ${type} hook ${hook} priority mangle; policy accept;`,
    ...lines.map((l) => `    ${l}`),
    '  }',
  ];
  return [
    DROP.trimEnd(),
    `table ${MARKS_TABLE} {`,
    ...chain('prerouting', 'filter', 'prerouting', prerouting),
    ...chain('output', 'route', 'output', output),
    '}',
    '',
  ].join('\n');
}

/** The script that puts the table back as a listing shows it (null: there was none). */
export function restoreScript(listing: string | null): string {
  return listing === null ? DROP : `${DROP}${listing.endsWith('\n') ? listing : `${listing}\n`}`;
}

/** The agent's table as the guest has it: `nft` missing, unreadable (e.g. not root), absent, or its listing. */
export type LiveMarks = { tool: 'none' } | { tool: 'nft'; listing: string | null } | { tool: 'unreadable'; reason: string };

/** Reads the agent's nftables table. Read-only. */
export async function readMarks(host: Host): Promise<LiveMarks> {
  let result;
  try {
    result = await runTool(host, ['nft', 'list', 'table', ...MARKS_TABLE.split(' ')]);
  } catch (error) {
    if (error instanceof HostError && /was not found on PATH/.test(error.message)) return { tool: 'none' };
    throw error;
  }
  if (result.exitCode === 0) return { tool: 'nft', listing: result.stdout };
  if (/No such file or directory/.test(result.stderr)) return { tool: 'nft', listing: null };
  return { tool: 'unreadable', reason: firstLine(result.stderr) };
}

/** Runs an `nft -f -` script. */
export async function runNft(host: Host, script: string): Promise<void> {
  const result = await runTool(host, ['nft', '-f', '-'], { input: script });
  if (result.exitCode !== 0) throw new ApplyError(`\`nft -f -\` failed (exit ${result.exitCode}): ${firstLine(result.stderr)}`);
}

const entryKey = (e: OwnedMark): string => ownedKey.mark(e);

/** What the plan does about the agent's nftables table. */
export interface MarksPlan {
  change?: RuntimeChange;
  absentNow: string[];
  pending: string[];
}

/**
 * Compares the marks the model asks for with the agent's table. An entry the agent has and the read no longer asks
 * for stays until a second read agrees (as every owned item); the table is replaced when its rules are not those of
 * the entries to keep, and deleted when none is left. Where `nft` is missing or cannot be read, nothing is changed and
 * a warning says why. Pure.
 */
export function planMarks(desired: readonly DesiredMark[], live: LiveMarks | undefined, state: AgentState, warnings: string[]): MarksPlan {
  const confirmed = new Set(state.absentOnce);
  const plan: MarksPlan = { absentNow: [], pending: [] };
  const wanted = new Set(desired.map((d) => entryKey(d)));
  const entries: OwnedMark[] = desired.map(({ ip, mark }) => ({ ip, mark }));
  for (const owned of state.owned.marks ?? []) {
    const key = entryKey(owned);
    if (wanted.has(key) || confirmed.has(key)) continue;
    entries.push(owned);
    plan.absentNow.push(key);
    plan.pending.push(`stop marking connections to ${owned.ip}`);
  }
  if (live === undefined) return plan;
  if (live.tool === 'none') {
    if (desired.length > 0) warnings.push(`\`nft\` was not found on PATH: replies of forwarded or NATed connections to ${desired.map((d) => d.ip).join(', ')} (a container's published port) leave by the primary NIC; install nftables to have them leave by their own NIC`);
    return plan;
  }
  if (live.tool === 'unreadable') {
    warnings.push(`nftables table ${MARKS_TABLE} could not be read (${live.reason}): connection marks are not compared`);
    return plan;
  }
  const want = expectedComments(entries);
  const have = live.listing === null ? null : liveComments(live.listing);
  const inSync = entries.length === 0 ? have === null || have.length === 0 : have !== null && want.join('\n') === have.join('\n');
  // A table of that name without one of the agent's comments is someone else's: never touched.
  if (inSync || (entries.length === 0 && (have?.length ?? 0) === 0)) return plan;
  const groups = [...new Set(entries.map((e) => e.mark))].map((mark) => `mark ${fwmarkSelector(mark)} on connections to ${entries.filter((e) => e.mark === mark).map((e) => e.ip).join(', ')}`);
  plan.change = {
    kind: 'marks',
    summary: entries.length === 0 ? `delete nftables table ${MARKS_TABLE}` : `nftables table ${MARKS_TABLE}: ${groups.join('; ')}`,
    nft: { script: marksScript(entries), undo: restoreScript(live.listing) },
    owns: { kind: 'marks', item: entries },
  };
  return plan;
}
