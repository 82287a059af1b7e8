import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hexDigest } from '../../src/host/digest.js';

const BUN = join(
  dirname(createRequire(import.meta.url).resolve('@oven/bun-linux-x64-baseline/package.json')),
  'bin',
  'bun',
);
const TEXTS = ['', 'eth1 10.0.1.5/24', 'é 203.0.113.7 ✓'];

describe('hexDigest', () => {
  it("gives node:crypto's hex digest on Node", () => {
    for (const algorithm of ['sha1', 'sha256'] as const)
      for (const text of TEXTS)
        expect(hexDigest(algorithm, text)).toBe(createHash(algorithm).update(text).digest('hex'));
  });

  it("gives the same digests on Bun, through Bun's native hasher (model hashes and keyfile UUIDs agree across runtimes)", async () => {
    const module = fileURLToPath(new URL('../../src/host/digest.ts', import.meta.url));
    const script = `import { hexDigest } from ${JSON.stringify(module)};
      const texts = ${JSON.stringify(TEXTS)};
      console.log(JSON.stringify(['sha1', 'sha256'].map((a) => texts.map((t) => hexDigest(a, t)))));`;
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(BUN, ['-e', script], { encoding: 'utf8' }, (error, out, err) =>
        error ? reject(new Error(`${error.message}: ${err}`)) : resolve(out),
      ),
    );
    const expected = (['sha1', 'sha256'] as const).map((a) => TEXTS.map((t) => createHash(a).update(t).digest('hex')));
    expect(JSON.parse(stdout)).toEqual(expected);
  });
});
