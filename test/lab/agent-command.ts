// Which eip-agent the lab runs: the development CLI (node bin/eip-agent.js) or, with EIP_AGENT_EXECUTABLE set (the
// `release` test project), the self-contained release executable, so the same lab tests prove what ships.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAEMON_EXECUTABLE_ENV, DAEMON_NODE_FLAGS } from '../../src/daemon/unit.js';

const DEV_CLI = join(fileURLToPath(new URL('../../', import.meta.url)), 'bin', 'eip-agent.js');

/** The release executable under test, or undefined for the development CLI. */
function releaseExecutable(): string | undefined {
  const executable = process.env.EIP_AGENT_EXECUTABLE;
  return executable !== undefined && executable !== '' ? executable : undefined;
}

/** argv prefix that starts the agent under test. */
export function agentCommand(): string[] {
  const executable = releaseExecutable();
  return executable !== undefined ? [executable] : [process.execPath, DEV_CLI];
}

/**
 * How the systemd unit starts the daemon under test: the release executable with the unit's environment (its engine
 * settings), the development CLI with the unit's node flags. The daemon labs run `run` so, to prove what ships.
 */
export function daemonCommand(): { argv: string[]; env: Record<string, string> } {
  const executable = releaseExecutable();
  return executable !== undefined
    ? { argv: [executable], env: { ...DAEMON_EXECUTABLE_ENV } }
    : { argv: [process.execPath, ...DAEMON_NODE_FLAGS, DEV_CLI], env: {} };
}

/** Which agent runs, for test names and messages. */
export function agentUnderTest(): string {
  const executable = releaseExecutable();
  return executable !== undefined ? `release executable ${executable}` : 'development CLI';
}
