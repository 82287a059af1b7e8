// The service booted for real: the release tarball installed as README says into a Debian 12 VM (systemd 252,
// NetworkManager 1.42 owning eth0 through a cloud-init-like profile), its NICs in the emulated VPC. The service
// converges and verifies, every EIP answers from the internet host, and after a reboot NetworkManager brings it all
// back from the agent's profiles and the service verifies again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANUAL_EIPS, manualTree, manualTreeWithout8 } from '../lab/fixtures.js';
import { labOk, requireLab } from '../lab/guard.js';
import { cloudProfile } from '../lab/networkmanager.js';
import type { Lab } from '../lab/vpc.js';
import { releaseTarball } from '../release/paths.js';
import { convergeCount, convergedAfter, reboot, startVmLab, vmProblem, type Vm, type VmLab } from './vm.js';

requireLab('the service booted in a VM');
const problem = vmProblem();
if (problem !== undefined && process.env.CI === 'true')
  throw new Error(`the VM boot test cannot run: ${problem}; CI=true: not skipping`);

const EIPS = MANUAL_EIPS;

describe.skipIf(!labOk || problem !== undefined)(
  'the service in a VM: install from the release tarball, boot, reboot',
  () => {
    let lab: Lab;
    let vm: Vm;
    let env: VmLab | undefined;
    const pingAll = async () =>
      Object.fromEntries(await Promise.all(EIPS.map(async (e) => [e, await lab.pingFromInternet(e, 5)] as const)));
    const all = Object.fromEntries(EIPS.map((e) => [e, true]));
    beforeAll(async () => {
      const tarball = releaseTarball();
      const name = tarball.split('/').pop()!;
      const setup = [
        'set -e',
        // The command channel starts early in the boot: let it finish, NetworkManager included.
        'systemctl is-system-running --wait >/dev/null || true',
        'i=0; until nmcli -t -f RUNNING general 2>/dev/null | grep -qx running; do i=$((i+1)); [ $i -lt 120 ]; sleep 0.5; done',
        // The cloud image's eth0 profile, as cloud-init writes it, activated as at first boot.
        'install -m 0600 /mnt/seed/cloud-init-eth0.nmconnection /etc/NetworkManager/system-connections/',
        'nmcli connection load /etc/NetworkManager/system-connections/cloud-init-eth0.nmconnection',
        'nmcli connection up "System eth0"',
        // README's "Other distributions (tarball)", as root.
        `tar -xzf /mnt/seed/${name} -C /root`,
        `/root/${name.replace(/\.tar\.gz$/, '')}/install.sh`,
      ].join('\n');
      env = await startVmLab('networkmanager', { name: 'v', tree: manualTree() }, () => ({
        'setup.sh': `${setup}\n`,
        'cloud-init-eth0.nmconnection': cloudProfile('eth0', '10.0.0.2/24', '10.0.0.1'),
        [name]: { copyOf: tarball },
      }));
      ({ lab, vm } = env);
    }, 600_000);
    afterAll(async () => {
      await env?.stop();
    });

    it(
      'installs from the tarball; the service runs, converges and verifies, every EIP answers, the journal has no error',
      { timeout: 300_000 },
      async () => {
        const started = Date.now();
        const setup = await env!.runSetup(180_000);
        expect(setup.code, setup.out).toBe(0);
        console.log(
          `vm: installed and started, converged ${await convergedAfter(vm, 0, started, 'install')} s after the install began`,
        );
        expect((await vm.sh('systemctl is-active eip-agent')).out.trim()).toBe('active');
        expect((await vm.sh('systemctl is-enabled eip-agent')).out.trim()).toBe('enabled');
        expect(await pingAll()).toEqual(all);
        expect((await vm.sh('nft list table inet eip-agent')).out).toContain(
          'comment "eip-agent new 10.0.0.8 0x01000000"',
        );
        const errors = await vm.sh('journalctl -u eip-agent -p err -o cat --no-pager');
        expect(errors.out.trim()).toBe('');
        const status = await vm.sh('eip-agent status');
        console.log(status.out);
      },
    );

    it(
      'systemctl restart and kill -9 of the daemon converge again, a restart of NetworkManager leaves it verified, the unit rates as README says',
      { timeout: 300_000 },
      async () => {
        const again = async (what: string, act: string) => {
          const before = await convergeCount(vm);
          const r = await vm.sh(act);
          expect(r.code, `${what}: ${r.out}`).toBe(0);
          await convergedAfter(vm, before, Date.now(), what, 90_000);
          expect((await vm.sh('systemctl is-active eip-agent')).out.trim(), what).toBe('active');
          expect(await pingAll(), what).toEqual(all);
        };
        await again('systemctl restart', 'systemctl restart eip-agent');
        await again('kill -9', 'kill -9 "$(systemctl show -p MainPID --value eip-agent)"');
        // NetworkManager's restart keeps the live state (no drift, so nothing new in the journal): the state verifies.
        expect((await vm.sh('systemctl restart NetworkManager && sleep 3')).code).toBe(0);
        const verify = await vm.sh('eip-agent verify');
        expect(verify.code, verify.out).toBe(0);
        expect(await pingAll()).toEqual(all);
        const security = await vm.sh('systemd-analyze security eip-agent --no-pager | tail -1');
        expect(security.out).toMatch(/Overall exposure level for eip-agent\.service: 2\.8 OK/);
      },
    );

    it(
      "after a reboot NetworkManager brings the addresses back from the agent's profiles and the service verifies again",
      { timeout: 300_000 },
      async () => {
        const rebooted = await reboot(vm);
        const seconds = await convergedAfter(vm, 0, rebooted, 'reboot');
        console.log(`vm: boot to verified ${seconds} s (reboot command to the service's first in-sync or apply)`);
        expect(await pingAll()).toEqual(all);
        const active = await vm.sh('nmcli -t -f NAME connection show --active');
        expect(active.out).toContain('eip-agent-eth0');
        expect(active.out).toContain('eip-agent-eth1');
        expect((await vm.sh('journalctl -b -u eip-agent -p err -o cat --no-pager')).out.trim()).toBe('');
        // The connection marks are runtime state: the service made its nftables table again at its first pass of the boot.
        expect((await vm.sh('nft list table inet eip-agent')).out).toContain(
          'comment "eip-agent new 10.0.0.8 0x01000000"',
        );
      },
    );

    it(
      'a metadata change reaches the guest: 10.0.0.8 goes after the reads that agree, its EIP stops answering, the rest answers',
      { timeout: 180_000 },
      async () => {
        await lab.updateGuest('v', manualTreeWithout8());
        const started = Date.now();
        while ((await vm.sh('ip -br -4 address show dev eth1')).out.includes('10.0.0.8/')) {
          if (Date.now() - started > 120_000)
            throw new Error(
              `10.0.0.8 still on eth1: ${(await vm.sh('journalctl -u eip-agent --no-pager | tail -20')).out}`,
            );
          await new Promise((r) => setTimeout(r, 1000));
        }
        console.log(`vm: metadata change to 10.0.0.8 gone from eth1 in ${(Date.now() - started) / 1000} s`);
        expect(await pingAll()).toEqual({ ...all, '203.0.113.13': false });
        expect(
          (
            await vm.sh('grep -c 10.0.0.8 /etc/NetworkManager/system-connections/eip-agent-eth1.nmconnection || true')
          ).out.trim(),
        ).toBe('0');
      },
    );
  },
);
