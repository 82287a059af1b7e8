import { HostError } from '../errors.js';
import type { Host, RunResult } from '../host/host.js';

/** Runs a system tool, turning "not installed" into a HostError that says which package to install. */
export async function runTool(host: Host, argv: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<RunResult> {
  try {
    return await host.run(argv, options);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ENOENT') {
      const pkg = { ip: 'iproute2', ping: 'iputils-ping', sysctl: 'procps', systemctl: 'systemd', nmcli: 'NetworkManager' }[argv[0] ?? ''] ?? argv[0];
      throw new HostError(`\`${argv[0]}\` was not found on PATH: install ${pkg}`, { cause: error });
    }
    throw new HostError(`could not run \`${argv.join(' ')}\`: ${(error as Error).message}`, { cause: error });
  }
}

/** Runs `ip ...args` and parses its JSON output; a failure names the command and ip's own message. */
export async function ipJson<T>(host: Host, args: readonly string[]): Promise<T> {
  const argv = ['ip', '-j', ...args];
  const result = await runTool(host, argv);
  if (result.exitCode !== 0) {
    throw new HostError(`\`${argv.join(' ')}\` failed (exit ${result.exitCode}): ${firstLine(result.stderr)}`);
  }
  const text = result.stdout.trim();
  if (text === '') return [] as T;
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new HostError(`\`${argv.join(' ')}\` printed output that is not JSON: ${firstLine(text)}`, { cause: error });
  }
}

/** First non-empty line of a tool's output, for one-line messages. */
export function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '')?.trim() ?? '(no output)';
}
