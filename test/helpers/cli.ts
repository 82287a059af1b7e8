// The CLI run as a user runs it, in-process: exit code and everything it printed.
import { main } from '../../src/cli/main.js';
import type { Host } from '../../src/host/host.js';

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

export async function runCli(argv: readonly string[], host: Host): Promise<CliRun> {
  let out = '';
  let err = '';
  const code = await main(argv, host, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}
