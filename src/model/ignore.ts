import { ConfigError } from '../errors.js';
import type { InstanceModel } from './types.js';

/**
 * The model without the NICs the config says to leave alone (`ignoreNics`, lower-case MACs). The
 * remaining NICs keep their index, so their routing tables do not move. The primary NIC cannot be
 * left alone: everything else routes through it.
 */
export function withoutIgnoredNics(model: InstanceModel, ignoreNics: readonly string[]): InstanceModel {
  if (ignoreNics.length === 0) return model;
  const ignored = new Set(ignoreNics.map((mac) => mac.toLowerCase()));
  const primary = model.nics.find((n) => n.isPrimaryNic);
  if (primary !== undefined && ignored.has(primary.macLower)) {
    throw new ConfigError(
      `ignoreNics: ${primary.macLower} is the primary NIC (the metadata's \`mac\`); only secondary NICs can be left alone`,
    );
  }
  return { ...model, nics: model.nics.filter((n) => !ignored.has(n.macLower)) };
}
