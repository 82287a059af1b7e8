// `eip-agent sandbox`, run as an operator runs it (root, on this machine's own namespace), by the agent under test: the
// development CLI or the release executable. Every EIP is pinged from the sandbox's internet host, the guests' live
// state is read with ip, and the host's own addresses, rules, routes, nftables ruleset and sysctls are compared
// before and after.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_DIR } from '../../src/sandbox/sandbox.js';
import { listNamespaces, processAlive } from '../../src/sandbox/namespaces.js';
import { agentCommand, agentUnderTest } from './agent-command.js';
import { threeNicTree } from './fixtures.js';
import { labOk, requireLab } from './guard.js';

requireLab('eip-agent sandbox');

/** Sandbox names of this test process: `s<pid><letter>`, so a later run can tell a dead run's leftovers. */
let count = 0;
const names: string[] = [];
function newName(): string {
  const name = `s${process.pid}${String.fromCharCode(97 + count++)}`;
  names.push(name);
  return name;
}

interface Report {
  eips: {
    guest: string;
    publicIp: string;
    privateIp: string;
    nic: string;
    mac: string;
    mode: string;
    answered: boolean;
  }[];
  verify: { guest: string; exitCode: number; output: string }[];
  ok: boolean;
}

async function sandbox(
  args: string[],
  timeout = 240_000,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const [file, ...rest] = agentCommand();
  const result = await execa(file as string, [...rest, 'sandbox', ...args], {
    reject: false,
    timeout,
    stripFinalNewline: false,
    env: { EIP_AGENT_DEBUG: '1' },
  });
  return { exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function ours(name: string): string[] {
  return listNamespaces().filter((ns) => ns.startsWith(`eips-${name}-`));
}

/** Processes whose command line names the sandbox's directory (its emulators and daemons). */
function processesOf(name: string): number[] {
  const dir = join(SANDBOX_DIR, name);
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir) && processAlive(Number(pid));
      } catch {
        return false;
      }
    })
    .map(Number);
}

function expectGone(name: string): void {
  expect(ours(name)).toEqual([]);
  expect(existsSync(join(SANDBOX_DIR, name))).toBe(false);
  expect(processesOf(name)).toEqual([]);
}

async function guestAddresses(name: string, guest: string, dev: string): Promise<string[]> {
  const result = await execa('ip', ['-n', `eips-${name}-g-${guest}`, '-j', '-4', 'address', 'show', 'dev', dev], {
    reject: false,
  });
  if (result.exitCode !== 0) return [];
  return (JSON.parse(result.stdout) as { addr_info: { local: string }[] }[]).flatMap((l) =>
    l.addr_info.map((a) => a.local),
  );
}

/** The host's own network state, the parts a sandbox must never touch; counters and lifetimes left out. */
async function hostNetwork(): Promise<string> {
  const parts = [];
  for (const argv of [
    ['ip', '-br', 'address'],
    ['ip', 'rule'],
    ['ip', 'route', 'show', 'table', 'all'],
    ['nft', 'list', 'ruleset'],
  ]) {
    const result = await execa(argv[0] as string, argv.slice(1), { reject: false });
    parts.push(`$ ${argv.join(' ')}\n${result.stdout.replace(/counter packets \d+ bytes \d+/g, 'counter')}`);
  }
  // The bridge keys exist while br_netfilter is loaded; the sandbox's router sets them in its own namespace.
  for (const key of [
    'net/ipv4/ip_forward',
    'net/ipv4/conf/all/rp_filter',
    'net/ipv4/conf/default/rp_filter',
    'net/ipv4/conf/all/arp_ignore',
    'net/bridge/bridge-nf-call-iptables',
  ]) {
    parts.push(
      `${key} = ${existsSync(`/proc/sys/${key}`) ? readFileSync(`/proc/sys/${key}`, 'utf8').trim() : 'absent'}`,
    );
  }
  return parts.join('\n');
}

