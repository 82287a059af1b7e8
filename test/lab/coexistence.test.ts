// The agent among the other actors of a real guest: a Docker-style bridge with a container behind NAT, a port the
// user publishes with their own nftables DNAT, a VPN-like route in main and a rule of the user's. After `apply`, the
// agent's policy routing must not take over any of their traffic, and it must leave their rules and tables as they were;
// the port published through a secondary NIC's EIP answers too (connection marks).
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANUAL_EIPS, manualTree } from './fixtures.js';
import { labOk, requireLab } from './guard.js';
import { startLab, type Lab } from './vpc.js';

requireLab("eip-agent beside containers, a VPN route and the user's own nftables");

/** The user's own NAT: the containers' masquerade out of eth0, and TCP 8080 on the host published to the container. */
const USER_NFT = `table ip usernat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local tcp dport 8080 dnat to 172.17.0.2:80
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 172.17.0.0/16 oifname != "docker0" masquerade
	}
}
`;

/** The EIPs of the manual's addresses: 10.0.0.2 and 10.0.0.3 on eth0, 10.0.0.7 and 10.0.0.8 on eth1. */
const EIPS = MANUAL_EIPS;

describe.skipIf(!labOk)(
  "a guest with a container bridge, a published port, a VPN route and a rule of the user's",
  () => {
    let lab: Lab;
    let guest: string;
    let ctr: string;
    let server: ChildProcess | undefined;
    const must = async (ns: string, argv: string[], input?: string): Promise<string> => {
      const result = await lab.exec(ns, argv, input === undefined ? {} : { input });
      if (result.exitCode !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr}`);
      return result.stdout;
    };
    const pingFrom = async (ns: string, target: string): Promise<boolean> => {
      for (let i = 0; i < 3; i++)
        if ((await lab.exec(ns, ['ping', '-n', '-c1', '-W1', target])).exitCode === 0) return true;
      return false;
    };
    /** The user's state the agent must leave byte for byte: their nftables table, their rule. */
    const userState = async () => ({
      nft: await must(guest, ['nft', 'list', 'table', 'ip', 'usernat']),
      rule: (await must(guest, ['ip', 'rule', 'show', 'priority', '1000'])).trim(),
    });
    const fetchFromInternet = (address: string): Promise<string> => lab.fetchFromInternet(address, 8080);

    beforeAll(async () => {
      lab = await startLab([{ name: 'd', tree: manualTree() }]);
      guest = lab.guestNs('d');
      ctr = await lab.addNamespace('ctr');
      // What Docker sets up: a bridge, a container on a veth behind it, forwarding, masquerade.
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
          // A VPN's route (WireGuard, OpenVPN) in main, on a veth standing in for its tunnel device, and a rule of the user's.
          'link add wg0 type veth peer name wgpeer',
          'link set wgpeer up',
          'link set wg0 up',
          'address add 10.99.0.1/16 dev wg0',
          'rule add from 192.0.2.0/24 lookup 100 priority 1000',
        ].join('\n') + '\n',
      );
      await must(guest, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
      await must(guest, ['nft', '-f', '-'], USER_NFT);
      await must(
        ctr,
        ['ip', '-batch', '-'],
        'address add 172.17.0.2/16 dev eth0\nlink set eth0 up\nroute add default via 172.17.0.1\n',
      );
      // The published service: an HTTP server in the container on :80.
      server = spawn(
        'ip',
        [
          'netns',
          'exec',
          ctr,
          process.execPath,
          '-e',
          "require('node:http').createServer((q, r) => r.end('from the container')).listen(80)",
        ],
        { stdio: 'ignore' },
      );
      for (let i = 0; i < 100 && (await lab.exec(ctr, ['ss', '-Htln', 'sport = :80'])).stdout.trim() === ''; i++)
        await new Promise((r) => setTimeout(r, 50));
    });
    afterAll(async () => {
      server?.kill('SIGKILL');
      await lab?.destroy();
    });

    it('apply configures the NICs and verifies', async () => {
      const apply = await lab.agent('d', ['apply', '--root', lab.guestRoot('d')]);
      expect(apply.exitCode, apply.stdout + apply.stderr).toBe(0);
    });

    it("the container reaches every address of the guest, eth1's too: main's route to the bridge wins over the agent's table", async () => {
      for (const address of ['172.17.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.7', '10.0.0.8'])
        expect(await pingFrom(ctr, address), address).toBe(true);
    });

    it("without the main rule the replies to the container from eth1's addresses are hijacked to the VPC gateway; apply puts the rule back", async () => {
      await must(guest, ['ip', 'rule', 'del', 'priority', '30000']);
      expect(await must(guest, ['ip', 'route', 'get', '172.17.0.2', 'from', '10.0.0.7'])).toMatch(
        /via 10\.0\.0\.1 dev eth1 table 10001/,
      );
      expect(await pingFrom(ctr, '10.0.0.7')).toBe(false);
      const repair = await lab.agent('d', ['apply', '--root', lab.guestRoot('d')]);
      expect(repair.exitCode, repair.stdout + repair.stderr).toBe(0);
      expect(repair.stdout).toContain('applied: rule from all table 254 suppress_prefixlength 0 priority 30000');
      expect(await must(guest, ['ip', 'route', 'get', '172.17.0.2', 'from', '10.0.0.7'])).toMatch(
        /172\.17\.0\.2 from 10\.0\.0\.7 dev docker0/,
      );
      expect(await pingFrom(ctr, '10.0.0.7')).toBe(true);
    });

    it("the container reaches the internet host through the user's masquerade on eth0", async () => {
      expect(await pingFrom(ctr, '198.51.100.2')).toBe(true);
    });

    it("traffic from a secondary NIC's address to the VPN's network goes where main says; to the internet it leaves by its NIC", async () => {
      expect(await must(guest, ['ip', 'route', 'get', '10.99.1.1', 'from', '10.0.0.8'])).toMatch(
        /10\.99\.1\.1 from 10\.0\.0\.8 dev wg0/,
      );
      expect(await must(guest, ['ip', 'route', 'get', '198.51.100.2', 'from', '10.0.0.8'])).toMatch(
        /via 10\.0\.0\.1 dev eth1 table 10001/,
      );
      // Its own subnet too, though eth0 shares it and main's prefix route is eth0's.
      expect(await must(guest, ['ip', 'route', 'get', '10.0.0.1', 'from', '10.0.0.8'])).toMatch(/dev eth1 table 10001/);
    });

    it("the port published on every EIP answers from the internet host, eth1's too: the reply takes its connection's mark", async () => {
      for (const eip of EIPS) expect(await fetchFromInternet(eip), eip).toBe('from the container');
    });

    it("without the agent's nftables table the replies through eth1's EIPs leave by eth0 and are dropped; apply puts the table back", async () => {
      // What a restart of the user's firewall does: the whole ruleset flushed, their own tables loaded again.
      await must(guest, ['nft', 'flush', 'ruleset']);
      await must(guest, ['nft', '-f', '-'], USER_NFT);
      expect(await fetchFromInternet('203.0.113.12')).toMatch(/^failed: /);
      expect(await fetchFromInternet('203.0.113.10')).toBe('from the container');
      const repair = await lab.agent('d', ['apply', '--root', lab.guestRoot('d')]);
      expect(repair.exitCode, repair.stdout + repair.stderr).toBe(0);
      expect(repair.stdout).toContain(
        'applied: nftables table inet eip-agent: mark 0x1000000/0xf000000 on connections to 10.0.0.7, 10.0.0.8',
      );
      for (const eip of EIPS) expect(await fetchFromInternet(eip), eip).toBe('from the container');
    });

    it("each address is answered by the NIC that holds it: an ARP request for eth0's address gets eth0's MAC alone, and eth1's eth1's", async () => {
      const macs = { eth0: '52:54:00:8a:7a:64', eth1: '20:90:6f:f7:93:2e' };
      const expected: Record<string, string> = {
        '10.0.0.2': macs.eth0,
        '10.0.0.3': macs.eth0,
        '10.0.0.7': macs.eth1,
        '10.0.0.8': macs.eth1,
      };
      // A VPC that neither filters nor answers ARP itself (the lab's filters ARP per port): let every ARP frame through.
      await must(lab.routerNs, [
        'nft',
        'insert',
        'rule',
        'bridge',
        'eipspoof',
        'prerouting',
        'ether',
        'type',
        'arp',
        'accept',
      ]);
      // Both NICs hear every request on the shared subnet; with the kernel's defaults (arp_ignore=0) both answer each.
      for (const [address, mac] of Object.entries(expected)) {
        const result = await lab.exec(lab.routerNs, ['arping', '-c', '2', '-I', 'br-0', address]);
        const answered = new Set(
          [...result.stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]+)\]/g)].map((m) => m[1]!.toLowerCase()),
        );
        expect([...answered], `${address}: ${result.stdout}`).toEqual([mac]);
      }
    });

    it("the user's nftables table and rule are as they were, and a second apply changes nothing", async () => {
      const before = await userState();
      const again = await lab.agent('d', ['apply', '--root', lab.guestRoot('d')]);
      expect(again.exitCode, again.stdout + again.stderr).toBe(0);
      expect(again.stdout).toContain('Already in sync: nothing written, nothing changed.');
      expect(await userState()).toEqual(before);
      expect(before.rule).toBe('1000:\tfrom 192.0.2.0/24 lookup 100');
      expect(before.nft).toContain('dnat to 172.17.0.2:80');
    });

    it("rollback --original deletes the agent's nftables table and leaves the user's", async () => {
      const before = await userState();
      const rollback = await lab.agent('d', ['rollback', '--original', '--root', lab.guestRoot('d')]);
      expect(rollback.exitCode, rollback.stdout + rollback.stderr).toBe(0);
      expect((await lab.exec(guest, ['nft', 'list', 'table', 'inet', 'eip-agent'])).exitCode).not.toBe(0);
      expect(await must(guest, ['ip', 'rule'])).not.toContain('fwmark');
      expect(await userState()).toEqual(before);
    });
  },
);
