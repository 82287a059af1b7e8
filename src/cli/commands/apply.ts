import { withLock } from '../../plan/lock.js';
import { applyAndVerify, applyUnlessFailed } from '../../pipeline.js';
import { COMMON_OPTIONS, settingOption, EXIT, printWarnings, defineCommand } from '../command.js';
import { formatReport } from '../format.js';
import { resolveOptions } from '../../config/options.js';

/** `eip-agent apply`: write, reconcile, verify, roll back on failure. */
export const applyCommand = defineCommand({
  command: 'apply',
  describe:
    'write the files, reconcile the runtime, verify; roll back if verification fails. Exit 0 applied and ' +
    'verified, 1 error (nothing changed), 3 verification failed (rolled back), 4 applied but a check ' +
    'could not be made (kept; verify again)',
  options: {
    ...COMMON_OPTIONS,
    runtime: { type: 'boolean', default: true, describe: 'change the live state too (--no-runtime: write files only)' },
    'skip-failed': {
      type: 'boolean',
      default: false,
      describe:
        'do not retry a model whose last apply failed verification and was rolled back before its backoff ' +
        'ends (30 s, doubling with each failure in a row, at most 15 min) unless the metadata changes (exit ' +
        '3); the Windows task runs apply with it',
    },
    reload: settingOption('reload'),
  },
  async run(host, io, args) {
    const options = await resolveOptions(host, args);
    // One agent at a time: the daemon, a hand-run apply and rollback share the lock.
    const result = await withLock(host, options.root, () =>
      args.skipFailed === true ? applyUnlessFailed(host, options) : applyAndVerify(host, options),
    );
    if ('skipped' in result) {
      const when =
        result.skipped.retryAfter !== undefined
          ? `tried again after ${result.skipped.retryAfter} or when the metadata changes`
          : 'waiting for the metadata to change';
      io.err(
        `eip-agent: apply: not retrying model ${result.skipped.hash.slice(0, 12)} yet, which failed verification at ${result.skipped.at}; ` +
          `${when} (\`eip-agent apply\` without --skip-failed retries it now)\n`,
      );
      return EXIT.notVerified;
    }
    const { plan, outcome, report, rolledBack } = result;
    if (args.json) {
      const result = {
        applied: !rolledBack,
        rolledBack,
        filesWritten: outcome.filesWritten,
        runtimeApplied: outcome.runtimeApplied,
        pendingRemovals: plan.ownership.pending,
        warnings: plan.warnings,
        verification: report ?? null,
      };
      io.out(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      printWarnings(io, plan.warnings);
      if (outcome.filesWritten.length === 0 && outcome.runtimeApplied.length === 0)
        io.out('Already in sync: nothing written, nothing changed.\n');
      for (const f of outcome.filesWritten) io.out(`wrote ${f}\n`);
      for (const r of outcome.runtimeApplied) io.out(`applied: ${r}\n`);
      if (report) io.out(formatReport(report));
      if (!rolledBack && plan.ownership.pending.length > 0) {
        io.out(
          `Pending removal (no longer in the metadata; removed when the next successful read agrees): ${plan.ownership.pending.join('; ')}\n`,
        );
      }
    }
    if (result.unverified !== undefined) {
      io.err(
        'eip-agent: verify: applied, but verification could not finish (see the checks marked ?? above); ' +
          'the change is kept, nothing was rolled back: run `eip-agent verify` again\n',
      );
      return EXIT.unknown;
    }
    if (!rolledBack) return EXIT.ok;
    io.err(
      'eip-agent: verify: verification failed after apply; every change of this run was rolled back (see the failed checks above)\n',
    );
    return EXIT.notVerified;
  },
});
