// Connection marks: the replies of connections to a secondary NIC's address leave by that NIC, also when they were
// forwarded or NATed (a container's published port, a NodePort, a user's DNAT). A `from <ip>` rule never sees such a
// reply: it carries the container's address until the un-DNAT after routing. So a new connection whose original
// destination (before DNAT) is one of the NIC's addresses gets a connection mark; packets in the reply direction take
// it as their packet mark, and a `fwmark` rule sends them to the NIC's table. The agent keeps this in an nftables table
// of its own, `inet eip-agent`, which nothing else writes and the agent never leaves half made (one `nft -f`). Where
// the guest has no `nft` (CentOS 7 without the nftables package), the same rules go in two chains of its own in
// iptables' mangle table, EIP-AGENT-PRE and EIP-AGENT-OUT, jumped to from PREROUTING and OUTPUT (one
// `iptables-restore --noflush`).
import { ApplyError, HostError } from '../../errors.js';
import type { Host } from '../../host/host.js';
import type { DesiredMark } from '../../render/types.js';
import type { RuntimeChange } from '../../plan/plan.js';
import { firstLine, runTool } from '../../host/run-tool.js';
import type { AgentState, MarksTool, OwnedMark } from '../../plan/record.js';
import { ownedKey } from '../../plan/record.js';
import { fwmarkSelector, MARK_MASK } from './rule-spec.js';

/** The agent's nftables table (family and name). */
export const MARKS_TABLE = 'inet eip-agent';

/** Every rule of the agent's table carries a comment starting so; the comment says what the rule does. */
const COMMENT_PREFIX = 'eip-agent ';

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** The entries' marks, once each, in order. */
const distinctMarks = (entries: readonly OwnedMark[]): number[] =>
  [...new Set(entries.map((e) => e.mark))].sort((a, b) => a - b);

/** The nftables rules of the entries: one comment per rule, in the order they are written. */
function ruleLines(entries: readonly OwnedMark[]): { prerouting: string[]; output: string[] } {
  const keep = hex(~MARK_MASK);
  const marks = distinctMarks(entries);
  const prerouting = entries.map(
    (e) =>
      `ct state new ip daddr ${e.ip} ct mark set ct mark and ${keep} or ${hex(e.mark)} comment "${COMMENT_PREFIX}new ${e.ip} ${hex(e.mark)}"`,
  );
  const reply = (mark: number, where: string) =>
    `ct direction reply ct mark and ${hex(MARK_MASK)} == ${hex(mark)} meta mark set meta mark and ${keep} or ${hex(mark)} ` +
    `comment "${COMMENT_PREFIX}${where} ${hex(mark)}"`;
  return {
    prerouting: [...prerouting, ...marks.map((m) => reply(m, 'reply'))],
    output: marks.map((m) => reply(m, 'reply-local')),
  };
}

/** The comments of the entries' rules, sorted: what a live table must carry to be in sync (iptables: with the jumps). */
export function expectedComments(entries: readonly OwnedMark[], tool: MarksTool = 'nft'): string[] {
  const { prerouting, output } = ruleLines(entries);
  const jumps = tool === 'iptables' && entries.length > 0 ? JUMPS.map(([, , what]) => `${COMMENT_PREFIX}${what}`) : [];
  return [...[...prerouting, ...output].map((line) => /comment "([^"]*)"$/.exec(line)?.[1] ?? ''), ...jumps].sort();
}

