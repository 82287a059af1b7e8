import { dirname } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { MetaTree } from '../metadata/tree.js';

/** `eip-agent metadata serve`: runs the emulator until SIGINT/SIGTERM. */
export async function serveMetadata(
  host: Host,
  io: { out(text: string): void },
  args: { fixture: string; host: string; port: number; controlSocket?: string },
): Promise<number> {
  const text = await host.fs.readText(args.fixture, { follow: true });
  if (text === null) throw new ConfigError(`fixture ${args.fixture} not found`);
  let tree: MetaTree;
  try {
    tree = JSON.parse(text) as MetaTree;
  } catch (error) {
    throw new ConfigError(`fixture ${args.fixture}: not valid JSON`, { cause: error });
  }
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree))
    throw new ConfigError(`fixture ${args.fixture}: expected a JSON object`);
  if (args.controlSocket !== undefined && (await host.fs.meta(dirname(args.controlSocket))) === null) {
    throw new ConfigError(
      `--control-socket ${args.controlSocket}: directory ${dirname(args.controlSocket)} does not exist`,
    );
  }
  const { startMetadataEmulator } = await import('../sandbox/emulator.js');
  let emulator;
  try {
    emulator = await startMetadataEmulator({
      tree,
      host: args.host,
      port: args.port,
      ...(args.controlSocket ? { controlSocket: args.controlSocket } : {}),
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'EADDRNOTAVAIL') throw new ConfigError(`--host ${args.host} is not an address of this machine`);
    if (code === 'EADDRINUSE')
      throw new ConfigError(`--port ${args.port} on ${args.host} is in use: choose another (0 picks a free one)`);
    throw new ConfigError(`metadata serve: cannot listen: ${(error as Error).message}`);
  }
  io.out(`serving metadata at ${emulator.url}${args.controlSocket ? ` (control: ${args.controlSocket})` : ''}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await emulator.close();
  return 0;
}
