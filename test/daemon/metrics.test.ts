import { afterEach, describe, expect, it } from 'vitest';
import { emptyState, type AgentState } from '../../src/plan/record.js';
import { escapeLabel, formatMetrics, type MetricsInput } from '../../src/daemon/metrics.js';
import { liveLinuxNics, readNicCounters } from '../../src/targets/linux/live-nics.js';
import { getTarget } from '../../src/targets/index.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { METRICS_CONTENT_TYPE, startMetricsServer, type MetricsServer } from '../../src/daemon/metrics-server.js';
import { buildModel } from '../../src/model/index.js';
import { createTestHost, vol } from '../helpers/host.js';
import { MAC0, MAC1, convergedLive } from '../helpers/manual-guest.js';
import { manualTree, threeNicTree } from '../lab/fixtures.js';

function state(): AgentState {
  return {
    ...emptyState(),
    lastApply: { at: '2025-01-01T00:00:05.000Z', modelHash: 'a'.repeat(64), ok: true },
    lastError: { at: '2024-12-31T23:59:00.000Z', message: 'metadata: mac: HTTP 503' },
    counters: { applies: 3, verifyFailures: 1, rollbacks: 1, metadataErrors: 7 },
  };
}

function input(): MetricsInput {
  const live = convergedLive();
  // eth1 lost 10.0.0.8: its series must say 0.
  live.links[2]!.addresses = [{ ip: '10.0.0.7', prefixLength: 24 }];
  const counters = new Map([
    ['eth0', { rxBytes: '123456789012', txBytes: '98765', rxPackets: '1000', txPackets: '900' }],
    ['eth1', { rxBytes: '0', txBytes: '64', rxPackets: '0', txPackets: '1' }],
  ]);
  return {
    model: buildModel(manualTree()),
    state: state(),
    nics: live.links.map((l) => {
      const c = counters.get(l.ifname);
      return { ...l, ...(c !== undefined ? { counters: c } : {}) };
    }),
  };
}

/** Checks the exposition format line by line: HELP then TYPE once per family, samples only of a declared family. */
function parseExposition(text: string): Map<string, { type: string; samples: string[] }> {
  expect(text.endsWith('\n')).toBe(true);
  const families = new Map<string, { type: string; samples: string[] }>();
  let current: string | undefined;
  const lines = text.slice(0, -1).split('\n');
  for (const [i, line] of lines.entries()) {
    const help = /^# HELP ([a-z_:][a-z0-9_:]*) \S.*$/.exec(line);
    const type = /^# TYPE ([a-z_:][a-z0-9_:]*) (counter|gauge)$/.exec(line);
    const sample = /^([a-z_:][a-z0-9_:]*)(\{([a-z_]+="(?:[^"\\\n]|\\["\\n])*",?)*\})? (-?\d+(\.\d+)?)$/.exec(line);
    if (help) {
      expect(families.has(help[1]!), `family ${help[1]} declared twice`).toBe(false);
      expect(lines[i + 1], `TYPE after HELP of ${help[1]}`).toMatch(new RegExp(`^# TYPE ${help[1]} `));
      current = help[1];
    } else if (type) {
      expect(type[1]).toBe(current);
      families.set(type[1]!, { type: type[2]!, samples: [] });
    } else if (sample) {
      expect(sample[1], line).toBe(current);
      families.get(sample[1]!)!.samples.push(line);
    } else {
      throw new Error(`not an exposition line: ${JSON.stringify(line)}`);
    }
  }
  for (const [name, f] of families) if (f.type === 'counter') expect(name.endsWith('_total'), name).toBe(true);
  return families;
}

describe('formatMetrics', () => {
  it('matches the golden file for the manual guest', async () => {
    await expect(formatMetrics(input())).toMatchFileSnapshot('__golden__/metrics-manual.prom');
  });

  it('says how often the current metadata failed verification and when it is tried again; nothing while none waits', () => {
    const waiting = input();
    waiting.state = {
      ...waiting.state,
      failedModelHash: 'f'.repeat(64),
      failedAttempts: 3,
      retryAfter: '2025-01-01T00:02:00.000Z',
    };
    const families = parseExposition(formatMetrics(waiting));
    expect(families.get('eip_agent_failed_model_attempts')?.samples).toEqual(['eip_agent_failed_model_attempts 3']);
    expect(families.get('eip_agent_failed_model_retry_timestamp_seconds')?.samples).toEqual([
      `eip_agent_failed_model_retry_timestamp_seconds ${Date.parse('2025-01-01T00:02:00.000Z') / 1000}`,
    ]);
    expect(parseExposition(formatMetrics(input())).get('eip_agent_failed_model_attempts')?.samples).toEqual([]);
  });

  it('is valid exposition text: HELP and TYPE for every family, counters end in _total', () => {
    const families = parseExposition(formatMetrics(input()));
    expect(families.get('eip_agent_address_configured')?.samples).toContain(
      'eip_agent_address_configured{interface="eth1",mac="20:90:6f:f7:93:2e",address="10.0.0.8",kind="private",eip="203.0.113.13",eip_mode="NAT"} 0',
    );
    expect(families.get('eip_agent_nic_receive_bytes_total')?.samples).toEqual([
      'eip_agent_nic_receive_bytes_total{interface="eth0",mac="52:54:00:8a:7a:64"} 123456789012',
      'eip_agent_nic_receive_bytes_total{interface="eth1",mac="20:90:6f:f7:93:2e"} 0',
    ]);
  });

  it('reports a direct EIP as its own address, and nothing it cannot know', () => {
    const model = buildModel(threeNicTree());
    const text = formatMetrics({ model, state: emptyState(), nics: [] });
    parseExposition(text);
    expect(text).toContain(
      'eip_agent_address_configured{interface="",mac="52:54:00:ab:cd:01",address="203.0.113.21",kind="direct-eip",eip="203.0.113.21",eip_mode="direct"} 0\n',
    );
    // Never applied: no timestamp series rather than a misleading 0.
    expect(text).not.toMatch(/^eip_agent_last_apply_timestamp_seconds /m);
    expect(text).not.toMatch(/^eip_agent_last_successful_apply_timestamp_seconds /m);
    expect(text).toMatch(/^eip_agent_applies_total 0$/m);
    expect(text).not.toMatch(/^eip_agent_nic_/m);
  });

  it('keeps the last successful apply time out when the last apply failed', () => {
    const failed = {
      ...input(),
      state: { ...state(), lastApply: { at: '2025-01-01T00:00:05.000Z', modelHash: 'b', ok: false } },
    };
    const text = formatMetrics(failed);
    expect(text).toMatch(/^eip_agent_last_apply_success 0$/m);
    expect(text).toMatch(/^eip_agent_last_apply_timestamp_seconds 1735689605$/m);
    expect(text).not.toMatch(/^eip_agent_last_successful_apply_timestamp_seconds /m);
  });
});

