import { planInSync } from '../../plan/plan.js';
import { makePlan } from '../../pipeline.js';
import { COMMON_OPTIONS, EXIT, defineCommand } from '../command.js';
import { formatPlan, planJson } from '../format.js';
import { resolveOptions } from '../../config/options.js';

/** `eip-agent plan`: the dry run. */
export const planCommand = defineCommand({
  command: 'plan',
  describe:
    'show what apply would change (unified diffs + runtime changes); writes nothing. Exit 0 in sync, 2 changes or removals pending, 1 error',
  options: {
    ...COMMON_OPTIONS,
    runtime: {
      type: 'boolean',
      default: true,
      describe: 'compare the live addresses/rules/routes/sysctls (--no-runtime: files only)',
    },
  },
  async run(host, io, args) {
    const { plan } = await makePlan(host, await resolveOptions(host, args));
    io.out(args.json ? `${JSON.stringify(planJson(plan), null, 2)}\n` : formatPlan(plan));
    return planInSync(plan) ? EXIT.ok : EXIT.pending;
  },
});
