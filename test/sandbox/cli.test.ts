// `eip-agent sandbox` refuses a bad name or a mistaken option in one line, before it checks the host or touches
// anything: the recording host sees no process and no file is written.
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/main.js';
import type { RunOptions } from '../../src/host/host.js';
import { runCli } from '../helpers/cli.js';
import { createTestHost, vol } from '../helpers/host.js';

describe('sandbox command line', () => {
  it.each([
    [
      ['sandbox', 'up', '--name', 'a;reboot'],
      '--name "a;reboot": expected 1-10 lower-case letters and digits, starting with a letter',
    ],
    [
      ['sandbox', 'up', '--name', 'Demo'],
      '--name "Demo": expected 1-10 lower-case letters and digits, starting with a letter',
    ],
    [['sandbox', 'status', '--server-b'], '--server-b is for sandbox up, not sandbox status'],
    [['sandbox', 'up', '--op', 'move-ip'], '--op is for sandbox change, not sandbox up'],
    [
      ['sandbox', 'change'],
      'sandbox change needs --op: one of bind-eip, unbind-eip, add-ip, remove-ip, attach-eni, detach-eni, move-ip',
    ],
    [['sandbox', 'change', '--op', 'bind-eip', '--ip', '10.0.0.3'], '--op bind-eip needs --eip'],
    [
      ['sandbox', 'change', '--op', 'remove-ip', '--ip', '10.0.0.3', '--eip', '203.0.113.9'],
      '--eip is not an option of --op remove-ip',
    ],
    [
      ['sandbox', 'change', '--op', 'unbind-eip', '--ip', '10.0.0.3', '--direct'],
      '--direct is not an option of --op unbind-eip',
    ],
  ])('%j: one line, exit 1, nothing run or written', async (argv, line) => {
    vol.reset();
    const runs: (readonly string[])[] = [];
    const host = createTestHost({
      isPrivileged: () => true,
      run: async (cmd: readonly string[], _options?: RunOptions) => {
        runs.push(cmd);
        return { exitCode: 0, stdout: '', stderr: '' };
      },
    });
    const result = await runCli(argv, host);
    expect(result).toEqual({ code: EXIT.error, out: '', err: `eip-agent: config: ${line}\n` });
    expect(runs).toEqual([]);
    expect(vol.toJSON()).toEqual({});
  });
});
