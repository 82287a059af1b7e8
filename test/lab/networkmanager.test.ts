// The networkmanager target against a real NetworkManager 1.42 managing the lab guest (test/lab/networkmanager.ts):
// the agent's profiles are what NetworkManager itself activates at boot, and every EIP answers.
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CENTOS7_BOOT_FILES, CENTOS7_BOOT_LINK } from '../../src/sandbox/guest-root.js';
import { MANUAL_EIPS, manualTree, manualTreeWithout8 } from './fixtures.js';
import { labOk, requireLab } from './guard.js';
import {
  cloudProfile,
  networkManagerAvailable,
  startNetworkManager,
  type LabNetworkManager,
} from './networkmanager.js';
import { startLab, type Lab } from './vpc.js';

requireLab('the networkmanager target with a real NetworkManager');
const nmOk = networkManagerAvailable();
if (!nmOk && process.env.CI === 'true')
  throw new Error(
    'NetworkManager (network-manager) and dbus-daemon are needed: .ci/run installs them; CI=true: not skipping',
  );

const EIPS = MANUAL_EIPS;

async function pingAll(lab: Lab): Promise<Record<string, boolean>> {
  return Object.fromEntries(
    await Promise.all(EIPS.map(async (eip) => [eip, await lab.pingFromInternet(eip)] as const)),
  );
}

const ALL = Object.fromEntries(EIPS.map((e) => [e, true]));