/** The comments of the agent's rules in a listing of its table, sorted. */
export function liveComments(listing: string): string[] {
  return [...listing.matchAll(/comment "([^"]*)"/g)]
    .flatMap((m) => (m[1]?.startsWith(COMMENT_PREFIX) ? [m[1]] : []))
    .sort();
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

/** The agent's chains in iptables' mangle table, where the guest has no nftables. */
export const IPTABLES_CHAINS = { prerouting: 'EIP-AGENT-PRE', output: 'EIP-AGENT-OUT' } as const;
const JUMPS = [
  ['PREROUTING', IPTABLES_CHAINS.prerouting, 'jump-pre'],
  ['OUTPUT', IPTABLES_CHAINS.output, 'jump-out'],
] as const;

/** The mangle rules (`iptables -S` spelling, without `-A <chain>`) of the entries, each with its comment. */
function iptablesRules(entries: readonly OwnedMark[]): { prerouting: string[]; output: string[] } {
  const mask = hex(MARK_MASK);
  const marks = distinctMarks(entries);
  const reply = (mark: number, where: string) =>
    `-m conntrack --ctdir REPLY -m connmark --mark ${hex(mark)}/${mask} ` +
    `-m comment --comment "${COMMENT_PREFIX}${where} ${hex(mark)}" -j MARK --set-xmark ${hex(mark)}/${mask}`;
  return {
    prerouting: [
      ...entries.map(
        (e) =>
          `-d ${e.ip}/32 -m conntrack --ctstate NEW ` +
          `-m comment --comment "${COMMENT_PREFIX}new ${e.ip} ${hex(e.mark)}" -j CONNMARK --set-xmark ${hex(e.mark)}/${mask}`,
      ),
      ...marks.map((m) => reply(m, 'reply')),
    ],
    output: marks.map((m) => reply(m, 'reply-local')),
  };
}

/** The jump into one of the agent's chains, as `iptables -S` prints it. */
const jumpRule = ([from, to, what]: (typeof JUMPS)[number]): string =>
  `-A ${from} -m comment --comment "${COMMENT_PREFIX}${what}" -j ${to}`;

/** The lines of an `iptables -t mangle -S` listing that are the agent's: its chains, their rules, the jumps into them. */
export function iptablesListing(listing: string): string | null {
  const own = listing.split('\n').filter((l) => /^-[NA] /.test(l) && l.includes('EIP-AGENT-'));
  return own.length === 0 ? null : `${own.join('\n')}\n`;
}

/**
 * The `iptables-restore --noflush` script that makes the agent's chains hold the entries' rules (or, with none, removes
 * the chains and the jumps): the jumps in `live` (the agent's lines of the listing now) are deleted, the chains
 * declared (which empties them) and filled, and one jump into each put first in PREROUTING and OUTPUT.
 */
export function iptablesScript(entries: readonly OwnedMark[], live: string | null): string {
  const jumpsNow = (live ?? '').split('\n').filter((l) => /^-A (PREROUTING|OUTPUT) /.test(l));
  const lines = [
    '*mangle',
    ...jumpsNow.map((l) => l.replace(/^-A /, '-D ')),
    `:${IPTABLES_CHAINS.prerouting} - [0:0]`,
    `:${IPTABLES_CHAINS.output} - [0:0]`,
  ];
  if (entries.length === 0) {
    lines.push(`-X ${IPTABLES_CHAINS.prerouting}`, `-X ${IPTABLES_CHAINS.output}`);
  } else {
    const { prerouting, output } = iptablesRules(entries);
    lines.push(
      ...prerouting.map((r) => `-A ${IPTABLES_CHAINS.prerouting} ${r}`),
      ...output.map((r) => `-A ${IPTABLES_CHAINS.output} ${r}`),
    );
    lines.push(...JUMPS.map((j) => jumpRule(j).replace(/^-A (\S+) /, '-I $1 1 ')));
  }
  return [...lines, 'COMMIT', ''].join('\n');
}

/** The script that puts the agent's chains back as `previous` (its lines of a listing) had them, from what `entries` made. */
function iptablesRestore(previous: string | null, entries: readonly OwnedMark[]): string {
  const made = entries.length === 0 ? null : JUMPS.map(jumpRule).join('\n');
  if (previous === null) return iptablesScript([], made);
  const lines = previous.split('\n').filter((l) => l.startsWith('-A '));
  const chains = lines.filter((l) => !/^-A (PREROUTING|OUTPUT) /.test(l));
  const jumps = lines.filter((l) => /^-A (PREROUTING|OUTPUT) /.test(l));
  const drop = (made ?? '')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^-A /, '-D '));
  return [
    '*mangle',
    ...drop,
    `:${IPTABLES_CHAINS.prerouting} - [0:0]`,
    `:${IPTABLES_CHAINS.output} - [0:0]`,
    ...chains,
    ...jumps,
    'COMMIT',
    '',
  ].join('\n');
}

/** The agent's table as the guest has it: no tool, unreadable (e.g. not root), or its listing (null: absent). */
export type LiveMarks =
  { tool: 'none' } | { tool: MarksTool; listing: string | null } | { tool: 'unreadable'; reason: string };

