// The daemon on a NetworkManager guest (a real NetworkManager 1.42, test/lab/networkmanager.ts): an ENI attached and
// detached while `eip-agent run` works, and a reboot of NetworkManager in between, with no --target (auto).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetaTree } from '../../src/metadata/tree.js';
import { CENTOS7_BOOT_FILES, CENTOS7_BOOT_LINK } from '../../src/sandbox/guest-root.js';
import { labOk, requireLab } from '../lab/guard.js';
import {
  cloudProfile,
  networkManagerAvailable,
  startNetworkManager,
  type LabNetworkManager,
} from '../lab/networkmanager.js';
import { planTopology } from '../../src/sandbox/topology.js';
import { startLab, type Lab } from '../lab/vpc.js';
import { Daemon, addresses, type DaemonEvent } from './daemon-process.js';

requireLab('the daemon on a NetworkManager guest');
const nmOk = networkManagerAvailable();
if (!nmOk && process.env.CI === 'true')
  throw new Error(
    'NetworkManager (network-manager) and dbus-daemon are needed: .ci/run installs them; CI=true: not skipping',
  );

const MAC0 = '52:54:00:00:00:40';
const MAC1 = '52:54:00:00:00:41';
const INTERVAL = 2;

/**
 * The ENI is in eth0's subnet, as in the manual. (An outage of about 40 s after its detach, seen here before, was the
 * lab's gateway bridge changing its MAC with its ports; the lab's gateways now have fixed MACs, as a VPC's do.)
 */
function tree(withEni: boolean): MetaTree {
  const address = (gateway: string, eip: string): MetaTree => ({
    gateway,
    'subnet-mask': '255.255.255.0',
    'public-ipv4': eip,
    'public-ipv4-mode': 'NAT',
  });
  const nic = (primary: string, gateway: string, eip: string): MetaTree => ({
    'primary-local-ipv4': primary,
    'local-ipv4s': { [primary]: address(gateway, eip) },
  });
  return {
    'instance-id': 'ins-lab0000n',
    mac: MAC0,
    network: {
      interfaces: {
        macs: {
          [MAC0]: nic('10.0.0.40', '10.0.0.1', '203.0.113.40'),
          ...(withEni ? { [MAC1]: nic('10.0.0.41', '10.0.0.1', '203.0.113.41') } : {}),
        },
      },
    },
  };
}

const isConverge = (e: DaemonEvent): boolean => e.event === 'apply' || e.event === 'in-sync';

describe.skipIf(!labOk || !nmOk)(
  'eip-agent run on a NetworkManager guest: hot-plug, a reboot of NetworkManager, detach',
  () => {
    const specs = [{ name: 'n', tree: tree(true) }];
    const eni = planTopology(specs).guests[0]!.nics[1]!;
    let lab: Lab;
    let nm: LabNetworkManager;
    let d: Daemon;
    let dir: string;
    const root = () => lab.guestRoot('n');
    const answers = async (ip: string) =>
      (await lab.exec(lab.internetNs, ['ping', '-n', '-c1', '-W1', ip])).exitCode === 0;
    const profiles = async (active: boolean) =>
      (await nm.nmcli(['-t', '-f', 'NAME', 'connection', 'show', ...(active ? ['--active'] : [])])).stdout
        .split('\n')
        .filter((l) => l.startsWith('eip-agent-'))
        .sort();
    const must = async (argv: string[]) => {
      const result = await lab.exec(lab.routerNs, argv);
      if (result.exitCode !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr}`);
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'eip-nm-daemon-'));
      writeFileSync(join(dir, 'config.json'), '{}');
      lab = await startLab(specs);
      for (const path of [...Object.keys(CENTOS7_BOOT_FILES), CENTOS7_BOOT_LINK]) rmSync(join(root(), path));
      // The ENI is attached later: its router end goes, and the guest's interface with it.
      await must(['ip', 'link', 'del', eni.port]);
      await lab.updateGuest('n', tree(false));
      nm = await startNetworkManager(
        lab,
        'n',
        { 'cloud-init-eth0.nmconnection': cloudProfile('eth0', '10.0.0.40/24', '10.0.0.1') },
        ['eth0'],
      );
      d = new Daemon(lab, 'n', join(dir, 'config.json'), { interval: INTERVAL, env: nm.env });
    }, 90_000);
    afterAll(async () => {
      await d?.stop();
      await nm?.stop();
      await lab?.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    it('converges on eth0 alone and hands NetworkManager its profile', async () => {
      await d.waitForEvent('the first converge', 0, isConverge);
      expect(await profiles(false)).toEqual(['eip-agent-eth0']);
      expect(await answers('203.0.113.40')).toBe(true);
    });

    it(
      'attach: eth1 appears and the cloud lists it; the daemon configures it live, writes and loads its profile',
      { timeout: 30_000 },
      async () => {
        const seen = d.events.length;
        await must([
          'ip',
          'link',
          'add',
          eni.port,
          'type',
          'veth',
          'peer',
          'name',
          eni.guestIf,
          'address',
          eni.mac,
          'netns',
          lab.guestNs('n'),
        ]);
        await must(['ip', 'link', 'set', eni.port, 'master', eni.subnet.bridge, 'up']);
        await lab.updateGuest('n', tree(true));
        const { event } = await d.waitForEvent(
          'the apply',
          seen,
          (e) => e.event === 'apply' && (e.runtimeApplied ?? []).includes('add 10.0.0.41/24 to eth1'),
          20_000,
        );
        expect(event.filesWritten).toContain('/etc/NetworkManager/system-connections/eip-agent-eth1.nmconnection');
        expect(await answers('203.0.113.41')).toBe(true);
        expect(await profiles(false)).toEqual(['eip-agent-eth0', 'eip-agent-eth1']);
      },
    );

    it(
      'a reboot of NetworkManager under the running daemon: NetworkManager activates both profiles, every EIP answers, no error',
      { timeout: 60_000 },
      async () => {
        const seen = d.events.length;
        await nm.reboot();
        expect(await profiles(true)).toEqual(['eip-agent-eth0', 'eip-agent-eth1']);
        await delay(INTERVAL * 2000);
        expect(await answers('203.0.113.40')).toBe(true);
        expect(await answers('203.0.113.41')).toBe(true);
        expect(
          d.events.slice(seen).filter((e) => e.level === 'error'),
          d.describe(),
        ).toEqual([]);
        expect(await addresses(lab, 'n', 'eth1')).toEqual(['10.0.0.41/24']);
      },
    );

    it(
      'detach: after two reads the profile is gone from disk and from NetworkManager, eth0 untouched',
      { timeout: 120_000 },
      async () => {
        const seen = d.events.length;
        await must(['ip', 'link', 'del', eni.port]);
        await lab.updateGuest('n', tree(false));
        // Generous waits: on a loaded machine a metadata read may time out and be retried (with backoff) first.
        const first = await d.waitForEvent(
          'the read that sees the ENI gone',
          seen,
          (e) => isConverge(e) || e.event === 'apply-error',
          50_000,
        );
        expect(first.event.event, d.describe()).not.toBe('apply-error');
        await d.waitForEvent(
          'the read that agrees',
          first.index + 1,
          (e) => isConverge(e) && e.pendingRemovals === 0,
          50_000,
        );
        expect(existsSync(join(root(), 'etc/NetworkManager/system-connections/eip-agent-eth1.nmconnection'))).toBe(
          false,
        );
        expect(await profiles(false)).toEqual(['eip-agent-eth0']);
        expect(await answers('203.0.113.40')).toBe(true);
      },
    );
  },
);
