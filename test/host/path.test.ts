import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DAEMON_JIT_POLICY, garbageCollector, reluctantJit, withSystemPath } from '../../src/host/node.js';

const BUN = join(
  dirname(createRequire(import.meta.url).resolve('@oven/bun-linux-x64-baseline/package.json')),
  'bin',
  'bun',
);

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

describe('reluctantJit', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('scales the JIT policy through Bun.unsafe on Bun, and does nothing on Node', () => {
    const setJITPolicy = vi.fn();
    vi.stubGlobal('Bun', { unsafe: { setJITPolicy } });
    expect(reluctantJit()).toBe(true);
    expect(setJITPolicy).toHaveBeenCalledWith(DAEMON_JIT_POLICY);
    vi.stubGlobal('Bun', undefined);
    expect(reluctantJit()).toBe(false);
    vi.stubGlobal('Bun', { unsafe: {} });
    expect(reluctantJit()).toBe(false);
  });

  it("keeps a function that a real Bun's optimizing tier would compile in the lower tiers", async () => {
    const module = fileURLToPath(new URL('../../src/host/node.ts', import.meta.url));
    // DFG compiles of a function called 5,000 times: JavaScriptCore's count tells whether the thresholds moved.
    const script = (reluctant: boolean) => `import { numberOfDFGCompiles } from 'bun:jsc';
      import { reluctantJit } from ${JSON.stringify(module)};
      const applied = ${reluctant} ? reluctantJit() : false;
      function hot(x) { return (x * 3) ^ (x >> 1); }
      let sum = 0;
      for (let i = 0; i < 5000; i++) sum += hot(i);
      console.log(JSON.stringify({ applied, compiles: numberOfDFGCompiles(hot), sum }));`;
    const run = (reluctant: boolean) =>
      new Promise<{ applied: boolean; compiles: number }>((resolve, reject) =>
        // The default policy, whatever the environment says (the service's unit turns the DFG tier off).
        execFile(
          BUN,
          ['-e', script(reluctant)],
          { encoding: 'utf8', env: { PATH: process.env.PATH } },
          (error, out, err) => (error ? reject(new Error(`${error.message}: ${err}`)) : resolve(JSON.parse(out))),
        ),
      );
    const [normal, reluctant] = await Promise.all([run(false), run(true)]);
    expect(normal).toMatchObject({ applied: false, compiles: 1 });
    expect(reluctant).toMatchObject({ applied: true, compiles: 0 });
  });
});
