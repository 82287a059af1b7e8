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
    throw new ConfigError(`fixture ${args.fixture}: not valid JSON: ${(error as Error).message}`);
  }
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree)) throw new ConfigError(`fixture ${args.fixture}: expected a JSON object`);
  const { startMetadataEmulator } = await import('../metadata/emulator.js');
  const emulator = await startMetadataEmulator({ tree, host: args.host, port: args.port, ...(args.controlSocket ? { controlSocket: args.controlSocket } : {}) });
  io.out(`serving metadata at ${emulator.url}${args.controlSocket ? ` (control: ${args.controlSocket})` : ''}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await emulator.close();
  return 0;
}
