// The netplan target against a real systemd-networkd managing the lab guest (test/lab/networkd.ts) from what the real
// `netplan generate` makes of the guest's netplan file and the agent's: networkd removes the rules it did not
// configure when it starts, and keeps the agent's; after a reboot it brings everything back from the files alone.
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CENTOS7_BOOT_FILES, CENTOS7_BOOT_LINK } from '../../src/sandbox/guest-root.js';
import { MANUAL_EIPS, manualTree, manualTreeWithout8 } from './fixtures.js';
import { labOk, requireLab } from './guard.js';
import { networkdAvailable, startNetworkd, type LabNetworkd } from './networkd.js';
import { startLab, type Lab } from './vpc.js';

requireLab('the netplan target with a real systemd-networkd');
const ndOk = networkdAvailable();
if (!ndOk && process.env.CI === 'true')
  throw new Error('systemd-networkd and netplan (netplan.io) are needed: .ci/run installs them; CI=true: not skipping');

const EIPS = MANUAL_EIPS;
const ALL = Object.fromEntries(EIPS.map((e) => [e, true]));

/**
 * The guest's own netplan file, by name (a veth has no permanent MAC for netplan's `match: macaddress` to find):
 * eth0 with its primary and the default route as the lease leaves them, eth1 listed without addresses.
 */
const GUEST_NETPLAN =
  'network:\n  version: 2\n  ethernets:\n    eth0:\n      addresses: [10.0.0.2/24]\n      routes:\n        - to: default\n          via: 10.0.0.1\n    eth1:\n      dhcp4: false\n';

describe.skipIf(!labOk || !ndOk)('the manual example on a netplan + systemd-networkd guest', () => {
  let lab: Lab;
  let networkd: LabNetworkd;
  const agent = (args: string[]) => lab.agent('p', [...args, '--root', lab.guestRoot('p')], { env: networkd.env });
  const ip = async (...argv: string[]) => (await lab.exec(lab.guestNs('p'), ['ip', ...argv])).stdout;
  const pingAll = async () =>
    Object.fromEntries(await Promise.all(EIPS.map(async (e) => [e, await lab.pingFromInternet(e)] as const)));
  /** networkd has configured eth0 from the files (and, once the agent's are there, eth1 and the rules). */
  let expectReady = async (): Promise<boolean> =>
    (await ip('-4', '-br', 'address', 'show', 'dev', 'eth0')).includes('10.0.0.2/24');

  beforeAll(async () => {
    lab = await startLab([{ name: 'p', tree: manualTree() }]);
    const root = lab.guestRoot('p');
    // An Ubuntu guest: no initscripts (the lab seeds CentOS 7's), netplan installed and configured.
    for (const path of [...Object.keys(CENTOS7_BOOT_FILES), CENTOS7_BOOT_LINK]) rmSync(join(root, path));
    mkdirSync(join(root, 'etc/netplan'), { recursive: true });
    mkdirSync(join(root, 'usr/sbin'), { recursive: true });
    writeFileSync(join(root, 'usr/sbin/netplan'), '');
    writeFileSync(join(root, 'etc/netplan/50-cloud-init.yaml'), GUEST_NETPLAN, { mode: 0o600 });
    networkd = await startNetworkd(lab, 'p', () => expectReady());
  }, 90_000);
  afterAll(async () => {
    await networkd?.stop();
    await lab?.destroy();
  });

  it('apply (auto chooses netplan): every EIP answers, a second apply changes nothing', async () => {
    const apply = await agent(['apply']);
    expect(apply.exitCode, apply.stdout + apply.stderr).toBe(0);
    expect(apply.stdout).toContain('wrote /etc/netplan/90-eip-agent.yaml');
    expect(await pingAll()).toEqual(ALL);
    const again = await agent(['apply']);
    expect([again.exitCode, again.stdout], again.stderr).toEqual([0, expect.stringContaining('Already in sync')]);
    // From now on a boot is done (network-online) when networkd has put back eth1 and the rules, and both NICs reach the gateway.
    const reaches = async (source: string) =>
      (await lab.exec(lab.guestNs('p'), ['ping', '-c', '1', '-W', '1', '-I', source, '10.0.0.1'])).exitCode === 0;
    expectReady = async () =>
      (await ip('-4', '-br', 'address', 'show', 'dev', 'eth1')).includes('10.0.0.7/24') &&
      (await ip('-4', 'rule')).includes('suppress_prefixlength 0') &&
      (await reaches('10.0.0.2')) &&
      (await reaches('10.0.0.7'));
  });

  it(
    "a restart of systemd-networkd on the agent's files leaves it verified and in sync, every EIP answering",
    { timeout: 90_000 },
    async () => {
      await networkd.restart();
      const verify = await agent(['verify']);
      expect(verify.exitCode, verify.stdout + verify.stderr + networkd.log().slice(-2000)).toBe(0);
      expect(await pingAll()).toEqual(ALL);
      const again = await agent(['apply']);
      expect([again.exitCode, again.stdout], again.stderr).toEqual([0, expect.stringContaining('Already in sync')]);
    },
  );

  it(
    'after networkd added its own copies of the rules, a metadata change that drops 10.0.0.8 removes its address, its EIP and every copy of its rules',
    { timeout: 90_000 },
    async () => {
      await lab.updateGuest('p', manualTreeWithout8());
      // A removal needs two reads that agree.
      for (let i = 0; i < 2; i++) {
        const apply = await agent(['apply']);
        expect(apply.exitCode, apply.stdout + apply.stderr).toBe(0);
      }
      expect(await ip('-4', '-br', 'address', 'show', 'dev', 'eth1')).not.toContain('10.0.0.8');
      expect(await pingAll()).toEqual({ ...ALL, '203.0.113.13': false });
      const verify = await agent(['verify']);
      expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
      // The agent's own rules for 10.0.0.8 are gone, and so are networkd's copies of them (proto static, made at its
      // restart from the agent's drop-in).
      expect((await ip('-4', 'rule')).split('\n').filter((l) => l.includes('10.0.0.8'))).toEqual([]);
      // Back to the manual's tree for the reboot.
      await lab.updateGuest('p', manualTree());
      const back = await agent(['apply']);
      expect(back.exitCode, back.stdout + back.stderr).toBe(0);
      expect(await pingAll()).toEqual(ALL);
    },
  );

  it(
    'after a reboot (networkd started on a flushed guest) networkd alone brings back the addresses, tables and rules: verify passes, every EIP answers',
    { timeout: 90_000 },
    async () => {
      await networkd.reboot();
      const verify = await agent(['verify']);
      expect(verify.exitCode, verify.stdout + verify.stderr + networkd.log().slice(-2000)).toBe(0);
      expect(await pingAll()).toEqual(ALL);
      const rules = await ip('-4', 'rule');
      expect(rules).toMatch(/^30000:\s+from all lookup main suppress_prefixlength 0 proto static\s*$/m);
      expect(rules).toMatch(/^30001:\s+from 10\.0\.0\.8 lookup 10001 proto static\s*$/m);
      expect(rules).toMatch(/^30001:\s+from all fwmark 0x1000000\/0xf000000 lookup 10001 proto static\s*$/m);
    },
  );
});
