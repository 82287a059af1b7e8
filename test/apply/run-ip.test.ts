import { describe, expect, it } from 'vitest';
import { ipJsonBatch } from '../../src/host/run-tool.js';
import type { RunResult } from '../../src/host/host.js';
import { createTestHost } from '../helpers/host.js';

function hostAnswering(result: RunResult | Error) {
  const calls: { argv: readonly string[]; input?: string }[] = [];
  const host = createTestHost({
    run: async (argv, options) => {
      calls.push({ argv, ...(options?.input !== undefined ? { input: options.input } : {}) });
      if (result instanceof Error) throw result;
      return result;
    },
  });
  return { host, calls };
}

describe('ipJsonBatch', () => {
  it('sends every command in one process and parses one JSON array per line', async () => {
    const { host, calls } = hostAnswering({ exitCode: 0, stdout: '[{"a":1}]\n[]\n[{"b":2}]\n', stderr: '' });
    await expect(ipJsonBatch(host, ['-d'], ['address show', 'rule show', 'route show table all'])).resolves.toEqual([
      [{ a: 1 }],
      [],
      [{ b: 2 }],
    ]);
    expect(calls).toEqual([
      { argv: ['ip', '-j', '-d', '-batch', '-'], input: 'address show\nrule show\nroute show table all\n' },
    ]);
  });

  it.each<[string, RunResult | Error, string]>([
    [
      'a failing command',
      {
        exitCode: 1,
        stdout: '',
        stderr: 'Error: either "to" is duplicate, or "x" is a garbage.\nCommand failed -:2\n',
      },
      'host: `ip -j -batch -` (address show; rule show) failed (exit 1): Error: either "to" is duplicate, or "x" is a garbage.',
    ],
    [
      'fewer results than commands',
      { exitCode: 0, stdout: '[]\n', stderr: '' },
      'host: `ip -j -batch -` (address show; rule show) printed 1 results for 2 commands',
    ],
    [
      'output that is not JSON',
      { exitCode: 0, stdout: '[]\nnot json\n', stderr: '' },
      'host: `ip -j -batch -` (address show; rule show) printed output that is not JSON: []',
    ],
    [
      'no ip binary',
      Object.assign(new Error('spawn ip ENOENT'), { code: 'ENOENT' }),
      'host: `ip` was not found on PATH: install iproute2',
    ],
  ])('names the problem for %s', async (_name, answer, line) => {
    const { host } = hostAnswering(answer);
    await expect(ipJsonBatch(host, [], ['address show', 'rule show'])).rejects.toMatchObject({ userLine: line });
  });
});
