import type { ReloadMode } from '../apply/reload.js';
import { ConfigError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { PipelineOptions } from '../pipeline.js';
import type { RoutingMode } from '../render/types.js';
import { defaultTargetName } from '../targets/index.js';
import type { TargetName } from '../targets/target.js';
import { DEFAULT_METADATA_URL } from '../metadata/index.js';
import { loadConfig, type FileConfig } from './config.js';


/** Options shared by every command, as yargs parsed them. */
export interface CommonArgs {
  metadataUrl?: string;
  metadataFile?: string;
  root: string;
  target?: string;
  routing?: string;
  reload?: string;
  config?: string;
  runtime?: boolean;
  windowsFlavor?: string;
}

/** Merges command line, environment and config file (in that order of precedence) into pipeline options. */
export async function resolveOptions(host: Host, args: CommonArgs): Promise<PipelineOptions> {
  return optionsFrom(host, args, await loadConfig(host, args.config));
}

/** resolveOptions with the config file already loaded (`run` reads its own keys from the same file). */
export function optionsFrom(host: Host, args: CommonArgs, config: FileConfig): PipelineOptions {
  if (args.metadataFile === '') throw new ConfigError('--metadata-file needs a path');
  if (!args.root.startsWith('/')) throw new ConfigError(`--root ${JSON.stringify(args.root)} must be an absolute path`);
  const metadataUrl = args.metadataUrl ?? host.env.EIP_AGENT_METADATA_URL ?? config.metadataUrl ?? DEFAULT_METADATA_URL;
  if (!/^https?:\/\/\S+$/.test(metadataUrl)) throw new ConfigError(`metadata URL ${JSON.stringify(metadataUrl)} is not an http(s) URL`);
  return {
    metadataUrl,
    ...(args.metadataFile !== undefined ? { metadataFile: args.metadataFile } : {}),
    ...(config.metadataTimeoutMs !== undefined ? { metadataTimeoutMs: config.metadataTimeoutMs } : {}),
    ...(config.metadataConcurrency !== undefined ? { metadataConcurrency: config.metadataConcurrency } : {}),
    ...(config.metadataRetries !== undefined ? { metadataRetries: config.metadataRetries } : {}),
    ...(config.ignoreNics !== undefined ? { ignoreNics: config.ignoreNics } : {}),
    root: args.root,
    target: (args.target ?? config.target ?? defaultTargetName(host.platform)) as TargetName,
    routing: (args.routing ?? config.routing ?? 'policy') as RoutingMode,
    reload: (args.reload ?? config.reload ?? 'none') as ReloadMode,
    runtime: args.runtime ?? true,
    requireNics: false,
    ...(args.windowsFlavor !== undefined ? { windowsFlavor: args.windowsFlavor as 'powershell' | 'netsh' } : {}),
  };
}
