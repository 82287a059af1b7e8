import { RANGES, SETTINGS } from '../settings.js';
import { loadConfig } from './file.js';
import type { CommonArgs } from './options.js';
import { optionsFrom } from './options.js';
import { ConfigError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { DaemonOptions } from '../daemon/options.js';

/** The poll interval when neither --interval nor the config file sets one. */
export const DEFAULT_INTERVAL_SECONDS = SETTINGS.interval.default;

/** `run`'s arguments: the common ones and --interval. */
export interface RunArgs extends CommonArgs {
  interval?: number;
}

/** Everything `run` needs, from the command line, the environment and the config file (read again on SIGHUP). */
export interface RunSettings {
  daemon: DaemonOptions;
  /** Port of the loopback /metrics endpoint, if any. */
  metricsPort?: number;
}

/** Reads the config file and merges it with the command line (which wins), as `resolveOptions` does for the other commands. */
export async function resolveRunSettings(host: Host, args: RunArgs): Promise<RunSettings> {
  const config = await loadConfig(host, args.config);
  const [least, most] = RANGES.interval;
  if (
    args.interval !== undefined &&
    !(Number.isFinite(args.interval) && args.interval >= least && args.interval <= most)
  ) {
    throw new ConfigError(`--interval ${args.interval}: expected seconds from ${least} to ${most}`);
  }
  const pipeline = { ...optionsFrom(host, args, config), runtime: true };
  const daemon: DaemonOptions = {
    pipeline,
    intervalMs: Math.round((args.interval ?? config.interval ?? DEFAULT_INTERVAL_SECONDS) * 1000),
    ignoreNics: config.ignoreNics ?? [],
    ...(config.metricsTextfile !== undefined ? { metricsTextfile: config.metricsTextfile } : {}),
  };
  return { daemon, ...(config.metricsPort !== undefined ? { metricsPort: config.metricsPort } : {}) };
}
