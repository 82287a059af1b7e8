// A reader that stops early (`eip-agent plan | head`) ends the output, not the command: the exit code is the command's
// own and stderr has no stack trace. Both the development CLI and the release executable, through a real pipe.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { releaseExecutable } from '../release/paths.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const PLAN = `plan --metadata-file ${REPO}examples/manual.json --root ${REPO}examples/centos7-root`;

/** Runs `<agent> plan ... | true` in bash with pipefail: the agent's exit code, and what it wrote to stderr. */
function planIntoClosedPipe(agent: string): { exitCode: number; stderr: string } {
  const script = `set -o pipefail; ${agent} ${PLAN} 2>/tmp/closed-pipe-$$.err | true; code=$?; cat /tmp/closed-pipe-$$.err >&2; rm -f /tmp/closed-pipe-$$.err; exit $code`;
  try {
    const stderr = execFileSync('bash', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    return { exitCode: 0, stderr };
  } catch (error) {
    const e = error as { status: number; stderr: string };
    return { exitCode: e.status, stderr: e.stderr };
  }
}

describe('output into a pipe whose reader is gone', () => {
  it.each([
    ['development CLI', `${process.execPath} ${join(REPO, 'bin', 'eip-agent.js')}`],
    ['release executable', releaseExecutable()],
  ])('%s: plan exits 2 (changes pending), as with a reader, and says nothing on stderr', (_what, agent) => {
    if (!existsSync(agent.split(' ').at(-1) as string))
      throw new Error(`${agent} is not built: npm run build, npm run release`);
    expect(planIntoClosedPipe(agent)).toEqual({ exitCode: 2, stderr: '' });
  });
});
