import { HostError } from '../errors.js';
import type { Host, RunResult } from './host.js';

/** Runs a system tool, turning "not installed" into a HostError that says which package to install. */
export async function runTool(
  host: Host,
  argv: readonly string[],
  options?: { input?: string; timeoutMs?: number },
): Promise<RunResult> {
  try {
    return await host.run(argv, options);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ENOENT') {
      const pkg =
        {
          ip: 'iproute2',
          ping: 'iputils-ping',
          sysctl: 'procps',
          systemctl: 'systemd',
          nmcli: 'NetworkManager',
          netplan: 'netplan.io',
          networkctl: 'systemd',
        }[argv[0] ?? ''] ?? argv[0];
      throw new HostError(`\`${argv[0]}\` was not found on PATH: install ${pkg}`, { cause: error });
    }
    throw new HostError(`could not run \`${argv.join(' ')}\`: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Runs several read-only `ip` commands in one `ip -j -batch -` process and parses each one's JSON
 * output (one array per line, in order).
 */
export async function ipJsonBatch<T extends unknown[]>(
  host: Host,
  options: readonly string[],
  commands: readonly string[],
): Promise<T> {
  const argv = ['ip', '-j', ...options, '-batch', '-'];
  const what = `\`${argv.join(' ')}\` (${commands.join('; ')})`;
  const result = await runTool(host, argv, { input: `${commands.join('\n')}\n` });
  if (result.exitCode !== 0)
    throw new HostError(`${what} failed (exit ${result.exitCode}): ${firstLine(result.stderr)}`);
  const lines = result.stdout.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== commands.length)
    throw new HostError(`${what} printed ${lines.length} results for ${commands.length} commands`);
  try {
    return lines.map((line) => JSON.parse(line) as unknown) as T;
  } catch (error) {
    throw new HostError(`${what} printed output that is not JSON: ${firstLine(result.stdout)}`, { cause: error });
  }
}

/** First non-empty line of a tool's output, for one-line messages. */
export function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? '(no output)'
  );
}