describe.skipIf(!labOk || !nmOk)('the manual example on a NetworkManager guest', () => {
  let lab: Lab;
  let nm: LabNetworkManager;
  // No --target: on a guest without the legacy network service and with NetworkManager running, auto picks networkmanager.
  const agent = (args: string[]) => lab.agent('a', [...args, '--root', lab.guestRoot('a')], { env: nm.env });

  beforeAll(async () => {
    lab = await startLab([{ name: 'a', tree: manualTree() }]);
    // An EL9 guest: no initscripts (the lab seeds CentOS 7's), NetworkManager owning eth0 through a cloud-init profile.
    for (const path of [...Object.keys(CENTOS7_BOOT_FILES), CENTOS7_BOOT_LINK]) rmSync(join(lab.guestRoot('a'), path));
    nm = await startNetworkManager(
      lab,
      'a',
      { 'cloud-init-eth0.nmconnection': cloudProfile('eth0', '10.0.0.2/24', '10.0.0.1') },
      ['eth0'],
    );
  }, 90_000);
  afterAll(async () => {
    await nm?.stop();
    await lab?.destroy();
  });

  const connections = async (active: boolean): Promise<string[]> => {
    const result = await nm.nmcli(['-t', '-f', 'NAME,FILENAME', 'connection', 'show', ...(active ? ['--active'] : [])]);
    expect(result.exitCode, result.stderr).toBe(0);
    return result.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('eip-agent-'))
      .sort();
  };
  const profileFile = (device: string) => `eip-agent-${device}:${nm.profileDir}/eip-agent-${device}.nmconnection`;
  const addresses = async (): Promise<string> =>
    (await lab.exec(lab.guestNs('a'), ['ip', '-br', '-4', 'address'])).stdout;

  it('refuses where nothing would read its files at boot (NetworkManager out of reach, no legacy service): one line, nothing written', async () => {
    const noBus = { env: { DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/bus' } };
    const nmApply = await lab.agent('a', ['apply', '--target', 'networkmanager', '--root', lab.guestRoot('a')], noBus);
    expect([nmApply.exitCode, nmApply.stderr]).toEqual([
      1,
      'eip-agent: apply: target networkmanager writes keyfile profiles, and NetworkManager is not running (nmcli -t -f RUNNING general): nothing would load them; start it (systemctl enable --now NetworkManager); nothing was written\n',
    ]);
    // auto falls back to centos, whose ifcfg files nothing would read either.
    const auto = await lab.agent('a', ['apply', '--root', lab.guestRoot('a')], noBus);
    expect(auto.exitCode).toBe(1);
    expect(auto.stderr).toMatch(
      /^eip-agent: apply: target centos writes ifcfg files with NM_CONTROLLED=no, which only the legacy network service reads at boot, and this guest has none/,
    );
    expect(readdirSync(nm.profileDir)).toEqual(['cloud-init-eth0.nmconnection']);
    expect(existsSync(join(lab.guestRoot('a'), 'etc/sysctl.d'))).toBe(false);
    expect(readdirSync(join(lab.guestRoot('a'), 'etc/sysconfig/network-scripts'))).toEqual([]);
  });

  it('apply: every EIP answers, NetworkManager has loaded the profiles (0600), a hand-added address stays, a second apply changes nothing', async () => {
    expect((await lab.exec(lab.guestNs('a'), ['ip', 'address', 'add', '10.0.0.99/24', 'dev', 'eth0'])).exitCode).toBe(
      0,
    );
    const apply = await agent(['apply']);
    expect(apply.exitCode, apply.stdout + apply.stderr).toBe(0);
    expect(await pingAll(lab)).toEqual(ALL);
    expect(await connections(false)).toEqual([profileFile('eth0'), profileFile('eth1')]);
    for (const name of ['eip-agent-eth0.nmconnection', 'eip-agent-eth1.nmconnection'])
      expect(statSync(join(nm.profileDir, name)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(nm.profileDir, 'eip-agent-eth1.nmconnection'), 'utf8')).toBe(
      golden('eip-agent-eth1.nmconnection'),
    );
    expect(readFileSync(join(nm.profileDir, 'eip-agent-eth0.nmconnection'), 'utf8')).toBe(
      golden('eip-agent-eth0.nmconnection'),
    );
    // The live NICs are not re-activated (that would remove what the agent does not own): 10.0.0.99 is still there.
    expect(await addresses()).toMatch(/^eth0@\S+\s+UP\s+10\.0\.0\.2\/24 10\.0\.0\.99\/24 10\.0\.0\.3\/24 $/m);
    const again = await agent(['apply']);
    expect([again.exitCode, again.stdout], again.stderr).toEqual([0, expect.stringContaining('Already in sync')]);
  });

  it('after a reboot (NetworkManager restarted on a flushed guest) NetworkManager activates the profiles and everything is back', async () => {
    await nm.reboot();
    expect(await connections(true)).toEqual([profileFile('eth0'), profileFile('eth1')]);
    expect(await pingAll(lab)).toEqual(ALL);
    const verify = await agent(['verify']);
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
    const plan = await agent(['plan']);
    expect([plan.exitCode, plan.stdout], plan.stderr).toEqual([0, expect.stringContaining('In sync: nothing to do.')]);
    expect(plan.stdout).toContain('Plan for target networkmanager');
    expect(plan.stdout).toContain(
      'Network at boot: no legacy network service; NetworkManager running (plugins keyfile)',
    );
  });

  it('a metadata change: the dropped address goes live and from the profile, a hand-added one stays, and the reboot agrees', async () => {
    expect(
      (await lab.exec(lab.guestNs('a'), ['ip', 'address', 'add', '10.0.0.98/24', 'dev', 'eth1', 'noprefixroute']))
        .exitCode,
    ).toBe(0);
    await lab.updateGuest('a', manualTreeWithout8());
    // Removal waits for a second read that agrees, as on every target.
    for (let i = 0; i < 2; i++) expect((await agent(['apply'])).exitCode).toBe(0);
    expect(await addresses()).toMatch(/^eth1@\S+\s+UP\s+10\.0\.0\.7\/24 10\.0\.0\.98\/24 $/m);
    expect(readFileSync(join(nm.profileDir, 'eip-agent-eth1.nmconnection'), 'utf8')).not.toContain('10.0.0.8');
    expect(await pingAll(lab)).toEqual({ ...ALL, '203.0.113.13': false });
    await nm.reboot();
    expect(await addresses()).toMatch(/^eth1@\S+\s+UP\s+10\.0\.0\.7\/24 $/m);
    expect(await pingAll(lab)).toEqual({ ...ALL, '203.0.113.13': false });
    expect((await agent(['verify'])).exitCode).toBe(0);
  });

  it('rollback puts the last apply back, profile included; rollback --original never takes a live NIC down, and the reboot returns to the image', async () => {
    const nmAddresses = async (profile: string) =>
      (await nm.nmcli(['-g', 'ipv4.addresses', 'connection', 'show', profile])).stdout.trim();
    const back = await agent(['rollback']);
    expect(back.exitCode, back.stdout + back.stderr).toBe(0);
    expect(await addresses()).toMatch(/^eth1@\S+\s+UP\s+10\.0\.0\.7\/24 10\.0\.0\.8\/24 $/m);
    // NetworkManager's view of the profile is the file's (the last apply removed 10.0.0.8 live; the file changed earlier).
    const file = readFileSync(join(nm.profileDir, 'eip-agent-eth1.nmconnection'), 'utf8');
    expect(await nmAddresses('eip-agent-eth1')).toBe(
      [...file.matchAll(/^address\d+=(.*)$/gm)].map((m) => m[1]).join(', '),
    );

    const original = await agent(['rollback', '--original']);
    expect(original.exitCode, original.stdout + original.stderr).toBe(0);
    // Both agent profiles are active: their files are gone, NetworkManager keeps them until the next boot.
    expect(original.stderr).toContain(
      `${nm.profileDir}/eip-agent-eth0.nmconnection removed; NetworkManager keeps it active on its device until the next boot`,
    );
    expect(readdirSync(nm.profileDir)).toEqual(['cloud-init-eth0.nmconnection']);
    expect(await addresses()).toMatch(/^eth0@\S+\s+UP\s+10\.0\.0\.2\/24 $/m);
    expect(await lab.pingFromInternet('203.0.113.10')).toBe(true);
    await nm.reboot();
    expect((await nm.nmcli(['-t', '-f', 'NAME', 'connection', 'show', '--active'])).stdout).toMatch(/^System eth0$/m);
    expect(await connections(false)).toEqual([]);
    expect(await addresses()).toMatch(/^eth0@\S+\s+UP\s+10\.0\.0\.2\/24 $/m);
    expect(await lab.pingFromInternet('203.0.113.10')).toBe(true);
  });
});

/** The renderer's golden keyfile for the manual example (test/render/__golden__/manual/networkmanager/policy). */
function golden(name: string): string {
  return readFileSync(
    new URL(
      `../render/__golden__/manual/networkmanager/policy/etc/NetworkManager/system-connections/${name}`,
      import.meta.url,
    ),
    'utf8',
  );
}
