// An Ubuntu-like guest under --root (cloud-init's netplan file for eth0, netplan installed): the default target picks
// netplan, apply writes the agent's netplan file and networkd drop-ins and runs the real `netplan generate --root-dir`,
// a second apply changes nothing, a metadata change regenerates, and a netplan that refuses the result undoes it all.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, main } from '../../src/cli/main.js';
import { createNodeHost } from '../../src/host/node.js';
import { manualTree, manualTreeWithout8 } from '../lab/fixtures.js';
import { cloudInitNetplan, requireNetplan } from '../helpers/netplan.js';

const netplanOk = requireNetplan();

let dir: string;
let root: string;
let meta: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'eip-netplan-cli-'));
  root = join(dir, 'root');
  meta = join(dir, 'meta.json');
  writeFileSync(meta, JSON.stringify(manualTree()));
  mkdirSync(join(root, 'etc/netplan'), { recursive: true });
  mkdirSync(join(root, 'usr/sbin'), { recursive: true });
  // netplan is installed (what the target looks for under --root; the real one on PATH does the work).
  writeFileSync(join(root, 'usr/sbin/netplan'), '');
  writeFileSync(join(root, 'etc/netplan/50-cloud-init.yaml'), cloudInitNetplan('52:54:00:8a:7a:64'), { mode: 0o600 });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main([...args, '--metadata-file', meta, '--root', root], createNodeHost(), {
    out: (t) => (out += t),
    err: (t) => (err += t),
  });
  return { code, out, err };
}

const generated = (name: string) => join(root, 'run/systemd/network', name);

describe.skipIf(!netplanOk)('target netplan under --root, with the real netplan generate', () => {
  it("the default target chooses netplan; apply writes the agent's files, netplan generates eth0 (cloud-init's DHCP + the secondary address) and eth1, and the drop-ins extend them", async () => {
    const plan = await cli('plan', '--no-runtime');
    expect(plan.code, plan.err).toBe(EXIT.pending);
    expect(plan.out).toContain('Plan for target netplan,');
    expect(plan.out).toContain('/etc/netplan/90-eip-agent.yaml');
    const run = await cli('apply', '--no-runtime');
    expect(run.code, run.err).toBe(EXIT.ok);
    expect(statSync(join(root, 'etc/netplan/90-eip-agent.yaml')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(root, 'etc/netplan/50-cloud-init.yaml'), 'utf8')).toBe(
      cloudInitNetplan('52:54:00:8a:7a:64'),
    );
    const eth0 = readFileSync(generated('10-netplan-eth0.network'), 'utf8');
    expect(eth0).toContain('DHCP=ipv4');
    // The lease gives eth0 its primary 10.0.0.2; the agent adds only the secondary address, as a /32.
    expect(eth0.match(/^Address=.*$/gm)).toEqual(['Address=10.0.0.3/32']);
    expect(readFileSync(generated('10-netplan-eth1.network'), 'utf8')).toContain('Table=10001');
    expect(
      readFileSync(join(root, 'etc/systemd/network/10-netplan-eth1.network.d/90-eip-agent.conf'), 'utf8'),
    ).toContain('Address=10.0.0.8/32\nAddPrefixRoute=no\n');
    expect(
      readFileSync(join(root, 'etc/systemd/network/10-netplan-eth0.network.d/90-eip-agent.conf'), 'utf8'),
    ).toContain('SuppressPrefixLength=0');
    expect(existsSync(join(root, 'etc/systemd/network/10-netplan-eth1.network.d/90-eip-agent.conf'))).toBe(true);

    // Nothing changed: nothing written, netplan not run again (its output keeps its time).
    const before = statSync(generated('10-netplan-eth1.network')).mtimeMs;
    const again = await cli('apply', '--no-runtime');
    expect(again.code, again.err).toBe(EXIT.ok);
    expect(statSync(generated('10-netplan-eth1.network')).mtimeMs).toBe(before);

    // The metadata drops 10.0.0.8: the file and networkd's view of it follow.
    writeFileSync(meta, JSON.stringify(manualTreeWithout8()));
    const changed = await cli('apply', '--no-runtime');
    expect(changed.code, changed.err).toBe(EXIT.ok);
    expect(
      readFileSync(join(root, 'etc/systemd/network/10-netplan-eth1.network.d/90-eip-agent.conf'), 'utf8'),
    ).not.toContain('10.0.0.8');
  });

  it("when netplan refuses the guest's configuration with the agent's file in it, apply says so in one line and puts every file back", async () => {
    // A key netplan does not know: the agent reads the file, netplan generate rejects it.
    writeFileSync(
      join(root, 'etc/netplan/50-cloud-init.yaml'),
      cloudInitNetplan('52:54:00:8a:7a:64').replace('dhcp4: true', 'dhcp4: true\n            frobnicate: 1'),
      { mode: 0o600 },
    );
    const run = await cli('apply', '--no-runtime');
    expect(run.code).toBe(EXIT.error);
    expect(run.err).toMatch(
      /^eip-agent: .*`netplan generate --root-dir \S+` exited 1: .*systemd-networkd would not use the new files at boot; changes undone\n$/,
    );
    expect(existsSync(join(root, 'etc/netplan/90-eip-agent.yaml'))).toBe(false);
    expect(existsSync(join(root, 'etc/systemd/network/10-netplan-eth1.network.d/90-eip-agent.conf'))).toBe(false);
  });

  it("refuses where netplan is not installed, or where the guest's netplan hands the NICs to NetworkManager", async () => {
    rmSync(join(root, 'usr/sbin/netplan'));
    const missing = await cli('apply', '--no-runtime', '--target', 'netplan');
    expect(missing.code).toBe(EXIT.error);
    expect(missing.err).toMatch(
      /^eip-agent: apply: target netplan writes \/etc\/netplan\/90-eip-agent.yaml, and netplan is not installed \(\/usr\/sbin\/netplan\): .*nothing was written\n$/,
    );
    writeFileSync(join(root, 'usr/sbin/netplan'), '');
    writeFileSync(join(root, 'etc/netplan/01-desktop.yaml'), 'network:\n  version: 2\n  renderer: NetworkManager\n');
    const nm = await cli('apply', '--no-runtime', '--target', 'netplan');
    expect(nm.code).toBe(EXIT.error);
    expect(nm.err).toContain(
      '/etc/netplan/01-desktop.yaml hands the NICs to NetworkManager (renderer: NetworkManager): use --target networkmanager; nothing was written',
    );
    expect(existsSync(join(root, 'etc/netplan/90-eip-agent.yaml'))).toBe(false);
  });
});
