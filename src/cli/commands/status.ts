import { readLinuxState } from '../../targets/linux/live-state.js';
import { loadState } from '../../plan/record.js';
import { formatStatus, statusReport } from '../../daemon/status.js';
import { HostError } from '../../errors.js';
import { readModel } from '../../pipeline.js';
import { getTarget } from '../../targets/index.js';
import { COMMON_OPTIONS, EXIT, printWarnings, type CliCommand } from '../command.js';
import { resolveOptions } from '../../config/options.js';

/** `eip-agent status`: the metadata's addresses next to the live system and the agent's own records. Read-only. */
export const statusCommand: CliCommand = {
  command: 'status',
  describe:
    'per address: interface, MAC, EIP and mode, owned or not, in sync or drift; last apply and last error. Exit 0 in sync, 2 drift, 1 error',
  options: COMMON_OPTIONS,
  async run(host, io, args) {
    const options = { ...(await resolveOptions(host, args)), runtime: true };
    if (options.target === 'windows')
      throw new HostError(`status reads the live state with \`ip\`; target ${options.target} is not supported yet`);
    const state = await loadState(host, options.root);
    const model = await readModel(host, options);
    const plan = await (
      await getTarget(options.target)
    ).plan(host, model, { ...options, state, previewMissingNics: true });
    const live = await readLinuxState(host);
    const report = statusReport({ model, plan, live, state, routing: options.routing });
    if (args.json) io.out(`${JSON.stringify(report, null, 2)}\n`);
    else {
      printWarnings(io, plan.warnings);
      io.out(formatStatus(report));
    }
    return report.inSync ? EXIT.ok : EXIT.pending;
  },
};
