// Ownership in the emulated VPC: an EIP and its private IP move from server A to server B (the
// manual's disaster-recovery story, one-shot applies); A removes only what it owns, after two reads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  manualTree,
  manualTreeWithout8,
  movedAddress,
  SERVER_B_MAC,
  serverBTree,
  treeWith8AsPrimary,
} from './fixtures.js';
import { labOk, requireLab } from './guard.js';
import { startLab, type Lab } from './vpc.js';

requireLab('ownership in the emulated VPC');

async function inet(lab: Lab, guest: string, dev: string): Promise<string[]> {
  const result = await lab.exec(lab.guestNs(guest), ['ip', '-j', '-4', 'address', 'show', 'dev', dev]);
  expect(result.exitCode, result.stderr).toBe(0);
  const [link] = JSON.parse(result.stdout) as { addr_info: { local: string; prefixlen: number }[] }[];
  return (link?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
}

/** The router's neighbour entry for `ip`: the MAC it sends that address's packets to, after up to `tries` looks 200 ms apart. */
async function routerNeighbour(lab: Lab, ip: string, want: string, tries = 25): Promise<string | undefined> {
  let lladdr: string | undefined;
  for (let i = 0; i < tries; i++) {
    const result = await lab.exec(lab.routerNs, ['ip', '-j', 'neigh', 'show', 'to', ip]);
    lladdr = (JSON.parse(result.stdout || '[]') as { lladdr?: string }[])[0]?.lladdr;
    if (lladdr === want) return lladdr;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return lladdr;
}

async function rules(lab: Lab, guest: string): Promise<string[]> {
  const result = await lab.exec(lab.guestNs(guest), ['ip', '-j', 'rule']);
  return (JSON.parse(result.stdout) as { src?: string; dst?: string; dstlen?: number; table: string }[])
    .filter((r) => r.src !== undefined && r.src !== 'all')
    .map((r) => `${r.src}${r.dst !== undefined ? ` to ${r.dst}/${r.dstlen ?? 32}` : ''} ${r.table}`);
}

describe.skipIf(!labOk)('an EIP moves from server A to server B', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await startLab([
      { name: 'a', tree: manualTree() },
      { name: 'b', tree: serverBTree() },
    ]);
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('A is configured, and a user adds an address of their own by hand', async () => {
    const apply = await lab.agent('a', ['apply', '--root', lab.guestRoot('a')]);
    expect(apply.exitCode, apply.stdout + apply.stderr).toBe(0);
    expect((await lab.exec(lab.guestNs('a'), ['ip', 'address', 'add', '10.0.0.99/24', 'dev', 'eth0'])).exitCode).toBe(
      0,
    );
    expect(await lab.pingFromInternet('203.0.113.13')).toBe(true);
  });

  it('the cloud moves 10.0.0.8 and its EIP to B; B takes it over and the EIP answers again', async () => {
    await lab.updateGuest('a', manualTreeWithout8());
    await lab.updateGuest('b', serverBTree(movedAddress()));
    const apply = await lab.agent('b', ['apply', '--root', lab.guestRoot('b')]);
    expect(apply.exitCode, apply.stdout + apply.stderr).toBe(0);
    expect(await inet(lab, 'b', 'eth0')).toEqual(['10.0.0.20/24', '10.0.0.8/24']);
    // B's gratuitous ARP moved the router's neighbour entry off A (A still holds the address until its second read).
    expect(await routerNeighbour(lab, '10.0.0.8', SERVER_B_MAC.toLowerCase())).toBe(SERVER_B_MAC.toLowerCase());
    expect(await lab.pingFromInternet('203.0.113.13')).toBe(true);
  });

  it('A: the first read only marks 10.0.0.8 as pending; nothing is removed', async () => {
    const plan = await lab.agent('a', ['plan', '--root', lab.guestRoot('a')]);
    expect(plan.stdout).toContain('Pending removal');
    expect(plan.stdout).toContain('remove 10.0.0.8/24 from eth1');
    const apply = await lab.agent('a', ['apply', '--root', lab.guestRoot('a')]);
    expect(apply.exitCode, apply.stdout + apply.stderr).toBe(0);
    expect(await inet(lab, 'a', 'eth1')).toEqual(['10.0.0.7/24', '10.0.0.8/24']);
  });

  it("A: the second read agrees; 10.0.0.8 and its rule go, the user's address and the primary stay", async () => {
    const apply = await lab.agent('a', ['apply', '--root', lab.guestRoot('a')]);
    expect(apply.exitCode, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toContain('remove 10.0.0.8/24 from eth1');
    expect(await inet(lab, 'a', 'eth1')).toEqual(['10.0.0.7/24']);
    expect(await inet(lab, 'a', 'eth0')).toEqual(['10.0.0.2/24', '10.0.0.3/24', '10.0.0.99/24']);
    expect(await rules(lab, 'a')).toEqual(['10.0.0.7 to 10.0.0.0/24 10001', '10.0.0.7 10001']);
    expect(await lab.pingFromInternet('203.0.113.12')).toBe(true);
    expect(await lab.pingFromInternet('203.0.113.13')).toBe(true);
  });

  it("A: rollback --original puts back what A had before eip-agent, and keeps the user's address", async () => {
    const rollback = await lab.agent('a', ['rollback', '--original', '--root', lab.guestRoot('a')]);
    expect(rollback.exitCode, rollback.stdout + rollback.stderr).toBe(0);
    expect(await inet(lab, 'a', 'eth0')).toEqual(['10.0.0.2/24', '10.0.0.99/24']);
    expect(await inet(lab, 'a', 'eth1')).toEqual([]);
    expect(await rules(lab, 'a')).toEqual([]);
    expect(await lab.pingFromInternet('203.0.113.10')).toBe(true);
  });
});

// The kernel deletes every secondary address of a subnet with its primary unless promote_secondaries is 1: none of
// the agent's removals may take a user's 10.0.0.99 (or an address the metadata still wants) with it.
describe.skipIf(!labOk)("a user's address in the subnet of an address the agent removes", () => {
  let lab: Lab;
  const addUser = async () =>
    expect((await lab.exec(lab.guestNs('u'), ['ip', 'address', 'add', '10.0.0.99/24', 'dev', 'eth1'])).exitCode).toBe(
      0,
    );
  const run = async (args: string[]) => {
    const result = await lab.agent('u', [...args, '--root', lab.guestRoot('u')]);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(result.stderr, 'no warning').toBe('');
    return result;
  };

  beforeAll(async () => {
    lab = await startLab([{ name: 'u', tree: manualTree() }]);
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it("rollback takes 10.0.0.7 (eth1's first address) and 10.0.0.8 off eth1, and keeps 10.0.0.99", async () => {
    await run(['apply']);
    await addUser();
    await run(['rollback']);
    expect(await inet(lab, 'u', 'eth1')).toEqual(['10.0.0.99/24']);
  });

  it('rollback --original does the same, with no warning', async () => {
    await run(['apply']);
    expect(await inet(lab, 'u', 'eth1')).toEqual(['10.0.0.99/24', '10.0.0.7/24', '10.0.0.8/24']);
    await run(['rollback', '--original']);
    expect(await inet(lab, 'u', 'eth1')).toEqual(['10.0.0.99/24']);
    expect(await rules(lab, 'u')).toEqual([]);
  });

  it("apply: the metadata makes 10.0.0.8 eth1's primary and drops 10.0.0.7; after two reads 10.0.0.8 and 10.0.0.99 stay, verified", async () => {
    expect((await lab.exec(lab.guestNs('u'), ['ip', 'address', 'del', '10.0.0.99/24', 'dev', 'eth1'])).exitCode).toBe(
      0,
    );
    await run(['apply']);
    await addUser();
    await lab.updateGuest('u', treeWith8AsPrimary());
    await run(['apply']);
    const second = await run(['apply']);
    expect(second.stdout).toContain('remove 10.0.0.7/24 from eth1');
    expect(await inet(lab, 'u', 'eth1')).toEqual(['10.0.0.8/24', '10.0.0.99/24']);
    expect(await rules(lab, 'u')).toEqual(['10.0.0.8 to 10.0.0.0/24 10001', '10.0.0.8 10001']);
    expect(await lab.pingFromInternet('203.0.113.13')).toBe(true);
  });
});
