// The service on an Ubuntu-like guest, booted for real: a Debian 12 VM where netplan renders systemd-networkd's files
// (eth0 on the cloud's DHCP through a file shaped like cloud-init's; NetworkManager absent), the .deb installed with
// apt-get as README says, Docker publishing a container's port. Every EIP answers ping and the container's port from
// the internet host after the install, a restart of networkd, `netplan apply`, a restart of Docker, a metadata change
// and a reboot; eth0 keeps its lease throughout; an address added by hand to eth1 survives every agent action.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANUAL_EIPS, manualTree, manualTreeWithout8 } from '../lab/fixtures.js';
import { labOk, requireLab } from '../lab/guard.js';
import type { NicPlan } from '../../src/sandbox/topology.js';
import type { Lab } from '../lab/vpc.js';
import { cloudInitNetplan } from '../helpers/netplan.js';
import { releaseDeb } from '../release/paths.js';
import { convergeCount, convergedAfter, reboot, startVmLab, vmProblem, type Vm, type VmLab } from './vm.js';

requireLab('the service booted in a netplan VM');
const problem = vmProblem();
if (problem !== undefined && process.env.CI === 'true')
  throw new Error(`the netplan VM test cannot run: ${problem}; CI=true: not skipping`);

const EIPS = MANUAL_EIPS;
/** An address an operator added to eth1 by hand (not the VPC's): the agent must leave it. */
const BY_HAND = '192.0.2.77/32';
const CONTAINER = 'from the container';

