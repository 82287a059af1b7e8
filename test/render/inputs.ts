// What every Linux renderer's tests render: the same fixtures and modes, names as a fresh guest has them, tables as
// the agent allocates them.
import type { MetaTree } from '../../src/metadata/tree.js';
import { buildModel } from '../../src/model/index.js';
import type { InstanceModel } from '../../src/model/types.js';
import { resolveInterfaceNames } from '../../src/model/names.js';
import { allocateTables } from '../../src/targets/linux/tables.js';
import type { LinuxRenderOptions } from '../../src/targets/linux/desired-runtime.js';
import type { RoutingMode } from '../../src/render/types.js';
import { manualTree, threeNicTree } from '../lab/fixtures.js';

/** The trees with golden files. */
export const GOLDEN_FIXTURES: [string, () => MetaTree][] = [
  ['manual', manualTree],
  ['three-nic', threeNicTree],
];
export const ROUTING_MODES: RoutingMode[] = ['policy', 'rp-filter'];

/** The model and renderer options for a tree, with `taken` table ids to allocate around. */
export function renderInputs(
  tree: MetaTree,
  routing: RoutingMode,
  taken: Set<number> = new Set(),
): { model: InstanceModel; options: LinuxRenderOptions } {
  const model = buildModel(tree);
  const { names } = resolveInterfaceNames(model, null, true);
  const tables = allocateTables(
    model.nics.filter((n) => !n.isPrimaryNic).map((n) => n.index),
    taken,
  );
  return { model, options: { routing, names, tables } };
}
