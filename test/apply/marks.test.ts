import { describe, expect, it } from 'vitest';
import {
  expectedComments,
  iptablesListing,
  iptablesScript,
  liveComments,
  marksScript,
  planMarks,
  restoreScript,
  type LiveMarks,
} from '../../src/targets/linux/marks.js';
import { emptyState, type AgentState } from '../../src/plan/record.js';
import { manualDesired, MANUAL_MARKS, MANUAL_NFT_TABLE } from '../helpers/manual-guest.js';
import { renderCentos } from '../../src/targets/linux/centos/render.js';
import { buildModel } from '../../src/model/index.js';
import { manualTree } from '../lab/fixtures.js';

const DESIRED = manualDesired().runtime.marks;
const owning = (extra: Partial<AgentState> = {}): AgentState => ({
  ...emptyState(),
  owned: { ...emptyState().owned, marks: MANUAL_MARKS },
  ...extra,
});
const nft = (listing: string | null): LiveMarks => ({ tool: 'nft', listing });

describe('the nftables table', () => {
  it('marks a new connection to each address before DNAT, and its replies in prerouting and output, keeping the other bits', () => {
    const script = marksScript(MANUAL_MARKS);
    // Created if missing, then deleted and made again: one transaction, never half made.
    expect(script.startsWith('table inet eip-agent\ndelete table inet eip-agent\ntable inet eip-agent {\n')).toBe(true);
    expect(script).toContain('type filter hook prerouting priority mangle; policy accept;');
    expect(script).toContain('type route hook output priority mangle; policy accept;');
    expect(script).toContain(
      'ct state new ip daddr 10.0.0.7 ct mark set ct mark and 0xf0ffffff or 0x01000000 comment "eip-agent new 10.0.0.7 0x01000000"',
    );
    expect(script).toContain(
      'ct direction reply ct mark and 0x0f000000 == 0x01000000 meta mark set meta mark and 0xf0ffffff or 0x01000000 comment "eip-agent reply 0x01000000"',
    );
    expect(liveComments(script)).toEqual(expectedComments(MANUAL_MARKS));
    expect(marksScript([])).toBe('table inet eip-agent\ndelete table inet eip-agent\n');
    expect(restoreScript(MANUAL_NFT_TABLE)).toBe(
      `table inet eip-agent\ndelete table inet eip-agent\n${MANUAL_NFT_TABLE}`,
    );
  });

  it('the desired marks follow the policy-routed NICs; none with connection marks off, or in rp-filter mode', () => {
    expect(DESIRED).toEqual(MANUAL_MARKS.map((m) => ({ dev: 'eth1', ...m })));
    const names = new Map([
      ['52:54:00:8a:7a:64', 'eth0'],
      ['20:90:6f:f7:93:2e', 'eth1'],
    ]);
    const off = renderCentos(buildModel(manualTree()), {
      routing: 'policy',
      names,
      tables: new Map([[1, 10001]]),
      connectionMarks: false,
    });
    expect(off.runtime.marks).toEqual([]);
    expect(off.runtime.rules.filter((r) => r.fwmark !== undefined)).toEqual([]);
    expect(off.files.find((f) => f.path.endsWith('rule-eth1'))?.content).not.toContain('fwmark');
    expect(manualDesired('rp-filter').runtime.marks).toEqual([]);
  });
});

describe('planMarks', () => {
  it('creates the table on a fresh guest; the undo deletes it', () => {
    const plan = planMarks(DESIRED, nft(null), emptyState(), []);
    expect(plan.change).toMatchObject({
      kind: 'marks',
      marks: { tool: 'nft', script: marksScript(MANUAL_MARKS), undo: marksScript([]) },
      owns: { kind: 'marks', item: MANUAL_MARKS },
    });
  });

  it('is in sync when the live table carries every rule, whatever nft prints around them', () => {
    const warnings: string[] = [];
    const reprinted = MANUAL_NFT_TABLE.replaceAll(' and ', ' & ').replaceAll(' or ', ' | ');
    expect(planMarks(DESIRED, nft(reprinted), owning(), warnings)).toEqual({ absentNow: [], pending: [] });
    expect(warnings).toEqual([]);
  });

  it.each<[string, string | null]>([
    ['the table is gone (nft flush ruleset)', null],
    [
      'a rule of it is gone',
      MANUAL_NFT_TABLE.split('\n')
        .filter((l) => !l.includes('new 10.0.0.8'))
        .join('\n'),
    ],
  ])('puts the table back when %s; the undo restores what was there', (_name, listing) => {
    const plan = planMarks(DESIRED, nft(listing), owning(), []);
    expect(plan.change?.marks).toEqual({
      tool: 'nft',
      script: marksScript(MANUAL_MARKS),
      undo: restoreScript(listing),
    });
  });

  it('keeps the mark of an address the read no longer lists until a second read agrees', () => {
    const only7 = DESIRED.filter((d) => d.ip === '10.0.0.7');
    const first = planMarks(only7, nft(MANUAL_NFT_TABLE), owning(), []);
    expect(first).toEqual({
      absentNow: ['mark 10.0.0.8 0x1000000'],
      pending: ['stop marking connections to 10.0.0.8'],
    });
    const second = planMarks(only7, nft(MANUAL_NFT_TABLE), owning({ absentOnce: ['mark 10.0.0.8 0x1000000'] }), []);
    expect(second.change?.marks?.script).toBe(marksScript(MANUAL_MARKS.slice(0, 1)));
    expect(second.change?.owns).toEqual({ kind: 'marks', item: MANUAL_MARKS.slice(0, 1) });
  });

  it('deletes the table when no mark is left, and leaves a table of that name without its rules alone', () => {
    const confirmed = owning({ absentOnce: MANUAL_MARKS.map((m) => `mark ${m.ip} 0x${m.mark.toString(16)}`) });
    expect(planMarks([], nft(MANUAL_NFT_TABLE), confirmed, []).change).toMatchObject({
      summary: 'delete nftables table inet eip-agent',
      marks: { tool: 'nft', script: marksScript([]), undo: restoreScript(MANUAL_NFT_TABLE) },
    });
    expect(planMarks([], nft('table inet eip-agent {\n}\n'), emptyState(), []).change).toBeUndefined();
    expect(planMarks([], nft(null), emptyState(), []).change).toBeUndefined();
  });

  it('changes nothing and says why where nft is missing or cannot be read', () => {
    const missing: string[] = [];
    expect(planMarks(DESIRED, { tool: 'none' }, emptyState(), missing).change).toBeUndefined();
    expect(missing).toEqual([
      "neither `nft` nor `iptables` was found on PATH: replies of forwarded or NATed connections to 10.0.0.7, 10.0.0.8 (a container's published port) leave by the primary NIC; install nftables to have them leave by their own NIC",
    ]);
    const unreadable: string[] = [];
    expect(
      planMarks(DESIRED, { tool: 'unreadable', reason: 'Operation not permitted' }, owning(), unreadable).change,
    ).toBeUndefined();
    expect(unreadable).toEqual([
      "the connection marks (nftables table inet eip-agent, or iptables' mangle table) could not be read (Operation not permitted): they are not compared",
    ]);
  });
});