describe.skipIf(!labOk)(`eip-agent sandbox (${agentUnderTest()})`, () => {
  let hostBefore: string;

  beforeAll(async () => {
    // Leftovers of a run of this file that was killed: its sandboxes are named after its pid.
    for (const ns of listNamespaces()) {
      const pid = /^eips-s(\d+)[a-z]-/.exec(ns)?.[1];
      if (pid !== undefined && !processAlive(Number(pid)))
        await sandbox(['down', '--name', ns.split('-')[1] as string]);
    }
    hostBefore = await hostNetwork();
  });

  afterAll(async () => {
    for (const name of names) await sandbox(['down', '--name', name]);
    // Only when every sandbox was made and removed: the host's network is as it was.
    expect(await hostNetwork()).toBe(hostBefore);
  });

  it('up on the built-in example: apply in the guest, every EIP answers from the internet host, verified; down removes it all', async () => {
    const name = newName();
    const up = await sandbox(['up', '--name', name, '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const report = JSON.parse(up.stdout) as Report;
    expect(report.eips.map((e) => [e.publicIp, e.privateIp, e.nic, e.answered])).toEqual([
      ['203.0.113.10', '10.0.0.2', 'eth0', true],
      ['203.0.113.11', '10.0.0.3', 'eth0', true],
      ['203.0.113.12', '10.0.0.7', 'eth1', true],
      ['203.0.113.13', '10.0.0.8', 'eth1', true],
    ]);
    expect(report.verify).toMatchObject([{ guest: 'a', exitCode: 0 }]);
    expect(await guestAddresses(name, 'a', 'eth1')).toEqual(['10.0.0.7', '10.0.0.8']);
    expect(up.stderr).toContain(`sandbox ${name} is up`);

    const text = await sandbox(['status', '--name', name]);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^203\.0\.113\.13 +10\.0\.0\.8 +eth1 +20:90:6f:f7:93:2e +NAT +yes +[\d.]+ ms$/m);
    expect(text.stdout).toContain('Every EIP answered and every guest verified.');

    // The snapshot a user would send: taken in the guest through the VPC's metadata service, it plans as the live tree.
    const ns = `eips-${name}-g-a`;
    const root = join(SANDBOX_DIR, name, 'root-a');
    const config = join(SANDBOX_DIR, name, 'config.json');
    const dump = await execa('ip', ['netns', 'exec', ns, ...agentCommand(), 'metadata', 'dump'], { reject: false });
    expect(dump.exitCode, dump.stderr).toBe(0);
    const snapshot = join(tmpdir(), `${name}-dump.json`);
    writeFileSync(snapshot, dump.stdout);
    const live = await execa(
      'ip',
      ['netns', 'exec', ns, ...agentCommand(), 'plan', '--root', root, '--config', config],
      { reject: false },
    );
    const replayed = await execa(
      'ip',
      ['netns', 'exec', ns, ...agentCommand(), 'plan', '--root', root, '--config', config, '--metadata-file', snapshot],
      { reject: false },
    );
    rmSync(snapshot);
    expect([replayed.exitCode, replayed.stdout]).toEqual([live.exitCode, live.stdout]);
    expect(live.exitCode).toBe(0);
    expect(live.stdout).toContain('In sync: nothing to do.');

    const again = await sandbox(['up', '--name', name]);
    expect(again).toMatchObject({
      exitCode: 1,
      stderr: `eip-agent: config: sandbox ${name} exists: eip-agent sandbox down --name ${name} removes it (or give another --name)\n`,
    });

    const down = await sandbox(['down', '--name', name]);
    expect(down.exitCode, down.stderr).toBe(0);
    expect(down.stdout).toBe(`Removed sandbox ${name}: 3 namespaces and ${join(SANDBOX_DIR, name)}.\n`);
    expectGone(name);
  });

  it('up on a 3-NIC tree with direct and NAT EIPs from --metadata-file: every EIP answers, verified', async () => {
    const name = newName();
    const file = join(tmpdir(), `${name}.json`);
    writeFileSync(file, JSON.stringify(threeNicTree()));
    try {
      const up = await sandbox(['up', '--name', name, '--metadata-file', file, '--json']);
      expect(up.exitCode, up.stderr).toBe(0);
      const report = JSON.parse(up.stdout) as Report;
      expect(report.eips.map((e) => [e.publicIp, e.privateIp, e.nic, e.mode, e.answered])).toEqual([
        ['203.0.113.20', '10.1.3.4', 'eth0', 'NAT', true],
        ['203.0.113.21', '10.1.16.5', 'eth1', 'direct', true],
      ]);
      expect(report.verify).toMatchObject([{ guest: 'a', exitCode: 0 }]);
      expect(await guestAddresses(name, 'a', 'eth2')).toEqual(['172.16.5.10']);
    } finally {
      rmSync(file, { force: true });
      await sandbox(['down', '--name', name]);
    }
    expectGone(name);
  });

  it.each([
    [
      'an EIP that is not an address',
      (t: Record<string, unknown>) => void (t['public-ipv4'] = '203.0.113.10; reboot'),
      'eip-agent: validation: network/interfaces/macs/52:54:00:8A:7A:64/local-ipv4s/10.0.0.2/public-ipv4: "203.0.113.10; reboot" is not a valid IPv4 address\n',
    ],
    [
      'a gateway outside the subnet',
      (t: Record<string, unknown>) => void (t.gateway = '10.9.0.1'),
      'eip-agent: validation: network/interfaces/macs/52:54:00:8A:7A:64/local-ipv4s/10.0.0.2/gateway: "10.9.0.1" is outside subnet 10.0.0.0/24\n',
    ],
  ])('a broken tree (%s) is refused in one line, and nothing is made', async (_what, breakIt, message) => {
    const name = newName();
    const tree = JSON.parse(readFileSync(join(process.cwd(), 'examples/manual.json'), 'utf8'));
    breakIt(tree.network.interfaces.macs['52:54:00:8A:7A:64']['local-ipv4s']['10.0.0.2']);
    const file = join(tmpdir(), `${name}.json`);
    writeFileSync(file, JSON.stringify(tree));
    try {
      const up = await sandbox(['up', '--name', name, '--metadata-file', file]);
      expect(up).toEqual({ exitCode: 1, stdout: '', stderr: message });
    } finally {
      rmSync(file, { force: true });
    }
    expectGone(name);
  });

  it(
    'each of the manual operations, made by sandbox change, is converged by the daemons that sandbox run started',
    { timeout: 600_000 },
    async () => {
      const name = newName();
      const up = await sandbox(['up', '--name', name, '--server-b']);
      expect(up.exitCode, up.stderr + up.stdout).toBe(0);
      const run = await sandbox(['run', '--name', name]);
      expect(run.exitCode, run.stderr + run.stdout).toBe(0);
      expect(run.stdout).toMatch(/Guest a: daemon started \(pid \d+\)/);
      expect(run.stdout).toMatch(/Guest b: daemon started \(pid \d+\)/);

      const change = async (args: string[]): Promise<Report> => {
        const result = await sandbox(['change', '--name', name, '--json', ...args]);
        expect(result.exitCode, `${args.join(' ')}: ${result.stderr}`).toBe(0);
        expect(result.stderr).toMatch(/the daemon of guest .+ converged in [\d.]+ s/);
        return JSON.parse(result.stdout) as Report;
      };
      const row = (report: Report, eip: string) => report.eips.find((e) => e.publicIp === eip);

      let report = await change(['--op', 'unbind-eip', '--ip', '10.0.0.3']);
      expect(row(report, '203.0.113.11')).toBeUndefined();
      report = await change(['--op', 'bind-eip', '--ip', '10.0.0.3', '--eip', '198.51.100.50']);
      expect(row(report, '198.51.100.50')).toMatchObject({ privateIp: '10.0.0.3', nic: 'eth0', answered: true });

      report = await change(['--op', 'add-ip', '--ip', '10.0.0.9', '--nic', 'eth1']);
      expect(await guestAddresses(name, 'a', 'eth1')).toContain('10.0.0.9');
      report = await change(['--op', 'remove-ip', '--ip', '10.0.0.9']);
      expect(await guestAddresses(name, 'a', 'eth1')).not.toContain('10.0.0.9');

      report = await change(['--op', 'attach-eni', '--ip', '10.0.0.30', '--mac', '52:54:00:ee:00:30']);
      expect(await guestAddresses(name, 'a', 'eth2')).toEqual(['10.0.0.30']);
      report = await change(['--op', 'detach-eni', '--nic', 'eth2']);
      expect(await guestAddresses(name, 'a', 'eth2')).toEqual([]);

      // The manual's migration: 10.0.0.8 and its EIP leave server A for server B, and the EIP answers from B.
      report = await change(['--op', 'move-ip', '--ip', '10.0.0.8']);
      expect(row(report, '203.0.113.13')).toMatchObject({
        guest: 'b',
        privateIp: '10.0.0.8',
        nic: 'eth0',
        answered: true,
      });
      expect(await guestAddresses(name, 'a', 'eth1')).toEqual(['10.0.0.7']);
      expect(await guestAddresses(name, 'b', 'eth0')).toEqual(['10.0.0.20', '10.0.0.8']);
      expect(report.ok).toBe(true);

      const refused = await sandbox(['change', '--name', name, '--op', 'detach-eni', '--nic', 'eth0']);
      expect(refused).toMatchObject({
        exitCode: 1,
        stderr: 'eip-agent: config: --nic eth0: the primary NIC (eth0) of guest a; a cloud cannot detach it\n',
      });

      const down = await sandbox(['down', '--name', name]);
      expect(down.exitCode, down.stderr).toBe(0);
      expectGone(name);
    },
  );

  it('down after a kill -9 of up removes every namespace, process and file it had made', async () => {
    const name = newName();
    const [file, ...rest] = agentCommand();
    const up = spawn(file as string, [...rest, 'sandbox', 'up', '--name', name], { stdio: 'ignore' });
    // Killed once the VPC exists and the metadata emulator runs, before the apply is through.
    for (let i = 0; i < 400 && !(ours(name).length >= 3 && processesOf(name).length > 0); i++) await delay(25);
    up.kill('SIGKILL');
    await new Promise((resolve) => up.once('close', resolve));
    expect(ours(name).length).toBeGreaterThan(0);
    expect(processesOf(name).length).toBeGreaterThan(0);

    const down = await sandbox(['down', '--name', name]);
    expect(down.exitCode, down.stderr).toBe(0);
    expectGone(name);
  });
});
