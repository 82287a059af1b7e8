// Handing changed NetworkManager profiles to NetworkManager (`nmcli connection load`), and what it must not do.
import { beforeEach, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../src/targets/linux/networkmanager/profiles.js';
import type { RunResult } from '../../src/host/host.js';
import { createTestHost, vol } from '../helpers/host.js';

const DIR = '/etc/NetworkManager/system-connections';

function nmHost(answers: Record<string, RunResult | Error>, calls: string[]) {
  return createTestHost({
    async run(argv) {
      const line = argv.join(' ');
      calls.push(line);
      const key = Object.keys(answers).find((k) => line.startsWith(k));
      const answer = key === undefined ? { exitCode: 0, stdout: '', stderr: '' } : answers[key]!;
      if (answer instanceof Error) throw answer;
      return answer;
    },
  });
}

beforeEach(() => {
  vol.reset();
  vol.fromJSON({
    [`${DIR}/eip-agent-eth1.nmconnection`]: '# Managed by eip-agent\n',
    '/etc/sysctl.d/99-zz-eip-agent.conf': '',
  });
});

describe('loadProfiles', () => {
  it('loads the changed profiles in one call and nothing else; spawns nothing when no profile changed', async () => {
    const calls: string[] = [];
    const host = nmHost({}, calls);
    expect(await loadProfiles(host, '/', ['/etc/sysctl.d/99-zz-eip-agent.conf'])).toEqual([]);
    expect(calls).toEqual([]);
    expect(
      await loadProfiles(host, '/', [`${DIR}/eip-agent-eth1.nmconnection`, '/etc/sysctl.d/99-zz-eip-agent.conf']),
    ).toEqual([]);
    expect(calls).toEqual([`nmcli connection load ${DIR}/eip-agent-eth1.nmconnection`]);
  });

  it('keeps a removed profile that is active (dropping it takes its device down) and says so; a removed inactive one is dropped', async () => {
    const calls: string[] = [];
    const host = nmHost(
      {
        'nmcli -t -f FILENAME connection show --active': {
          exitCode: 0,
          stdout: `${DIR}/eip-agent-eth0.nmconnection\n`,
          stderr: '',
        },
      },
      calls,
    );
    const notes = await loadProfiles(host, '/', [
      `${DIR}/eip-agent-eth0.nmconnection`,
      `${DIR}/eip-agent-eth2.nmconnection`,
    ]);
    expect(notes).toEqual([
      `${DIR}/eip-agent-eth0.nmconnection removed; NetworkManager keeps it active on its device until the next boot (dropping it now would take the device down)`,
    ]);
    expect(calls).toEqual([
      'nmcli -t -f FILENAME connection show --active',
      `nmcli connection load ${DIR}/eip-agent-eth2.nmconnection`,
    ]);
  });

  it("a failing load is one line with nmcli's first line; a missing nmcli says what to install", async () => {
    const failing = nmHost(
      {
        'nmcli connection load': { exitCode: 8, stdout: '', stderr: '\nError: NetworkManager is not running.\nmore\n' },
      },
      [],
    );
    await expect(loadProfiles(failing, '/', [`${DIR}/eip-agent-eth1.nmconnection`])).rejects.toThrow(
      `\`nmcli connection load ${DIR}/eip-agent-eth1.nmconnection\` exited 8: Error: NetworkManager is not running.`,
    );
    const missing = nmHost({ nmcli: Object.assign(new Error('spawn nmcli ENOENT'), { code: 'ENOENT' }) }, []);
    await expect(loadProfiles(missing, '/', [`${DIR}/eip-agent-eth1.nmconnection`])).rejects.toThrow(
      '`nmcli` was not found on PATH: install NetworkManager',
    );
  });
});
