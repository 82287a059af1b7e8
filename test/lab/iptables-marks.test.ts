// A guest without `nft` (CentOS 7 without the nftables package) and with a port published the way Docker does it
// (iptables' nat table: DNAT of TCP 8080 on every local address to a container, masquerade out): the agent keeps its
// connection marks in two chains of its own in iptables' mangle table, and the port answers through every EIP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentCommand } from './agent-command.js';
import { MANUAL_EIPS, manualTree } from './fixtures.js';
import { labOk, requireLab } from './guard.js';
import { startLab, type Lab } from './vpc.js';

requireLab("eip-agent's connection marks in iptables where there is no nft");

const EIPS = MANUAL_EIPS;
/**
 * The agent as it runs on a guest without nft: in a private mount namespace whose /usr/sbin (and so /sbin) is a copy
 * without `nft`, on a tmpfs over /mnt that goes with the namespace.
 */
const WITHOUT_NFT =
  'set -e; mount -t tmpfs tmpfs /mnt; cp -a /usr/sbin/. /mnt/; rm -f /mnt/nft; mount --bind /mnt /usr/sbin; exec "$@"';

describe.skipIf(!labOk)('a guest without nft, with Docker-style iptables NAT', () => {
  let lab: Lab;
  let guest: string;
  let ctr: string;
  const must = async (ns: string, argv: string[], input?: string): Promise<string> => {
    const result = await lab.exec(ns, argv, input === undefined ? {} : { input });
    if (result.exitCode !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  const agent = (args: string[]) =>
    lab.exec(
      guest,
      [
        'unshare',
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        WITHOUT_NFT,
        'sh',
        ...agentCommand(),
        ...args,
        '--root',
        lab.guestRoot('d'),
      ],
      { timeoutMs: 60_000 },
    );
  const fetchAll = async () =>
    Object.fromEntries(
      await Promise.all(EIPS.map(async (eip) => [eip, await lab.fetchFromInternet(eip, 8080)] as const)),
    );
  const served = Object.fromEntries(EIPS.map((e) => [e, 'from the container']));
  const mangle = async () =>
    (await must(guest, ['iptables', '-t', 'mangle', '-S'])).split('\n').filter((l) => l.includes('EIP-AGENT'));
  const nat = async () => must(guest, ['iptables', '-t', 'nat', '-S']);

  beforeAll(async () => {
    lab = await startLab([{ name: 'd', tree: manualTree() }]);
    guest = lab.guestNs('d');
    ctr = await lab.addNamespace('ctr');
    await must(
      guest,
      ['ip', '-batch', '-'],
      [
        'link add docker0 type bridge',
        'address add 172.17.0.1/16 dev docker0',
        'link set docker0 up',
        `link add vethctr type veth peer name eth0 netns ${ctr}`,
        'link set vethctr master docker0',
        'link set vethctr up',
        '',
      ].join('\n'),
    );
    await must(guest, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    // Docker's own rule shapes for `-p 8080:80` and its masquerade.
    await must(guest, [
      'iptables',
      '-t',
      'nat',
      '-A',
      'PREROUTING',
      '-m',
      'addrtype',
      '--dst-type',
      'LOCAL',
      '-p',
      'tcp',
      '--dport',
      '8080',
      '-j',
      'DNAT',
      '--to-destination',
      '172.17.0.2:80',
    ]);
    await must(guest, [
      'iptables',
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      '-s',
      '172.17.0.0/16',
      '!',
      '-o',
      'docker0',
      '-j',
      'MASQUERADE',
    ]);
    await must(
      ctr,
      ['ip', '-batch', '-'],
      'address add 172.17.0.2/16 dev eth0\nlink set eth0 up\nroute add default via 172.17.0.1\n',
    );
    void lab
      .exec(
        ctr,
        [process.execPath, '-e', "require('node:http').createServer((q, r) => r.end('from the container')).listen(80)"],
        { timeoutMs: 600_000 },
      )
      .catch(() => undefined);
    for (let i = 0; i < 100 && (await lab.exec(ctr, ['ss', '-Htln', 'sport = :80'])).stdout.trim() === ''; i++)
      await new Promise((r) => setTimeout(r, 50));
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it("apply puts the marks in its own mangle chains, and the port answers through every EIP, eth1's too", async () => {
    const natBefore = await nat();
    const apply = await agent(['apply']);
    expect(apply.exitCode, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toContain(
      'applied: iptables mangle chains EIP-AGENT-PRE and EIP-AGENT-OUT: mark 0x1000000/0xf000000 on connections to 10.0.0.7, 10.0.0.8',
    );
    // As iptables lists them (its order: sorted here).
    expect((await mangle()).sort()).toEqual(
      [
        '-N EIP-AGENT-PRE',
        '-N EIP-AGENT-OUT',
        '-A PREROUTING -m comment --comment "eip-agent jump-pre" -j EIP-AGENT-PRE',
        '-A OUTPUT -m comment --comment "eip-agent jump-out" -j EIP-AGENT-OUT',
        '-A EIP-AGENT-PRE -d 10.0.0.7/32 -m conntrack --ctstate NEW -m comment --comment "eip-agent new 10.0.0.7 0x01000000" -j CONNMARK --set-xmark 0x1000000/0xf000000',
        '-A EIP-AGENT-PRE -d 10.0.0.8/32 -m conntrack --ctstate NEW -m comment --comment "eip-agent new 10.0.0.8 0x01000000" -j CONNMARK --set-xmark 0x1000000/0xf000000',
        '-A EIP-AGENT-PRE -m conntrack --ctdir REPLY -m connmark --mark 0x1000000/0xf000000 -m comment --comment "eip-agent reply 0x01000000" -j MARK --set-xmark 0x1000000/0xf000000',
        '-A EIP-AGENT-OUT -m conntrack --ctdir REPLY -m connmark --mark 0x1000000/0xf000000 -m comment --comment "eip-agent reply-local 0x01000000" -j MARK --set-xmark 0x1000000/0xf000000',
      ].sort(),
    );
    expect(await fetchAll()).toEqual(served);
    expect(await nat()).toBe(natBefore);
    const again = await agent(['apply']);
    expect(again.stdout, again.stderr).toContain('Already in sync: nothing written, nothing changed.');
  });

  it('a flushed chain is put back by the next apply, and the port answers again', async () => {
    await must(guest, ['iptables', '-t', 'mangle', '-F', 'EIP-AGENT-PRE']);
    expect((await fetchAll())['203.0.113.12']).toMatch(/^failed: /);
    const repair = await agent(['apply']);
    expect(repair.exitCode, repair.stdout + repair.stderr).toBe(0);
    expect((await mangle()).filter((l) => l.startsWith('-A PREROUTING'))).toHaveLength(1);
    expect(await fetchAll()).toEqual(served);
    const verify = await agent(['verify']);
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
  });

  it('rollback --original removes its chains and jumps, and leaves the NAT rules as they were', async () => {
    const natBefore = await nat();
    const rollback = await agent(['rollback', '--original']);
    expect(rollback.exitCode, rollback.stdout + rollback.stderr).toBe(0);
    expect(rollback.stdout).toContain('iptables mangle chains EIP-AGENT-PRE and EIP-AGENT-OUT deleted');
    expect(await mangle()).toEqual([]);
    expect(await nat()).toBe(natBefore);
  });
});
