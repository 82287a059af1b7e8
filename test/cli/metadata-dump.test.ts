// `eip-agent metadata dump`: the live tree as the agent reads it, in the --metadata-file format, so a plan of the
// snapshot is the plan of the VM. Against the metadata emulator on port 0.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, main } from '../../src/cli/main.js';
import { startMetadataEmulator, type MetadataEmulator } from '../../src/sandbox/emulator.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { createTestHost, vol } from '../helpers/host.js';
import { freshKernel, guestFiles } from '../helpers/manual-guest.js';
import { manualTree, threeNicTree } from '../lab/fixtures.js';

let emulator: MetadataEmulator;
beforeAll(async () => {
  emulator = await startMetadataEmulator({ tree: manualTree() });
});
afterAll(async () => {
  await emulator.close();
});
beforeEach(() => {
  vol.reset();
  vol.fromJSON(guestFiles());
  emulator.setTree(manualTree());
  emulator.setFaults({});
});

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const kernel = new FakeKernel(freshKernel());
  const host = createTestHost({ run: kernel.run, isPrivileged: () => true });
  let out = '';
  let err = '';
  const code = await main(argv, host, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('metadata dump', () => {
  it.each([
    ['the manual example', manualTree],
    ['three NICs with a direct EIP, listed out of order', threeNicTree],
  ])('%s: the plan of the snapshot is the plan of the endpoint, line for line', async (_name, tree) => {
    emulator.setTree(tree());
    const dump = await cli(['metadata', 'dump', '--metadata-url', emulator.url, '--out', '/srv/vm.json']);
    expect(dump, dump.err).toMatchObject({ code: EXIT.ok, out: '' });
    expect(dump.err).toBe(`eip-agent: wrote the metadata of ${emulator.url} to /srv/vm.json\n`);
    const live = await cli(['plan', '--metadata-url', emulator.url]);
    const replayed = await cli(['plan', '--metadata-file', '/srv/vm.json']);
    expect(replayed).toEqual(live);
    expect(live.code).toBe(EXIT.pending);
  });

  it('prints the tree without --out: only the keys the agent reads, as nested JSON', async () => {
    const run = await cli(['metadata', 'dump', '--metadata-url', emulator.url]);
    expect(run.code).toBe(EXIT.ok);
    const tree = JSON.parse(run.out) as { mac: string; placement?: { zone?: string } };
    expect(tree.mac).toBe('52:54:00:8A:7A:64');
    // The endpoint serves the zone; the agent never asks for it, so the snapshot does not hold it.
    expect(tree.placement?.zone).toBeUndefined();
  });

  it.each<[string, () => void, string[], string]>([
    [
      'a file that exists',
      () => vol.writeFileSync('/srv/vm.json', '{}'),
      ['--out', '/srv/vm.json'],
      'eip-agent: config: --out /srv/vm.json exists: refusing to overwrite it; give a new path\n',
    ],
    [
      'an endpoint that keeps answering 503',
      () => emulator.setFaults({ status: { code: 503 } }),
      ['--out', '/srv/new.json'],
      '',
    ],
    [
      'a serve option',
      () => undefined,
      ['--port', '9'],
      'eip-agent: config: --port is for metadata serve, not metadata dump\n',
    ],
  ])('refuses %s: one line, exit 1, nothing written', async (_name, setup, extra, message) => {
    vol.mkdirSync('/srv', { recursive: true });
    setup();
    const before = vol.toJSON();
    const run = await cli(['metadata', 'dump', '--metadata-url', emulator.url, ...extra]);
    expect(run.code).toBe(EXIT.error);
    expect(run.out).toBe('');
    expect(run.err.split('\n')).toHaveLength(2);
    if (message !== '') expect(run.err).toBe(message);
    else expect(run.err).toMatch(/^eip-agent: metadata: .*503/);
    expect(vol.toJSON()).toEqual(before);
  });
});
