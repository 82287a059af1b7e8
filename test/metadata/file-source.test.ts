import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MetadataError } from '../../src/errors.js';
import { fileMetadataSource } from '../../src/metadata/file-source.js';
import { httpMetadataSource } from '../../src/metadata/http-source.js';
import { startMetadataEmulator, type MetadataEmulator } from '../../src/sandbox/emulator.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { createTestHost, vol } from '../helpers/host.js';
import { IP8, NIC1, edit, manualTree, manualWithExtras } from './fixture.js';

const host = createTestHost();
const FILE = '/etc/eip-agent/metadata.json';

function seed(content: string): void {
  vol.fromJSON({ [FILE]: content });
}

beforeEach(() => vol.reset());

describe('fileMetadataSource', () => {
  let emulator: MetadataEmulator | undefined;
  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
  });

  it.each([
    ['the manual example with extra keys', manualWithExtras()],
    [
      'leaves with trailing newlines and optional keys missing',
      edit(edit(manualWithExtras(), 'instance-id', 'ins-1\n\n'), `${IP8}public-ipv4`, undefined),
    ],
  ])('gives the same tree as HTTP for %s', async (_name, tree) => {
    emulator = await startMetadataEmulator({ tree });
    seed(JSON.stringify(tree));
    const fromHttp = await httpMetadataSource(host, { baseUrl: emulator.url }).read();
    const fromFile = await fileMetadataSource(host, FILE).read();
    expect(fromFile).toEqual(fromHttp);
    expect(JSON.stringify(fromFile)).toBe(JSON.stringify(fromHttp));
  });

  it('returns the manual example as is (it holds only keys the agent reads)', async () => {
    seed(JSON.stringify(manualTree()));
    const source = fileMetadataSource(host, FILE);
    expect(source.describe).toBe(FILE);
    await expect(source.read()).resolves.toEqual(manualTree());
  });

  it('reports a missing file', async () => {
    await expect(fileMetadataSource(host, FILE).read()).rejects.toThrow(
      new MetadataError(`metadata file ${FILE}: not found`),
    );
  });

  it('reports bad JSON with its position, never quoting the file', async () => {
    seed('{"mac": secret-token');
    const error = (await fileMetadataSource(host, FILE)
      .read()
      .catch((e: unknown) => e)) as Error;
    expect(error.message).toBe('metadata file /etc/eip-agent/metadata.json: invalid JSON');
  });

  it('refuses a tree nested 10,000 levels deep in one line', async () => {
    seed(`${'{"a":'.repeat(10_000)}"x"${'}'.repeat(10_000)}`);
    const error = (await fileMetadataSource(host, FILE)
      .read()
      .catch((e: unknown) => e)) as Error;
    expect(error.message).toBe('a/a/a/...: nested more than 16 levels deep (in /etc/eip-agent/metadata.json)');
  });

  const shape: [string, unknown, string][] = [
    [
      'a number leaf',
      edit(manualTree(), `${NIC1}primary-local-ipv4`, 7 as unknown as string),
      `${NIC1}primary-local-ipv4: expected a string or an object, got number`,
    ],
    [
      'a null leaf',
      edit(manualTree(), 'mac', null as unknown as string),
      'mac: expected a string or an object, got null',
    ],
    [
      'an array',
      edit(manualTree(), 'network/interfaces/macs', [] as unknown as MetaTree),
      'network/interfaces/macs: expected a string or an object, got array',
    ],
    [
      'a boolean in an unread key',
      edit(manualTree(), 'hostname', true as unknown as string),
      'hostname: expected a string or an object, got boolean',
    ],
    ['a top-level array', [], '(top level): expected an object, got array'],
    ['a top-level string', 'x', '(top level): expected an object, got string'],
  ];
  it.each(shape)('refuses %s, naming the JSON path', async (_name, data, problem) => {
    seed(JSON.stringify(data));
    await expect(fileMetadataSource(host, FILE).read()).rejects.toThrow(new MetadataError(`${problem} (in ${FILE})`));
  });

  it.each([
    ['a missing required leaf', edit(manualTree(), 'mac', undefined), `mac: not found in ${FILE}`],
    [
      'a missing required listing',
      edit(manualTree(), `${NIC1}local-ipv4s`, undefined),
      `${NIC1}local-ipv4s/: not found in ${FILE}`,
    ],
    [
      'an object where a leaf belongs',
      edit(manualTree(), `${IP8}gateway`, {}),
      `${IP8}gateway: expected a string, got an object (in ${FILE})`,
    ],
    [
      'a string where a listing belongs',
      edit(manualTree(), 'network/interfaces/macs', 'x'),
      `network/interfaces/macs/: expected an object, got a string (in ${FILE})`,
    ],
    [
      'a leaf among the MACs',
      edit(manualTree(), 'network/interfaces/macs/x', 'y'),
      `network/interfaces/macs/: entry "x" is not a directory (in ${FILE})`,
    ],
    [
      'an empty key among the MACs',
      edit(manualTree(), 'network/interfaces/macs//', {}),
      `network/interfaces/macs/: bad entry "/" (in ${FILE})`,
    ],
    [
      'a NUL in a leaf',
      edit(manualTree(), `${IP8}gateway`, '10.0.0.1\u0000'),
      `${IP8}gateway: value contains a NUL character (in ${FILE})`,
    ],
  ])('refuses %s', async (_name, tree, message) => {
    seed(JSON.stringify(tree));
    await expect(fileMetadataSource(host, FILE).read()).rejects.toThrow(new MetadataError(message));
  });
});