describe('iptables, where there is no nft', () => {
  const JUMP_PRE = '-A PREROUTING -m comment --comment "eip-agent jump-pre" -j EIP-AGENT-PRE';
  const JUMP_OUT = '-A OUTPUT -m comment --comment "eip-agent jump-out" -j EIP-AGENT-OUT';

  it('takes only its own lines of the mangle listing', () => {
    expect(iptablesListing('-P PREROUTING ACCEPT\n-A PREROUTING -j KUBE-MARK\n')).toBeNull();
    expect(iptablesListing(`-P PREROUTING ACCEPT\n-N EIP-AGENT-PRE\n${JUMP_PRE}\n-A FORWARD -j DOCKER\n`)).toBe(
      `-N EIP-AGENT-PRE\n${JUMP_PRE}\n`,
    );
  });

  it('empties and fills its chains and puts one jump first in PREROUTING and OUTPUT, deleting the jumps there are now', () => {
    const script = iptablesScript(MANUAL_MARKS, `-N EIP-AGENT-PRE\n${JUMP_PRE}\n${JUMP_PRE}\n`);
    const lines = script.split('\n');
    expect(lines.slice(0, 5)).toEqual([
      '*mangle',
      JUMP_PRE.replace('-A ', '-D '),
      JUMP_PRE.replace('-A ', '-D '),
      ':EIP-AGENT-PRE - [0:0]',
      ':EIP-AGENT-OUT - [0:0]',
    ]);
    expect(lines).toContain(
      '-A EIP-AGENT-PRE -d 10.0.0.7/32 -m conntrack --ctstate NEW -m comment --comment "eip-agent new 10.0.0.7 0x01000000" -j CONNMARK --set-xmark 0x01000000/0x0f000000',
    );
    expect(lines.slice(-4)).toEqual([
      JUMP_PRE.replace('-A PREROUTING ', '-I PREROUTING 1 '),
      JUMP_OUT.replace('-A OUTPUT ', '-I OUTPUT 1 '),
      'COMMIT',
      '',
    ]);
    expect(iptablesScript([], `-N EIP-AGENT-PRE\n-N EIP-AGENT-OUT\n${JUMP_PRE}\n${JUMP_OUT}\n`)).toBe(
      [
        '*mangle',
        JUMP_PRE.replace('-A ', '-D '),
        JUMP_OUT.replace('-A ', '-D '),
        ':EIP-AGENT-PRE - [0:0]',
        ':EIP-AGENT-OUT - [0:0]',
        '-X EIP-AGENT-PRE',
        '-X EIP-AGENT-OUT',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('plans the chains with their jumps, in sync only when every rule and both jumps are there', () => {
    const fresh = planMarks(DESIRED, { tool: 'iptables', listing: null }, emptyState(), []);
    expect(fresh.change).toMatchObject({
      summary:
        'iptables mangle chains EIP-AGENT-PRE and EIP-AGENT-OUT: mark 0x1000000/0xf000000 on connections to 10.0.0.7, 10.0.0.8',
      marks: { tool: 'iptables', script: iptablesScript(MANUAL_MARKS, null) },
    });
    // The undo of a first apply removes the chains and the jumps it made.
    expect(fresh.change?.marks?.undo).toBe(iptablesScript([], `${JUMP_PRE}\n${JUMP_OUT}`));
    const rules = iptablesScript(MANUAL_MARKS, null)
      .split('\n')
      .filter((l) => l.startsWith('-A '))
      .join('\n');
    const full = `-N EIP-AGENT-PRE\n-N EIP-AGENT-OUT\n${JUMP_PRE}\n${JUMP_OUT}\n${rules}\n`;
    expect(expectedComments(MANUAL_MARKS, 'iptables')).toEqual(liveComments(full));
    expect(planMarks(DESIRED, { tool: 'iptables', listing: full }, owning(), []).change).toBeUndefined();
    const noJump = full.replace(`${JUMP_OUT}\n`, '');
    expect(planMarks(DESIRED, { tool: 'iptables', listing: noJump }, owning(), []).change?.marks?.script).toBe(
      iptablesScript(MANUAL_MARKS, noJump),
    );
  });
});
