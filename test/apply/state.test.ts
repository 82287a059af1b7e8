import { beforeEach, describe, expect, it } from 'vitest';
import { emptyState, loadState, saveState, statePath } from '../../src/apply/state.js';
import { createTestHost, vol } from '../helpers/host.js';

describe('statePath', () => {
  it.each<[string, NodeJS.Platform, string, Record<string, string>, string]>([
    ['a Linux guest', 'linux', '/', {}, '/var/lib/eip-agent/state.json'],
    ['a Linux guest under --root', 'linux', '/srv/guest', {}, '/srv/guest/var/lib/eip-agent/state.json'],
    ['a Windows guest', 'win32', '/', { ProgramData: 'D:\\ProgramData' }, 'D:\\ProgramData\\eip-agent\\state.json'],
    ['a Windows guest without ProgramData in the environment', 'win32', '/', {}, 'C:\\ProgramData\\eip-agent\\state.json'],
    ['a preview of a Windows guest under --root', 'win32', '/tmp/preview', {}, '/tmp/preview/var/lib/eip-agent/state.json'],
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

  it.each(['{not json', '{"version": 2, "owned": {}}', '[]'])('refuses a corrupt state file (%s) rather than forget what it owns', async (text) => {
    vol.fromJSON({ '/var/lib/eip-agent/state.json': text });
    await expect(loadState(createTestHost(), '/')).rejects.toThrow(/^state file \/var\/lib\/eip-agent\/state.json is unreadable \(.+\): move it aside to start over; the agent will then own nothing it added before$/);
  });
});
