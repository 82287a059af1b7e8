import { ConfigError } from '../errors.js';
import { centosTarget } from './centos.js';
import type { Target, TargetName } from './target.js';
import { windowsTarget } from './windows.js';

export type { ApplyOutcome, Target, TargetName, TargetOptions } from './target.js';

const registry: Partial<Record<TargetName, Target>> = { centos: centosTarget, windows: windowsTarget };

/** The target for a name; a known name without an implementation yet is a clear error. */
export function getTarget(name: TargetName): Target {
  const target = registry[name];
  if (target === undefined) throw new ConfigError(`target "${name}" is not available in this version (available: ${Object.keys(registry).join(', ')})`);
  return target;
}

/** The target for the running OS. */
export function defaultTargetName(platform: NodeJS.Platform): TargetName {
  return platform === 'win32' ? 'windows' : 'centos';
}
