// The netplan renderer, and netplan itself (Debian's netplan.io) generating systemd-networkd's files from what it
// renders, beside a cloud-init file like an Ubuntu cloud image's: golden files of both.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { MetaTree } from '../../src/metadata/tree.js';
import { renderCentos } from '../../src/targets/linux/centos/render.js';
import type { NetplanDefinition } from '../../src/targets/linux/netplan/render.js';
import { definitionFor, dropInPath, NETPLAN_FILE, renderNetplan } from '../../src/targets/linux/netplan/render.js';
import type { RoutingMode } from '../../src/render/types.js';
import { cloudInitNetplan, requireNetplan } from '../helpers/netplan.js';
import { manualTree } from '../lab/fixtures.js';
import { GOLDEN_FIXTURES as fixtures, ROUTING_MODES as modes, renderInputs } from './inputs.js';

const CLOUD_INIT_FILE = '/etc/netplan/50-cloud-init.yaml';

function render(tree: MetaTree, routing: RoutingMode, definitions?: NetplanDefinition[]) {
  const { model, options } = renderInputs(tree, routing);
  return { model, ...renderNetplan(model, { ...options, ...(definitions !== undefined ? { definitions } : {}) }) };
}

const netplanOk = requireNetplan();

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** Runs `netplan generate --root-dir` on the files, returns what it wrote under /run (path -> content). */
function generate(files: { path: string; mode: number; content: string }[]): Map<string, string> {
  const root = mkdtempSync(join(tmpdir(), 'eip-netplan-'));
  roots.push(root);
  for (const file of files) {
    mkdirSync(join(root, dirname(file.path)), { recursive: true });
    writeFileSync(join(root, file.path), file.content, { mode: file.mode });
  }
  execFileSync('netplan', ['generate', '--root-dir', root], { stdio: ['ignore', 'ignore', 'pipe'] });
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(root, dir))) {
      const path = `${dir}/${name}`;
      const kind = lstatSync(join(root, path));
      if (kind.isDirectory()) walk(path);
      else if (kind.isSymbolicLink()) continue;
      else out.set(path, readFileSync(join(root, path), 'utf8'));
    }
  };
  walk('/run');
  return out;
}

describe('netplan renderer golden files', () => {
  for (const [name, tree] of fixtures) {
    for (const routing of modes) {
      it(`${name} / ${routing}: the netplan file (0600), a networkd drop-in per NIC with rules, the sysctl drop-in`, async () => {
        const { files } = render(tree(), routing);
        expect(files[0]).toMatchObject({ path: NETPLAN_FILE, mode: 0o600 });
        for (const file of files.slice(1)) expect(file.mode).toBe(0o644);
        for (const file of files)
          await expect(file.content).toMatchFileSnapshot(`__golden__/${name}/netplan/${routing}${file.path}`);
      });
    }
  }

  it("manual / policy beside cloud-init's eth0: eth0 keeps cloud-init's id and DHCP, the agent adds its addresses under that id", async () => {
    const definitions = [{ id: 'eth0', file: CLOUD_INIT_FILE, mac: '52:54:00:8a:7a:64', dhcp4: true }];
    const { files } = render(manualTree(), 'policy', definitions);
    for (const file of files)
      await expect(file.content).toMatchFileSnapshot(`__golden__/manual/netplan/cloud-init${file.path}`);
    const yaml = files[0]!.content;
    expect(yaml).toMatch(/\n {4}eth0:\n {6}addresses:\n/); // no match: of its own, no gateway: cloud-init's definition has them
    expect(yaml).toMatch(/\n {4}eth1:\n {6}match:\n {8}macaddress: "20:90:6f:f7:93:2e"\n/);
  });
});

describe.skipIf(!netplanOk)('netplan generate reads what the renderer writes', () => {
  for (const [name, tree] of fixtures) {
    for (const routing of modes) {
      it(`${name} / ${routing}: beside cloud-init's eth0, netplan generates one networkd file per NIC, and each drop-in sits beside the file it extends`, async () => {
        const { model, files, runtime } = render(tree(), routing, [
          { id: 'eth0', file: CLOUD_INIT_FILE, mac: model0Mac(tree), dhcp4: true },
        ]);
        // Live, the lease's primary address and default route are checked, never added by the agent.
        expect(runtime.addresses.filter((a) => a.lease === true).map((a) => a.ip)).toEqual([
          model.nics[0]!.addresses[0]!.ip,
        ]);
        expect(
          runtime.addresses
            .filter((a) => a.ifname === 'eth0' && a.lease !== true)
            .map((a) => `${a.ip}/${a.prefixLength}`),
        ).toEqual(model.nics[0]!.addresses.slice(1).map((a) => `${a.ip}/32`));
        expect(runtime.mainDefault.lease).toBe(true);
        const generated = generate([
          { path: CLOUD_INIT_FILE, mode: 0o600, content: cloudInitNetplan(model.nics[0]!.mac.toLowerCase()) },
          ...files,
        ]);
        const networkFiles = [...generated.keys()]
          .filter((p) => p.startsWith('/run/systemd/network/') && p.endsWith('.network'))
          .sort();
        expect(networkFiles).toEqual(model.nics.map((_, i) => `/run/systemd/network/10-netplan-eth${i}.network`));
        for (const file of files.filter((f) => f.path.includes('.network.d/'))) {
          const extended = `/run/systemd/network/${file.path.split('/').at(-2)!.replace(/\.d$/, '')}`;
          expect(generated.has(extended), `${file.path} extends ${extended}`).toBe(true);
        }
        for (const path of networkFiles)
          await expect(generated.get(path)).toMatchFileSnapshot(
            `__golden__/${name}/netplan-generated/${routing}${path}`,
          );
        // eth0: cloud-init's DHCP and the agent's other addresses in one file, each a /32; the primary is the lease's
        // alone (with a static copy of it, or a static address in its subnet, networkd fails the NIC at its restart).
        const eth0 = generated.get('/run/systemd/network/10-netplan-eth0.network')!;
        expect(eth0).toContain('DHCP=ipv4');
        expect(eth0.match(/^Address=.*$/gm)).toEqual(
          model.nics[0]!.addresses.slice(1).map((a) => `Address=${a.ip}/32`),
        );
      });
    }
  }
});

