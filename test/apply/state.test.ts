import { beforeEach, describe, expect, it } from 'vitest';
import { emptyState, loadState, saveState, statePath } from '../../src/plan/record.js';
import { createTestHost, vol } from '../helpers/host.js';

describe('statePath', () => {
  it.each<[string, NodeJS.Platform, string, Record<string, string>, string]>([
    ['a Linux guest', 'linux', '/', {}, '/var/lib/eip-agent/state.json'],
    ['a Linux guest under --root', 'linux', '/srv/guest', {}, '/srv/guest/var/lib/eip-agent/state.json'],
    ['a Windows guest', 'win32', '/', { ProgramData: 'D:\\ProgramData' }, 'D:\\ProgramData\\eip-agent\\state.json'],
    [
      'a Windows guest without ProgramData in the environment',
      'win32',
      '/',
      {},
      'C:\\ProgramData\\eip-agent\\state.json',
    ],
    [
      'a preview of a Windows guest under --root',
      'win32',
      '/tmp/preview',
      {},
      '/tmp/preview/var/lib/eip-agent/state.json',
    ],
  ])('%s', (_name, platform, root, env, expected) => {
    expect(statePath(createTestHost({ platform, env }), root)).toBe(expected);
  });
});

describe('loadState / saveState', () => {
  beforeEach(() => vol.reset());

  it('reads a missing file as a fresh state, and reads back what it saved', async () => {
    const host = createTestHost();
    expect(await loadState(host, '/')).toEqual(emptyState());
    const state = { ...emptyState(), primaryIfname: 'eth0' };
    await saveState(host, '/', state);
    expect(await loadState(host, '/')).toEqual(state);
  });

  const AFTER = ': nothing was changed; move it aside to start over (the agent will then own nothing it added before)';
  it.each([
    ['{not json', 'is not valid JSON'],
    [
      '{"version": 1, "owned": {"addresses": [], "rules": [], "routes": [], "files": []}, "secret": "x" ',
      'is not valid JSON',
    ],
    ['{"version": 2, "owned": {}}', 'has a wrong or missing "version"'],
    ['[]', 'is not a JSON object'],
    [
      '{"version": 1, "owned": {"addresses": "10.0.0.3/24", "rules": [], "routes": [], "files": []}}',
      'has a wrong or missing "owned"',
    ],
    [
      '{"version": 1, "owned": {"addresses": [], "rules": [{"from": "10.0.0.7", "table": "10001", "priority": 30001}], "routes": [], "files": []}}',
      'has a wrong or missing "owned"',
    ],
    [
      '{"version": 1, "owned": {"addresses": [], "rules": [], "routes": [], "files": []}, "lastSnapshot": {"at": "x", "files": {}, "runtimeUndo": ["address del 10.0.0.3/24 dev eth0\\nlink set eth0 down"], "sysctls": {}, "ownedBefore": {"addresses": [], "rules": [], "routes": [], "files": []}}}',
      'has a wrong or missing "lastSnapshot"',
    ],
    [
      '{"version": 1, "owned": {"addresses": [], "rules": [], "routes": [], "files": []}, "counters": {"applies": "many"}}',
      'has a wrong or missing "counters"',
    ],
  ])('refuses a corrupt state file (%s) rather than forget what it owns, without quoting it', async (text, why) => {
    vol.fromJSON({ '/var/lib/eip-agent/state.json': text });
    const error = (await loadState(createTestHost(), '/').catch((e: unknown) => e)) as Error;
    expect(error.message).toBe(`state file /var/lib/eip-agent/state.json ${why}${AFTER}`);
  });
});
