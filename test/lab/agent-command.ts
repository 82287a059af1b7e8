// Which eip-agent the lab runs: the development CLI (node bin/eip-agent.js) or, with EIP_AGENT_EXECUTABLE set (the
// `release` test project), the self-contained release executable, so the same lab tests prove what ships.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DEV_CLI = join(fileURLToPath(new URL('../../', import.meta.url)), 'bin', 'eip-agent.js');

/** argv prefix that starts the agent under test. */
export function agentCommand(): string[] {
  const executable = process.env.EIP_AGENT_EXECUTABLE;
  return executable !== undefined && executable !== '' ? [executable] : [process.execPath, DEV_CLI];
}

/** Which agent runs, for test names and messages. */
export function agentUnderTest(): string {
  return process.env.EIP_AGENT_EXECUTABLE
    ? `release executable ${process.env.EIP_AGENT_EXECUTABLE}`
    : 'development CLI';
}
