import { beforeEach, describe, expect, it } from 'vitest';
import { EXIT, main } from '../../src/cli/main.js';
import type { StatusReport } from '../../src/plan/status-report.js';
import type { Host } from '../../src/host/host.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { createTestHost, vol } from '../helpers/host.js';
import { freshKernel, guestFiles, MAC1 } from '../helpers/manual-guest.js';

const META = ['--metadata-file', '/meta.json'];
const NOW = Date.parse('2025-01-01T00:00:00Z');

interface Run {
  code: number;
  out: string;
  err: string;
}

function guest(kernel = new FakeKernel(freshKernel())): { kernel: FakeKernel; cli(argv: string[]): Promise<Run> } {
  const host: Host = createTestHost({ run: kernel.run, isPrivileged: () => true, now: () => NOW });
  return {
    kernel,
    async cli(argv) {
      let out = '';
      let err = '';
      const code = await main(argv, host, { out: (t) => (out += t), err: (t) => (err += t) });
      return { code, out, err };
    },
  };
}

beforeEach(() => {
  vol.reset();
  vol.fromJSON(guestFiles());
});

describe('eip-agent status', () => {
  it('before the first apply: nothing owned, drift on every secondary address, exit 2', async () => {
    const g = guest();
    const status = await g.cli(['status', ...META]);
    expect(status.code, status.err).toBe(EXIT.pending);
    await expect(status.out).toMatchFileSnapshot('__golden__/status-fresh.txt');
  });

  it('after apply: in sync, owned, the last apply shown, exit 0', async () => {
    const g = guest();
    expect((await g.cli(['apply', ...META])).code).toBe(EXIT.ok);
    const status = await g.cli(['status', ...META]);
    expect(status.code, status.out + status.err).toBe(EXIT.ok);
    expect(status.err).toBe('');
    await expect(status.out).toMatchFileSnapshot('__golden__/status-in-sync.txt');
  });

  it("names the drift when an address and its rule were taken away behind the agent's back", async () => {
    const g = guest();
    expect((await g.cli(['apply', ...META])).code).toBe(EXIT.ok);
    const eth1 = g.kernel.state.links.find((l) => l.ifname === 'eth1')!;
    eth1.addresses = eth1.addresses.filter((a) => a.ip !== '10.0.0.8');
    g.kernel.state.rules = g.kernel.state.rules.filter((r) => r.from !== '10.0.0.8/32');
    const status = await g.cli(['status', ...META]);
    expect(status.code).toBe(EXIT.pending);
    await expect(status.out).toMatchFileSnapshot('__golden__/status-drift.txt');

    const json = await g.cli(['status', '--json', ...META]);
    expect(json.code).toBe(EXIT.pending);
    const report = JSON.parse(json.out) as StatusReport;
    expect(report.inSync).toBe(false);
    expect(report.addresses.find((a) => a.address === '10.0.0.8/24')).toEqual({
      interface: 'eth1',
      mac: MAC1,
      address: '10.0.0.8/24',
      eip: '203.0.113.13',
      mode: 'NAT',
      owned: true,
      inSync: false,
      drift: [
        '10.0.0.8/24 not on eth1',
        'no rule from 10.0.0.8/32 to 10.0.0.0/24 lookup 10001',
        'no rule from 10.0.0.8/32 to table 10001',
      ],
    });
    expect(report.addresses.filter((a) => a.inSync).map((a) => a.address)).toEqual([
      '10.0.0.2/24',
      '10.0.0.3/24',
      '10.0.0.7/24',
    ]);
    expect(report.lastApply).toEqual({
      at: '2025-01-01T00:00:00.000Z',
      modelHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      ok: true,
    });
    expect(report.runtime).toEqual([
      'add 10.0.0.8/24 to eth1',
      'rule from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
      'rule from 10.0.0.8/32 table 10001 priority 30001',
    ]);
  });

  it('after a rolled-back apply: when the service tries the model again, and how often it failed', async () => {
    const g = guest();
    g.kernel.pingOk = false;
    expect((await g.cli(['apply', ...META])).code).toBe(EXIT.notVerified);
    expect((await g.cli(['apply', ...META])).code).toBe(EXIT.notVerified);
    const status = await g.cli(['status', ...META]);
    expect(status.out).toMatch(
      /^Retry: {8}model [0-9a-f]{12} failed verification 2 times in a row and was rolled back; the service tries it again after 2025-01-01T00:01:00\.000Z \(the wait doubles with each failure, at most 15 min\), or at once when the metadata changes; `eip-agent apply` retries it now \(stop the service first\)$/m,
    );
    const report = JSON.parse((await g.cli(['status', '--json', ...META])).out) as StatusReport;
    expect([report.failedAttempts, report.retryAfter]).toEqual([2, '2025-01-01T00:01:00.000Z']);
  });

  it('shows a NIC that is not attached, and writes or changes nothing', async () => {
    const kernel = new FakeKernel(freshKernel());
    kernel.state.links = kernel.state.links.filter((l) => l.ifname !== 'eth1');
    const g = guest(kernel);
    const before = vol.toJSON();
    const status = await g.cli(['status', '--json', ...META]);
    expect(status.code).toBe(EXIT.pending);
    const report = JSON.parse(status.out) as StatusReport;
    expect(report.addresses.filter((a) => a.mac === MAC1).map((a) => [a.interface, a.drift])).toEqual([
      [null, ['NIC not attached']],
      [null, ['NIC not attached']],
    ]);
    expect(vol.toJSON()).toEqual(before);
    expect(
      kernel.calls.every(
        (c) => (c.argv[0] === 'ip' && c.argv[1] === '-j') || c.argv.join(' ') === 'nft list table inet eip-agent',
      ),
    ).toBe(true);
  });

  it('leaves out the NICs the config ignores', async () => {
    vol.writeFileSync('/cfg.json', JSON.stringify({ ignoreNics: [MAC1] }));
    const g = guest();
    const report = JSON.parse(
      (await g.cli(['status', '--json', '--config', '/cfg.json', ...META])).out,
    ) as StatusReport;
    expect(report.addresses.map((a) => a.address)).toEqual(['10.0.0.2/24', '10.0.0.3/24']);
  });
});