function model0Mac(tree: () => MetaTree): string {
  return renderInputs(tree(), 'policy').model.nics[0]!.macLower;
}

describe('netplan renderer', () => {
  it("wants the same live state as the centos target, but a NIC's other addresses as /32s and a tabled NIC's without a prefix route in main (in its drop-in, not the YAML)", () => {
    const { model, options } = renderInputs(manualTree(), 'policy');
    const { runtime, files } = renderNetplan(model, options);
    const centos = renderCentos(model, options).runtime;
    expect({ ...runtime, addresses: [] }).toEqual({ ...centos, addresses: [] });
    expect(runtime.addresses.map((a) => `${a.ifname} ${a.ip}/${a.prefixLength} ${a.noPrefixRoute === true}`)).toEqual([
      'eth0 10.0.0.2/24 false',
      'eth0 10.0.0.3/32 false',
      'eth1 10.0.0.7/24 true',
      'eth1 10.0.0.8/32 true',
    ]);
    expect(centos.addresses.map((a) => `${a.ifname} ${a.ip}`)).toEqual(
      runtime.addresses.map((a) => `${a.ifname} ${a.ip}`),
    );
    expect(files.find((f) => f.path === dropInPath('eth1'))!.content).toContain(
      '\n[Address]\nAddress=10.0.0.8/32\nAddPrefixRoute=no\n',
    );
    expect(files[0]!.content).not.toContain('10.0.0.8');
    const rp = renderInputs(manualTree(), 'rp-filter');
    expect(renderNetplan(rp.model, rp.options).runtime.addresses.some((a) => a.noPrefixRoute === true)).toBe(false);
  });

  it("puts the main rule with the primary NIC and every secondary NIC's rules in its own drop-in", () => {
    const { files } = render(manualTree(), 'policy');
    const eth0 = files.find((f) => f.path === dropInPath('eth0'))!.content;
    expect(eth0).toContain('[RoutingPolicyRule]\nTable=254\nPriority=30000\nSuppressPrefixLength=0\n');
    const eth1 = files.find((f) => f.path === dropInPath('eth1'))!.content;
    expect(eth1).toContain('[RoutingPolicyRule]\nFirewallMark=0x1000000/0xf000000\nTable=10001\nPriority=30001\n');
    expect(eth1).toContain('[RoutingPolicyRule]\nFrom=10.0.0.8\nTo=10.0.0.0/24\nTable=10001\nPriority=29001\n');
    const rp = render(manualTree(), 'rp-filter');
    expect(
      rp.files
        .filter((f) => f.path.includes('.network.d/'))
        .map((f) => f.content)
        .join(''),
    ).not.toContain('[RoutingPolicyRule]');
  });

  it('finds the definition networkd will use for a NIC: by MAC, by name glob, by id without match; the first id of several', () => {
    const defs: NetplanDefinition[] = [
      { id: 'ens5', file: 'a', name: 'ens5', dhcp4: true },
      { id: 'byname', file: 'a', name: 'eth*', dhcp4: false },
      { id: 'bymac', file: 'a', mac: '52:54:00:8a:7a:64', dhcp4: true },
    ];
    expect(definitionFor(defs, '52:54:00:8a:7a:64', 'eth0')?.id).toBe('bymac'); // both match: 10-netplan-bymac sorts first
    expect(definitionFor(defs, '52:54:00:8a:7a:64', 'ens9')?.id).toBe('bymac');
    expect(definitionFor(defs, '02:00:00:00:00:01', 'ens5')?.id).toBe('ens5');
    expect(definitionFor(defs, '02:00:00:00:00:01', 'ens6')).toBeUndefined();
  });

  it('warns when the guest gives a secondary NIC DHCP, and names its own definition apart from a guest id it does not match', () => {
    const { model, options } = renderInputs(manualTree(), 'policy');
    const dhcp = renderNetplan(model, {
      ...options,
      definitions: [{ id: 'eth1', file: '/etc/netplan/60-user.yaml', mac: model.nics[1]!.macLower, dhcp4: true }],
    });
    expect(dhcp.warnings).toEqual([
      "eth1: /etc/netplan/60-user.yaml gives it DHCP (eth1: dhcp4: true): its lease's default route in main competes with the primary NIC's; take it out of that file",
    ]);
    const other = renderNetplan(model, {
      ...options,
      definitions: [{ id: 'eth1', file: '/etc/netplan/60-user.yaml', mac: '02:00:00:00:00:09', dhcp4: false }],
    });
    expect(other.files[0]!.content).toContain('\n    eip-agent-eth1:\n');
    expect(other.files.map((f) => f.path)).toContain(dropInPath('eip-agent-eth1'));
  });

  it('refuses a device name or a guest id that would change the YAML or a path', () => {
    const { model, options } = renderInputs(manualTree(), 'policy');
    const names = new Map(options.names);
    names.set(model.nics[1]!.macLower, 'eth1:\n      dhcp4: true\n    x');
    expect(() => renderNetplan(model, { ...options, names })).toThrow(/^render: /);
    expect(() =>
      renderNetplan(model, { ...options, definitions: [{ id: '../../x', file: 'f', name: 'eth0', dhcp4: true }] }),
    ).toThrow('render: netplan id "../../x" in f: not a name the agent writes into a path');
  });
});