describe('escapeLabel', () => {
  it.each([
    ['eth0', 'eth0'],
    ['a"b', 'a\\"b'],
    ['a\\b', 'a\\\\b'],
    ['a\nb', 'a\\nb'],
    ['\\"\n', '\\\\\\"\\n'],
  ])('%j -> %j', (value, escaped) => {
    expect(escapeLabel(value)).toBe(escaped);
  });
});

/** A fresh volume whose /sys holds eth0's four counters, 5 to 8; returns their directory. */
function eth0Statistics(): string {
  vol.reset();
  const dir = '/sys/class/net/eth0/statistics';
  vol.fromJSON({
    [`${dir}/rx_bytes`]: '5\n',
    [`${dir}/tx_bytes`]: '6\n',
    [`${dir}/rx_packets`]: '7\n',
    [`${dir}/tx_packets`]: '8\n',
  });
  return dir;
}

describe('readNicCounters', () => {
  it('reads the four statistics files; a missing or non-numeric one gives undefined', async () => {
    const dir = eth0Statistics();
    const host = createTestHost();
    expect(await readNicCounters(host, 'eth0')).toEqual({ rxBytes: '5', txBytes: '6', rxPackets: '7', txPackets: '8' });
    vol.writeFileSync(`${dir}/tx_packets`, 'x\n');
    expect(await readNicCounters(host, 'eth0')).toBeUndefined();
    expect(await readNicCounters(host, 'eth9')).toBeUndefined();
  });
});

describe('liveLinuxNics', () => {
  it('keeps the links with the MACs asked for, each with its addresses and, where /sys has them, its counters', async () => {
    eth0Statistics();
    const kernel = new FakeKernel(convergedLive());
    const host = createTestHost({ run: kernel.run });
    const nics = await liveLinuxNics(host, [MAC0, MAC1]);
    expect(nics.map((n) => [n.ifname, n.mac, n.addresses.map((a) => a.ip), n.counters])).toEqual([
      ['eth0', MAC0, ['10.0.0.2', '10.0.0.3'], { rxBytes: '5', txBytes: '6', rxPackets: '7', txPackets: '8' }],
      ['eth1', MAC1, ['10.0.0.7', '10.0.0.8'], undefined],
    ]);
    expect(await liveLinuxNics(host, [])).toEqual([]);
  });

  it('is what the Windows target does not do: one line, no process', async () => {
    const windows = await getTarget('windows');
    const host = createTestHost({ run: () => Promise.reject(new Error('no process may run')) });
    await expect(windows.liveNics(host, [MAC0])).rejects.toThrow(
      'the metrics read the live NICs with `ip`; target windows is not supported yet',
    );
  });
});

describe('startMetricsServer', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves the text computed at scrape time on 127.0.0.1, 404 elsewhere, 500 with the reason when rendering fails', async () => {
    let scrapes = 0;
    let fail = false;
    server = await startMetricsServer(0, async () => {
      scrapes += 1;
      if (fail) throw new Error('ip not found');
      return `eip_agent_applies_total ${scrapes}\n`;
    });
    const url = `http://127.0.0.1:${server.port}`;
    const first = await fetch(`${url}/metrics`);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe(METRICS_CONTENT_TYPE);
    expect(await first.text()).toBe('eip_agent_applies_total 1\n');
    expect(await (await fetch(`${url}/metrics`)).text()).toBe('eip_agent_applies_total 2\n');
    expect((await fetch(`${url}/`)).status).toBe(404);
    fail = true;
    const broken = await fetch(`${url}/metrics`);
    expect(broken.status).toBe(500);
    expect(await broken.text()).toBe('eip-agent: metrics: ip not found\n');
  });

  it('fails to start on a port in use', async () => {
    server = await startMetricsServer(0, async () => '');
    await expect(startMetricsServer(server.port, async () => '')).rejects.toThrow(/EADDRINUSE/);
  });
});
