import { afterEach, describe, expect, it, vi } from 'vitest';
import { garbageCollector, withSystemPath } from '../../src/host/node.js';

describe('withSystemPath', () => {
  it.each<[string, string | undefined, string]>([
    ['no PATH (env -i)', undefined, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    ['an empty PATH', '', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    ["cron's PATH (no sbin)", '/usr/bin:/bin', '/usr/bin:/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin'],
    [
      "the user's own directories first",
      '/opt/tools:/usr/sbin',
      '/opt/tools:/usr/sbin:/usr/local/sbin:/usr/local/bin:/usr/bin:/sbin:/bin',
    ],
    [
      'a complete PATH unchanged',
      '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    ],
  ])('%s', (_name, path, expected) => {
    expect(withSystemPath(path)).toBe(expected);
  });
});

describe('garbageCollector', () => {
  afterEach(() => vi.unstubAllGlobals());

  it("is Bun's full collection on Bun (the release executable), then its shrink of the heap", () => {
    const calls: string[] = [];
    const gc = vi.fn((force: boolean) => calls.push(`gc ${force}`));
    const shrink = vi.fn(() => calls.push('shrink'));
    vi.stubGlobal('Bun', { gc, shrink });
    const collect = garbageCollector();
    expect(calls).toEqual([]);
    collect?.();
    expect(calls).toEqual(['gc true', 'shrink']);
  });

  it('collects on a Bun without shrink', () => {
    const gc = vi.fn();
    vi.stubGlobal('Bun', { gc });
    garbageCollector()?.();
    expect(gc).toHaveBeenCalledWith(true);
  });

  it("is node's gc when node exposes it (--expose-gc), and nothing otherwise", () => {
    vi.stubGlobal('Bun', undefined);
    vi.stubGlobal('gc', undefined);
    expect(garbageCollector()).toBeUndefined();
    const gc = vi.fn();
    vi.stubGlobal('gc', gc);
    garbageCollector()?.();
    expect(gc).toHaveBeenCalledTimes(1);
  });
});
