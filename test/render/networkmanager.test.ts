import { describe, expect, it } from 'vitest';
import type { MetaTree } from '../../src/metadata/tree.js';
import { renderCentos } from '../../src/targets/linux/centos/render.js';
import { AUTOCONNECT_PRIORITY, renderNetworkManager } from '../../src/targets/linux/networkmanager/render.js';
import type { RoutingMode } from '../../src/render/types.js';
import { manualTree } from '../lab/fixtures.js';
import { GOLDEN_FIXTURES as fixtures, ROUTING_MODES as modes, renderInputs } from './inputs.js';

function options(tree: MetaTree, routing: RoutingMode) {
  const { model, options: opts } = renderInputs(tree, routing);
  return { model, opts };
}

describe('NetworkManager renderer golden files', () => {
  for (const [name, tree] of fixtures) {
    for (const routing of modes) {
      it(`${name} / ${routing}: one 0600 keyfile per NIC and the sysctl drop-in`, async () => {
        const { model, opts } = options(tree(), routing);
        const { files } = renderNetworkManager(model, opts);
        expect(files.map((f) => [f.path, f.mode])).toEqual([
          ...model.nics.map((_, i) => [`/etc/NetworkManager/system-connections/eip-agent-eth${i}.nmconnection`, 0o600]),
          ['/etc/sysctl.d/99-zz-eip-agent.conf', 0o644],
        ]);
        for (const file of files)
          await expect(file.content).toMatchFileSnapshot(`__golden__/${name}/networkmanager/${routing}${file.path}`);
      });
    }
  }
});

describe('NetworkManager profiles', () => {
  it("want the same live state as the centos target, but a tabled NIC's addresses without a prefix route in main", () => {
    const { model, opts } = options(manualTree(), 'policy');
    const nm = renderNetworkManager(model, opts).runtime;
    const centos = renderCentos(model, opts).runtime;
    expect({ ...nm, addresses: nm.addresses.map(({ noPrefixRoute: _n, ...a }) => a) }).toEqual(centos);
    expect(nm.addresses.map((a) => `${a.ifname} ${a.ip} ${a.noPrefixRoute === true}`)).toEqual([
      'eth0 10.0.0.2 false',
      'eth0 10.0.0.3 false',
      'eth1 10.0.0.7 true',
      'eth1 10.0.0.8 true',
    ]);
    const rp = options(manualTree(), 'rp-filter');
    expect(renderNetworkManager(rp.model, rp.opts).runtime.addresses.some((a) => a.noPrefixRoute === true)).toBe(false);
  });

  it("are bound by MAC, win over a cloud image's eth0 profile at boot, and keep their UUID across renders", () => {
    const { model, opts } = options(manualTree(), 'policy');
    const [eth0 = '', eth1 = ''] = renderNetworkManager(model, opts).files.map((f) => f.content);
    expect(eth0).toContain('\nmac-address=52:54:00:8A:7A:64\n');
    expect(eth1).toContain('\nmac-address=20:90:6F:F7:93:2E\n');
    expect(AUTOCONNECT_PRIORITY).toBeGreaterThan(120);
    expect(eth0).toContain(`\nautoconnect-priority=${AUTOCONNECT_PRIORITY}\n`);
    const uuid = (text: string) => /^uuid=(.*)$/m.exec(text)?.[1];
    expect(uuid(eth0)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(uuid(eth0)).not.toBe(uuid(eth1));
    expect(uuid(renderNetworkManager(model, opts).files[0]!.content)).toBe(uuid(eth0));
  });

  it('refuse to write a line a device name could inject into', () => {
    const { model, opts } = options(manualTree(), 'policy');
    const names = new Map(opts.names);
    names.set(model.nics[1]!.macLower, 'eth1\nid=evil');
    expect(() => renderNetworkManager(model, { ...opts, names })).toThrow(
      'render: /etc/NetworkManager/system-connections/eip-agent-eth1\nid=evil.nmconnection:5: refusing to write id twice in [connection]',
    );
    names.set(model.nics[1]!.macLower, 'eth1;x=[y]');
    expect(() => renderNetworkManager(model, { ...opts, names })).toThrow(
      /refusing to write unsafe line "id=eip-agent-eth1;x=\[y\]"/,
    );
  });
});
