import { AgentError } from '../errors.js';
import type { Host } from '../host/host.js';
import { createNodeHost } from '../host/node.js';
import { parseCommandLine } from './args.js';
import type { CliCommand, Io } from './command.js';
import { EXIT } from './command.js';
import { applyCommand } from './commands/apply.js';
import { installWithTask, uninstallWithTask } from './commands/install-windows.js';
import { metadataCommand } from './commands/metadata.js';
import { planCommand } from './commands/plan.js';
import { renderCommand } from './commands/render.js';
import { rollbackCommand } from './commands/rollback.js';
import { runCommand } from './commands/run.js';
import { sandboxCommand } from './commands/sandbox.js';
import { statusCommand } from './commands/status.js';
import { verifyCommand } from './commands/verify.js';

import { VERSION } from '../version.js';

export { EXIT } from './command.js';

/** Every command, in the order `--help` lists them. */
const COMMANDS: CliCommand[] = [
  planCommand,
  applyCommand,
  renderCommand,
  verifyCommand,
  rollbackCommand,
  statusCommand,
  runCommand,
  installWithTask,
  uninstallWithTask,
  metadataCommand,
  sandboxCommand,
];

const USAGE =
  'eip-agent <command> [options]\n\nConfigures ENIs, secondary private IPs and EIPs on this guest from the instance metadata.\n' +
  '`eip-agent --version` prints the version.';

const stdio: Io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/**
 * A reader that stops early (`eip-agent status | head`) ends the output, not the command: without this, the next
 * write's EPIPE is thrown as a stack trace. Any other error of the stream still is.
 */
function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount('error') > 0) continue;
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  }
}

/** Runs the CLI with the given arguments and host; returns the exit code. Errors become one line on stderr. */
export async function main(argv: readonly string[], host: Host = createNodeHost(), io: Io = stdio): Promise<number> {
  if (io === stdio) quietOnClosedPipe();
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    io.out(`eip-agent ${VERSION}\n`);
    return EXIT.ok;
  }
  try {
    const parsed = parseCommandLine(argv, COMMANDS, {
      scriptName: 'eip-agent',
      usage: USAGE,
      columns: process.stdout.columns ?? 110,
    });
    if (parsed.kind === 'help') {
      io.out(parsed.text);
      return EXIT.ok;
    }
    return await parsed.command.run(host, io, parsed.args);
  } catch (error) {
    if (error instanceof AgentError) {
      io.err(`eip-agent: ${error.userLine}\n`);
      return EXIT.error;
    }
    const detail = host.env.EIP_AGENT_DEBUG
      ? `\n${(error as Error).stack}`
      : ' (set EIP_AGENT_DEBUG=1 for a stack trace)';
    io.err(`eip-agent: internal error: ${(error as Error).message}${detail}\n`);
    return EXIT.error;
  }
}