/** Runs a tool; undefined when it is not installed (runTool's HostError caused by ENOENT). */
async function runIfInstalled(host: Host, argv: string[]): Promise<Awaited<ReturnType<typeof runTool>> | undefined> {
  try {
    return await runTool(host, argv);
  } catch (error) {
    if (error instanceof HostError && (error.cause as { code?: string } | undefined)?.code === 'ENOENT')
      return undefined;
    throw error;
  }
}

/** Reads the agent's nftables table, or its iptables chains where there is no `nft`. Read-only. */
export async function readMarks(host: Host): Promise<LiveMarks> {
  const nft = await runIfInstalled(host, ['nft', 'list', 'table', ...MARKS_TABLE.split(' ')]);
  if (nft !== undefined) {
    if (nft.exitCode === 0) return { tool: 'nft', listing: nft.stdout };
    if (/No such file or directory/.test(nft.stderr)) return { tool: 'nft', listing: null };
    return { tool: 'unreadable', reason: firstLine(nft.stderr) };
  }
  const iptables = await runIfInstalled(host, ['iptables', '-t', 'mangle', '-S']);
  if (iptables === undefined) return { tool: 'none' };
  if (iptables.exitCode !== 0) return { tool: 'unreadable', reason: firstLine(iptables.stderr) };
  return { tool: 'iptables', listing: iptablesListing(iptables.stdout) };
}

/** Runs a script of the marks' tool: `nft -f -`, or `iptables-restore --noflush`. */
export async function runMarksScript(host: Host, tool: MarksTool, script: string): Promise<void> {
  const argv = tool === 'nft' ? ['nft', '-f', '-'] : ['iptables-restore', '--noflush'];
  const result = await runTool(host, argv, { input: script });
  if (result.exitCode !== 0)
    throw new ApplyError(`\`${argv.join(' ')}\` failed (exit ${result.exitCode}): ${firstLine(result.stderr)}`);
}

/** The script of `tool` that makes the agent's marks those of `entries` (none: removes them), from its `listing` now. */
export function replaceScript(tool: MarksTool, entries: readonly OwnedMark[], listing: string | null): string {
  return tool === 'nft' ? marksScript(entries) : iptablesScript(entries, listing);
}

/** Where the marks live, for messages. */
export function marksPlace(tool: MarksTool): string {
  return tool === 'nft'
    ? `nftables table ${MARKS_TABLE}`
    : `iptables mangle chains ${IPTABLES_CHAINS.prerouting} and ${IPTABLES_CHAINS.output}`;
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
export function planMarks(
  desired: readonly DesiredMark[],
  live: LiveMarks | undefined,
  state: AgentState,
  warnings: string[],
): MarksPlan {
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
    if (desired.length > 0)
      warnings.push(
        `neither \`nft\` nor \`iptables\` was found on PATH: ` +
          `replies of forwarded or NATed connections to ${desired.map((d) => d.ip).join(', ')} (a container's published port) leave by the primary NIC; ` +
          `install nftables to have them leave by their own NIC`,
      );
    return plan;
  }
  if (live.tool === 'unreadable') {
    warnings.push(
      `the connection marks (nftables table ${MARKS_TABLE}, or iptables' mangle table) could not be read (${live.reason}): they are not compared`,
    );
    return plan;
  }
  const { tool } = live;
  const want = expectedComments(entries, tool);
  const have = live.listing === null ? null : liveComments(live.listing);
  // With no entry, a table of that name without one of the agent's comments is someone else's: never touched.
  const inSync =
    entries.length === 0 ? (have?.length ?? 0) === 0 : have !== null && want.join('\n') === have.join('\n');
  if (inSync) return plan;
  const groups = distinctMarks(entries).map(
    (mark) =>
      `mark ${fwmarkSelector(mark)} on connections to ${entries
        .filter((e) => e.mark === mark)
        .map((e) => e.ip)
        .join(', ')}`,
  );
  const undo = tool === 'nft' ? restoreScript(live.listing) : iptablesRestore(live.listing, entries);
  plan.change = {
    kind: 'marks',
    summary: entries.length === 0 ? `delete ${marksPlace(tool)}` : `${marksPlace(tool)}: ${groups.join('; ')}`,
    marks: { tool, script: replaceScript(tool, entries, live.listing), undo },
    owns: { kind: 'marks', item: entries },
  };
  return plan;
}