describe.skipIf(!labOk || problem !== undefined)(
  'the service in a netplan + systemd-networkd VM: the .deb, Docker, DHCP on eth0',
  () => {
    let lab: Lab;
    let vm: Vm;
    let env: VmLab | undefined;
    const all = Object.fromEntries(EIPS.map((e) => [e, true]));
    const served = Object.fromEntries(EIPS.map((e) => [e, CONTAINER]));
    const pingAll = async () =>
      Object.fromEntries(await Promise.all(EIPS.map(async (e) => [e, await lab.pingFromInternet(e, 5)] as const)));
    const fetchAll = async () =>
      Object.fromEntries(await Promise.all(EIPS.map(async (e) => [e, await lab.fetchFromInternet(e, 8080)] as const)));
    const must = async (command: string, timeoutMs?: number): Promise<string> => {
      const r = await vm.sh(command, timeoutMs);
      if (r.code !== 0) throw new Error(`vm: \`${command}\` exited ${r.code}: ${r.out}`);
      return r.out;
    };
    /** `eip-agent verify` until it passes (a restarted networkd or DHCP client takes a moment), within 90 s. */
    const verified = async (what: string): Promise<void> => {
      const started = Date.now();
      for (;;) {
        const r = await vm.sh('eip-agent verify');
        if (r.code === 0) return;
        if (Date.now() - started > 90_000)
          throw new Error(
            `${what}: verify still fails: ${r.out}\n${(await vm.sh('networkctl --no-pager; journalctl -u eip-agent -u systemd-networkd --no-pager | tail -30')).out}`,
          );
        await new Promise((r) => setTimeout(r, 2000));
      }
    };
    /**
     * eth0 as the lease leaves it: networkd has it configured (not failed: its DHCP client runs), the leased 10.0.0.2 is
     * the source of the subnet's route, the lease's default route is the one in use; the agent's 10.0.0.3 is there too.
     */
    const eth0OnLease = async (what: string): Promise<void> => {
      expect(await must('networkctl list --no-pager --no-legend eth0'), what).toMatch(
        /eth0\s+ether\s+routable\s+configured/,
      );
      const addresses = await must('ip -4 -o address show dev eth0');
      expect(addresses, what).toMatch(/inet 10\.0\.0\.2\/24 .*dynamic/);
      expect(addresses, what).toMatch(/inet 10\.0\.0\.3\/32 /);
      expect(await must('ip -4 route show 10.0.0.0/24 dev eth0'), what).toMatch(/src 10\.0\.0\.2\b/);
      expect((await must('ip -4 route show default')).split('\n')[0], what).toMatch(
        /^default via 10\.0\.0\.1 dev eth0 proto dhcp/,
      );
    };
    const byHand = async (): Promise<boolean> =>
      (await must('ip -4 -o address show dev eth1')).includes(`inet ${BY_HAND} `);

    beforeAll(async () => {
      const deb = releaseDeb();
      const name = deb.split('/').pop()!;
      const setup = [
        'set -e',
        'systemctl is-system-running --wait >/dev/null || true',
        // eth0 as cloud-init's datasource leaves it on a first boot: its netplan file, applied; then wait for the lease.
        'install -m 0600 /mnt/seed/50-cloud-init.yaml /etc/netplan/',
        'netplan apply',
        'i=0; until ip -4 -o address show dev eth0 | grep -q "inet 10.0.0.2/24 .*dynamic"; do i=$((i+1)); [ $i -lt 120 ]; sleep 0.5; done',
        // A container publishing port 8080, from an image made here (no registry): busybox's httpd.
        'mkdir -p /root/img/bin /root/img/www && cp /bin/busybox /root/img/bin/',
        `printf %s "${CONTAINER}" > /root/img/www/index.html`,
        'tar -C /root/img -c . | docker import - eip-httpd >/dev/null',
        'docker run -d --name web --restart unless-stopped -p 8080:80 eip-httpd /bin/busybox httpd -f -p 80 -h /www >/dev/null',
        // README's "Ubuntu / Debian": apt-get installs the .deb (its dependencies are in the image), which starts the service.
        `cp /mnt/seed/${name} /root/`,
        `DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/${name}`,
      ].join('\n');
      const seed = (nics: readonly NicPlan[]) => ({
        'setup.sh': `${setup}\n`,
        '50-cloud-init.yaml': cloudInitNetplan(nics[0]!.mac),
        [name]: { copyOf: deb },
      });
      env = await startVmLab('netplan', { name: 'n', tree: manualTree() }, seed, { dhcp: true });
      ({ lab, vm } = env);
    }, 600_000);
    afterAll(async () => {
      await env?.stop();
    });

    it(
      "apt-get installs the .deb; the service chooses netplan, converges and verifies; every EIP answers ping and the container's port",
      { timeout: 300_000 },
      async () => {
        const started = Date.now();
        const setup = await env!.runSetup(300_000);
        expect(setup.code, setup.out).toBe(0);
        const installed = (Date.now() - started) / 1000;
        console.log(
          `vm (netplan): set up and installed in ${installed} s, converged ${await convergedAfter(vm, 0, Date.now(), 'install')} s later`,
        );
        expect((await must('systemctl is-active eip-agent')).trim()).toBe('active');
        expect((await must('systemctl is-enabled eip-agent')).trim()).toBe('enabled');
        expect(await must('journalctl -u eip-agent -o cat --no-pager')).toContain('target auto');
        expect(await must('eip-agent status')).toContain('netplan');
        await verified('install');
        await eth0OnLease('install');
        expect(await pingAll()).toEqual(all);
        expect(await fetchAll()).toEqual(served);
        expect((await must('journalctl -u eip-agent -p err -o cat --no-pager')).trim()).toBe('');
        // The operator's own address, added by hand: every agent action from here on leaves it.
        await must(`ip address add ${BY_HAND} dev eth1`);
        const security = await must('systemd-analyze security eip-agent --no-pager | tail -1');
        expect(security).toMatch(/Overall exposure level for eip-agent\.service: 2\.8 OK/);
      },
    );

    it(
      'a restart of systemd-networkd, then `netplan apply`: each comes back verified with every EIP answering, eth0 on its lease, the address added by hand kept',
      { timeout: 300_000 },
      async () => {
        for (const [what, command] of [
          ['systemctl restart systemd-networkd', 'systemctl restart systemd-networkd'],
          ['netplan apply', 'netplan apply 2>&1 | grep -v openvswitch || true'],
        ] as const) {
          await must(command);
          await verified(what);
          await eth0OnLease(what);
          expect(await pingAll(), what).toEqual(all);
          expect(await fetchAll(), what).toEqual(served);
          expect(await byHand(), what).toBe(true);
          expect((await must('journalctl -u eip-agent -p err -o cat --no-pager')).trim(), what).toBe('');
        }
      },
    );

    it(
      "a restart of Docker (it writes its iptables rules again): the container's port answers on every EIP, the agent's table stays",
      { timeout: 180_000 },
      async () => {
        await must('systemctl restart docker');
        const started = Date.now();
        while ((await fetchAll())['203.0.113.10'] !== CONTAINER) {
          if (Date.now() - started > 60_000)
            throw new Error(
              `the container did not come back: ${await must('docker ps -a; systemctl status docker --no-pager | tail -5')}`,
            );
          await new Promise((r) => setTimeout(r, 2000));
        }
        expect(await fetchAll()).toEqual(served);
        expect(await must('nft list table inet eip-agent')).toContain('comment "eip-agent new 10.0.0.8 0x01000000"');
        await verified('docker restart');
      },
    );

    it(
      'a metadata change that drops 10.0.0.8: its address, its EIP and every rule for it go; the address added by hand stays',
      { timeout: 240_000 },
      async () => {
        await lab.updateGuest('n', manualTreeWithout8());
        const started = Date.now();
        while ((await must('ip -4 -o address show dev eth1')).includes('10.0.0.8/')) {
          if (Date.now() - started > 120_000)
            throw new Error(`10.0.0.8 still on eth1: ${await must('journalctl -u eip-agent --no-pager | tail -20')}`);
          await new Promise((r) => setTimeout(r, 1000));
        }
        await verified('metadata change');
        expect(await pingAll()).toEqual({ ...all, '203.0.113.13': false });
        expect((await must('ip -4 rule')).split('\n').filter((l) => l.includes('10.0.0.8'))).toEqual([]);
        expect(await byHand()).toBe(true);
        // Back to the manual's tree for the reboot.
        const before = await convergeCount(vm);
        await lab.updateGuest('n', manualTree());
        await convergedAfter(vm, before, Date.now(), 'metadata back');
        await verified('metadata back');
        expect(await pingAll()).toEqual(all);
        expect(await byHand()).toBe(true);
      },
    );

    it(
      "after a reboot networkd brings back what the agent wrote, the lease comes back on eth0, the service verifies; every EIP answers ping and the container's port",
      { timeout: 360_000 },
      async () => {
        const rebooted = await reboot(vm);
        console.log(`vm (netplan): boot to verified ${await convergedAfter(vm, 0, rebooted, 'reboot', 240_000)} s`);
        await verified('reboot');
        await eth0OnLease('reboot');
        expect(await pingAll()).toEqual(all);
        const started = Date.now();
        while ((await fetchAll())['203.0.113.10'] !== CONTAINER) {
          if (Date.now() - started > 90_000)
            throw new Error(`the container did not come back after the reboot: ${await must('docker ps -a')}`);
          await new Promise((r) => setTimeout(r, 2000));
        }
        expect(await fetchAll()).toEqual(served);
        expect((await must('journalctl -b -u eip-agent -p err -o cat --no-pager')).trim()).toBe('');
      },
    );
  },
);
