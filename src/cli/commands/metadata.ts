import { ConfigError, quoteShort } from '../../errors.js';
import type { CliCommand } from '../command.js';
import { serveMetadata } from '../serve.js';

/** `eip-agent metadata serve`: the metadata emulator. */
export const metadataCommand: CliCommand = {
  command: 'metadata <action>',
  name: 'metadata serve',
  describe: 'serve a metadata JSON fixture over HTTP like the instance metadata endpoint (for tests and previews)',
  options: {
    fixture: { type: 'string', required: true, describe: 'JSON tree to serve' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080', describe: 'TCP port, 0 for any free one' },
    'control-socket': { type: 'string', describe: 'unix socket for the control API (PUT /tree, PUT /faults, GET /stats)' },
  },
  positionals: { action: { choices: ['serve'], describe: 'serve: run the emulator' } },
  run: (host, io, args) => {
    const port = String(args.port);
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new ConfigError(`--port ${quoteShort(port)}: expected an integer from 0 to 65535`);
    return serveMetadata(host, io, { ...(args as unknown as { fixture: string; host: string; controlSocket?: string }), port: Number(port) });
  },
};
