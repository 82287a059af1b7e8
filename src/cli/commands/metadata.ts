import { ConfigError, quoteShort } from '../../errors.js';
import { metadataSource } from '../../pipeline.js';
import { camel } from '../args.js';
import { defineCommand, type Io } from '../command.js';
import type { Host } from '../../host/host.js';
import { loadConfig } from '../../config/file.js';
import { optionsFrom, requireAbsolute } from '../../config/options.js';
import { serveMetadata } from '../serve.js';

/** Options that belong to one action only; given with the other, they are a mistake worth one line. */
const ONLY: Record<'serve' | 'dump', readonly string[]> = {
  serve: ['fixture', 'host', 'port', 'control-socket'],
  dump: ['metadata-url', 'config', 'out'],
};

/**
 * `eip-agent metadata dump`: the tree as the agent reads it (the same keys, caps, retries and errors), in the
 * `--metadata-file` format, so `plan --metadata-file` replays this VM anywhere. Refuses to overwrite a file.
 */
async function dumpMetadata(
  host: Host,
  io: Io,
  args: { metadataUrl?: string | undefined; config?: string | undefined; out?: string | undefined },
): Promise<number> {
  const options = optionsFrom(
    host,
    { root: '/', ...(args.metadataUrl !== undefined ? { metadataUrl: args.metadataUrl } : {}) },
    await loadConfig(host, args.config),
  );
  const tree = await metadataSource(host, options).read();
  const text = `${JSON.stringify(tree, null, 2)}\n`;
  const out = args.out;
  if (out === undefined) {
    io.out(text);
    return 0;
  }
  requireAbsolute('--out', out);
  if (!(await host.fs.createExclusive(out, text)))
    throw new ConfigError(`--out ${out} exists: refusing to overwrite it; give a new path`);
  io.err(`eip-agent: wrote the metadata of ${options.metadataUrl} to ${out}\n`);
  return 0;
}

/** `eip-agent metadata serve|dump`: the metadata emulator, and a snapshot of the live tree for it or for --metadata-file. */
export const metadataCommand = defineCommand({
  command: 'metadata <action>',
  name: 'metadata serve|dump',
  describe:
    'serve: serve a metadata JSON fixture over HTTP like the instance metadata endpoint (for tests and ' +
    'previews); dump: read the live tree as the agent does and print it (or write --out) as a ' +
    '--metadata-file',
  options: {
    fixture: { type: 'string', describe: 'serve: JSON tree to serve (required)' },
    host: { type: 'string', describe: 'serve: address to listen on', defaultDescription: '127.0.0.1' },
    port: { type: 'string', describe: 'serve: TCP port, 0 for any free one', defaultDescription: '8080' },
    'control-socket': {
      type: 'string',
      describe: 'serve: unix socket for the control API (PUT /tree, PUT /faults, GET /stats)',
    },
    'metadata-url': {
      type: 'string',
      describe: 'dump: metadata base URL (env EIP_AGENT_METADATA_URL)',
      defaultDescription: 'http://169.254.0.23/latest/meta-data/',
    },
    config: {
      type: 'string',
      describe: 'dump: config file (env EIP_AGENT_CONFIG): its metadata settings apply',
      defaultDescription: '/etc/eip-agent/config.json if present',
    },
    out: {
      type: 'string',
      describe: 'dump: write the tree to this new file instead of printing it (never overwrites)',
    },
  },
  positionals: {
    action: { choices: ['serve', 'dump'], describe: 'serve: run the emulator; dump: snapshot the live tree' },
  },
  run: (host, io, args) => {
    const action = args.action;
    const other = action === 'serve' ? 'dump' : 'serve';
    const given: Readonly<Record<string, unknown>> = args;
    const stray = ONLY[other].find((name) => given[camel(name)] !== undefined);
    if (stray !== undefined) throw new ConfigError(`--${stray} is for metadata ${other}, not metadata ${action}`);
    if (action === 'dump') return dumpMetadata(host, io, args);
    if (args.fixture === undefined) throw new ConfigError('metadata serve needs --fixture: JSON tree to serve');
    const port = args.port ?? '8080';
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535)
      throw new ConfigError(`--port ${quoteShort(port)}: expected an integer from 0 to 65535`);
    return serveMetadata(host, io, {
      fixture: args.fixture,
      host: args.host ?? '127.0.0.1',
      port: Number(port),
      ...(args.controlSocket !== undefined ? { controlSocket: args.controlSocket } : {}),
    });
  },
});
