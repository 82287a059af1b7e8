import { verifyOnly } from '../../pipeline.js';
import { COMMON_OPTIONS, printWarnings, verifyExit, defineCommand } from '../command.js';
import { formatReport } from '../format.js';
import { resolveOptions } from '../../config/options.js';

/** `eip-agent verify`: compare files and live state with the metadata; change nothing. */
export const verifyCommand = defineCommand({
  command: 'verify',
  describe:
    'check the live system and files against the metadata; ping each gateway from each address. Exit 0 ' +
    'verified, 3 not as desired, 4 a check could not be made (nothing found wrong), 1 error',
  options: COMMON_OPTIONS,
  async run(host, io, args) {
    const { plan, report } = await verifyOnly(host, await resolveOptions(host, args));
    if (args.json) io.out(`${JSON.stringify({ ...report, warnings: plan.warnings }, null, 2)}\n`);
    else {
      printWarnings(io, plan.warnings);
      io.out(formatReport(report));
    }
    return verifyExit(report);
  },
});
