import { isAbsolute } from 'node:path';
import { SETTINGS, type SettingValue } from '../settings.js';
import { ConfigError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { PipelineOptions } from '../pipeline.js';
import { defaultTargetName } from '../targets/index.js';
import { DEFAULT_METADATA_URL } from '../metadata/index.js';
import { loadConfig, metadataUrlProblem, type FileConfig } from './file.js';

/** Options shared by every command, as the command line parser gives them (args.ts: choices already checked). */
export interface CommonArgs {
  metadataUrl?: string;
  metadataFile?: string;
  root: string;
  target?: SettingValue<'target'>;
  routing?: SettingValue<'routing'>;
  connectionMarks?: SettingValue<'connectionMarks'>;
  reload?: SettingValue<'reload'>;
  config?: string;
  runtime?: boolean;
  windowsFlavor?: SettingValue<'windowsFlavor'>;
  cloudInit?: SettingValue<'cloudInit'>;
}

/** Checks that a path option is absolute (on this OS: /srv/x here, C:\\x on Windows). */
export function requireAbsolute(option: string, value: string): string {
  if (!isAbsolute(value)) throw new ConfigError(`${option} ${JSON.stringify(value)} must be an absolute path`);
  return value;
}

/** Merges command line, environment and config file (in that order of precedence) into pipeline options. */
export async function resolveOptions(host: Host, args: CommonArgs): Promise<PipelineOptions> {
  const options = optionsFrom(host, args, await loadConfig(host, args.config));
  await requireRoot(host, options.root);
  return options;
}

/** A --root other than / must exist: a typo would otherwise create a tree there and still change the live network. */
export async function requireRoot(host: Host, root: string): Promise<void> {
  if (root !== '/' && (await host.fs.meta(root)) === null)
    throw new ConfigError(`--root ${root} does not exist: check the path, or create the directory first`);
}

/** resolveOptions with the config file already loaded (`run` reads its own keys from the same file). */
export function optionsFrom(host: Host, args: CommonArgs, config: FileConfig): PipelineOptions {
  if (args.metadataFile === '') throw new ConfigError('--metadata-file needs a path');
  requireAbsolute('--root', args.root);
  const metadataUrl = args.metadataUrl ?? host.env.EIP_AGENT_METADATA_URL ?? config.metadataUrl ?? DEFAULT_METADATA_URL;
  const problem = metadataUrlProblem(metadataUrl);
  if (problem !== undefined) throw new ConfigError(`--metadata-url: ${problem}`);
  const target = args.target ?? config.target ?? defaultTargetName(host.platform);
  const reload = args.reload ?? config.reload ?? SETTINGS.reload.default;
  // Reloading restarts Linux network services; a Windows script applies its own changes.
  if (target === 'windows' && reload !== 'none')
    throw new ConfigError(`reload ${reload} restarts a Linux network service: it does not apply to target windows`);
  const windowsFlavor = args.windowsFlavor ?? config.windowsFlavor;
  return {
    metadataUrl,
    ...(args.metadataFile !== undefined ? { metadataFile: args.metadataFile } : {}),
    ...(config.metadataTimeoutMs !== undefined ? { metadataTimeoutMs: config.metadataTimeoutMs } : {}),
    ...(config.metadataConcurrency !== undefined ? { metadataConcurrency: config.metadataConcurrency } : {}),
    ...(config.metadataRetries !== undefined ? { metadataRetries: config.metadataRetries } : {}),
    ...(config.metadataMaxBytes !== undefined ? { metadataMaxBytes: config.metadataMaxBytes } : {}),
    ...(config.ignoreNics !== undefined ? { ignoreNics: config.ignoreNics } : {}),
    root: args.root,
    target,
    routing: args.routing ?? config.routing ?? SETTINGS.routing.default,
    connectionMarks: (args.connectionMarks ?? config.connectionMarks ?? SETTINGS.connectionMarks.default) === 'on',
    cloudInit: args.cloudInit ?? config.cloudInit ?? SETTINGS.cloudInit.default,
    reload,
    runtime: args.runtime ?? true,
    requireNics: false,
    ...(windowsFlavor !== undefined ? { windowsFlavor } : {}),
  };
}
