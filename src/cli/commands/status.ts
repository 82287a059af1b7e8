import { loadState } from '../../plan/record.js';
import { formatStatus } from '../format-status.js';
import { readModel } from '../../pipeline.js';
import { getTarget } from '../../targets/index.js';
import { COMMON_OPTIONS, EXIT, printWarnings, defineCommand } from '../command.js';
import { resolveOptions } from '../../config/options.js';

/** `eip-agent status`: the metadata's addresses next to the live system and the agent's own records. Read-only. */
export const statusCommand = defineCommand({
  command: 'status',
  describe:
    'per address: interface, MAC, EIP and mode, owned or not, in sync or drift; last apply and last error. Exit 0 in sync, 2 drift, 1 error',
  options: COMMON_OPTIONS,
  async run(host, io, args) {
    const options = { ...(await resolveOptions(host, args)), runtime: true };
    const state = await loadState(host, options.root);
    const model = await readModel(host, options);
    const target = await getTarget(options.target);
    const plan = await target.plan(host, model, { ...options, state, previewMissingNics: true });
    const report = await target.status(host, model, plan, state, options);
    if (args.json) io.out(`${JSON.stringify(report, null, 2)}\n`);
    else {
      printWarnings(io, plan.warnings);
      io.out(formatStatus(report));
    }
    return report.inSync ? EXIT.ok : EXIT.pending;
  },
});
