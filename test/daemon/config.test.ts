import { beforeEach, describe, expect, it } from 'vitest';
import { defaultConfigPath, parseConfig } from '../../src/config/file.js';
import { DEFAULT_INTERVAL_SECONDS, resolveRunSettings, type RunArgs } from '../../src/config/run.js';
import { createTestHost, vol } from '../helpers/host.js';

const PATH = '/etc/eip-agent/config.json';

describe('parseConfig: the daemon keys', () => {
  it('accepts them and lower-cases the MACs', () => {
    expect(
      parseConfig(PATH, {
        interval: 30,
        ignoreNics: ['20:90:6F:F7:93:2E', '52:54:00:ab:cd:01'],
        metricsTextfile: '/var/lib/node_exporter/textfile_collector/eip_agent.prom',
        metricsPort: 9464,
      }),
    ).toEqual({
      interval: 30,
      ignoreNics: ['20:90:6f:f7:93:2e', '52:54:00:ab:cd:01'],
      metricsTextfile: '/var/lib/node_exporter/textfile_collector/eip_agent.prom',
      metricsPort: 9464,
    });
    expect(parseConfig(PATH, { ignoreNics: [] })).toEqual({ ignoreNics: [] });
  });

  it.each([
    [{ interval: 0 }, 'interval: 0 is not an integer from 1 to 3600'],
    [{ interval: 2.5 }, 'interval: 2.5 is not an integer from 1 to 3600'],
    [{ interval: '5' }, 'interval: "5" is not an integer from 1 to 3600'],
    [{ interval: 3601 }, 'interval: 3601 is not an integer from 1 to 3600'],
    [{ metricsPort: 0 }, 'metricsPort: 0 is not an integer from 1 to 65535'],
    [{ metricsPort: 65536 }, 'metricsPort: 65536 is not an integer from 1 to 65535'],
    [{ ignoreNics: '20:90:6f:f7:93:2e' }, 'ignoreNics: "20:90:6f:f7:93:2e" is not a list of MAC addresses'],
    [{ ignoreNics: ['20:90:6f:f7:93'] }, 'ignoreNics: "20:90:6f:f7:93" is not a MAC address like 52:54:00:8a:7a:64'],
    [
      { ignoreNics: ['20-90-6f-f7-93-2e'] },
      'ignoreNics: "20-90-6f-f7-93-2e" is not a MAC address like 52:54:00:8a:7a:64',
    ],
    [{ ignoreNics: [42] }, 'ignoreNics: 42 is not a MAC address like 52:54:00:8a:7a:64'],
    [{ ignoreNics: ['20:90:6f:f7:93:2e', '20:90:6F:F7:93:2E'] }, 'ignoreNics: 20:90:6f:f7:93:2e is listed twice'],
    [
      { metricsTextfile: 'eip_agent.prom' },
      'metricsTextfile: "eip_agent.prom" is not an absolute path ending in .prom',
    ],
    [
      { metricsTextfile: '/var/lib/node_exporter/eip_agent.txt' },
      'metricsTextfile: "/var/lib/node_exporter/eip_agent.txt" is not an absolute path ending in .prom',
    ],
    [
      { metricsTextfile: '/var/lib/../etc/x.prom' },
      'metricsTextfile: "/var/lib/../etc/x.prom" is not an absolute path ending in .prom',
    ],
    [
      { metricsTextfile: '/var/lib/my metrics/x.prom' },
      'metricsTextfile: "/var/lib/my metrics/x.prom" is not an absolute path ending in .prom',
    ],
    [{ metricsTextfile: '/.prom' }, 'metricsTextfile: "/.prom" is not an absolute path ending in .prom'],
  ])('%j: %s', (data, message) => {
    expect(() => parseConfig(PATH, data)).toThrow(`${PATH}: ${message}`);
  });
});

describe('resolveRunSettings', () => {
  const args = (extra: Partial<RunArgs> = {}): RunArgs => ({ root: '/', config: PATH, ...extra });
  beforeEach(() => vol.reset());

  it('defaults: every 5 s, no NIC ignored, no metrics', async () => {
    vol.fromJSON({ [PATH]: '{}' });
    const settings = await resolveRunSettings(createTestHost(), args());
    expect(settings.daemon.intervalMs).toBe(DEFAULT_INTERVAL_SECONDS * 1000);
    expect(settings.daemon.ignoreNics).toEqual([]);
    expect(settings.daemon.metricsTextfile).toBeUndefined();
    expect(settings.metricsPort).toBeUndefined();
    expect(settings.daemon.pipeline).toMatchObject({ routing: 'policy', runtime: true, root: '/' });
  });

  it('reads the file, and --interval wins over it', async () => {
    vol.fromJSON({
      [PATH]: JSON.stringify({
        interval: 30,
        ignoreNics: ['20:90:6F:F7:93:2E'],
        metricsTextfile: '/m/a.prom',
        metricsPort: 9464,
        routing: 'rp-filter',
      }),
    });
    const fromFile = await resolveRunSettings(createTestHost(), args());
    expect(fromFile.daemon).toMatchObject({
      intervalMs: 30_000,
      ignoreNics: ['20:90:6f:f7:93:2e'],
      metricsTextfile: '/m/a.prom',
    });
    expect(fromFile.daemon.pipeline.routing).toBe('rp-filter');
    expect(fromFile.metricsPort).toBe(9464);
    expect((await resolveRunSettings(createTestHost(), args({ interval: 2.5 }))).daemon.intervalMs).toBe(2500);
  });

  it.each([0, 0.5, 3601, Number.NaN])('refuses --interval %d', async (interval) => {
    vol.fromJSON({ [PATH]: '{}' });
    await expect(resolveRunSettings(createTestHost(), args({ interval }))).rejects.toThrow(
      `--interval ${interval}: expected seconds from 1 to 3600`,
    );
  });
});

describe('default paths on Windows', () => {
  it("the config file is in the agent's directory under %ProgramData%, never C:\\etc", () => {
    expect(defaultConfigPath({ platform: 'win32', env: { ProgramData: 'D:\\ProgramData' } })).toBe(
      'D:\\ProgramData\\eip-agent\\config.json',
    );
    expect(defaultConfigPath({ platform: 'linux', env: {} })).toBe('/etc/eip-agent/config.json');
  });
});
