import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createNodeHost } from '../../src/host/node.js';
import { RUN_CASES, WATCH_CASES, outcome, watchOutcome } from './run-cases.js';

/** The Bun the release executable is built from (a development dependency). */
const BUN = join(
  dirname(createRequire(import.meta.url).resolve('@oven/bun-linux-x64-baseline/package.json')),
  'bin',
  'bun',
);

const host = createNodeHost();

describe('the node host runner', () => {
  it('passes argv as is (no shell) and returns stdout, stderr and the exit code', async () => {
    await expect(host.run(['printf', '%s|%s', 'a b', '$(echo no)'])).resolves.toEqual({
      exitCode: 0,
      stdout: 'a b|$(echo no)',
      stderr: '',
    });
    await expect(host.run(['sh', '-c', 'echo out; echo err >&2; exit 3'])).resolves.toEqual({
      exitCode: 3,
      stdout: 'out\n',
      stderr: 'err\n',
    });
  });

  it('feeds the input to stdin, and closes stdin when there is none', async () => {
    await expect(host.run(['cat'], { input: 'address add 10.0.0.3/24 dev eth0\n' })).resolves.toMatchObject({
      stdout: 'address add 10.0.0.3/24 dev eth0\n',
    });
    await expect(host.run(['cat'])).resolves.toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('rejects with ENOENT when the program is missing, so callers can say what to install', async () => {
    await expect(host.run(['eip-agent-no-such-program'])).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('kills a program that outlives its timeout', async () => {
    await expect(host.run(['sleep', '5'], { timeoutMs: 100 })).rejects.toThrow('sleep timed out after 100 ms');
  });

  it('survives a program that exits without reading its input', async () => {
    await expect(host.run(['true'], { input: 'x\n'.repeat(1 << 20) })).resolves.toMatchObject({ exitCode: 0 });
  });

  it('answers every case exactly as the Bun.spawn runner and watch of the release executable do on a real Bun', async () => {
    const node: Record<string, unknown> = {};
    for (const c of RUN_CASES) node[c.name] = await outcome(host.run, c);
    const watched: Record<string, unknown> = {};
    for (const c of WATCH_CASES) watched[c.name] = await watchOutcome(host.watch, c);
    const driver = fileURLToPath(new URL('./bun-run-driver.ts', import.meta.url));
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(BUN, [driver], { encoding: 'utf8', maxBuffer: 1 << 20 }, (error, out, err) =>
        error ? reject(new Error(`${error.message}: ${err}`)) : resolve(out),
      );
    });
    expect(JSON.parse(stdout)).toEqual({ run: node, watch: watched });
    // Lines as the monitor reads them: whole, in order, a character split across writes joined, nothing of stderr.
    expect(watched).toEqual({
      'lines across writes, CRLF, a last line without a newline': ['ab', 'c', 'd'],
      'a character split across writes': ['ét'],
      'stderr ignored': ['out'],
      'a missing program': [],
      stopped: ['first'],
    });
    expect(node['a signal']).toEqual({ message: 'sh was killed by SIGTERM' });
    expect(node['a missing program']).toEqual({ code: 'ENOENT' });
    // A tool's output is capped like every other input: past it the tool is stopped and the run fails.
    expect(node['an output over the cap']).toEqual({ message: `head printed more than ${1 << 20} bytes; stopped it` });
  });
});
