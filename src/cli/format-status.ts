// The human form of `eip-agent status`.
import { FULL_READ_MS } from '../daemon/read-schedule.js';
import type { StatusReport } from '../plan/status-report.js';
import { alignColumns } from '../render/columns.js';

/** The human form: the address table, then files, runtime, the last apply and the last error. */
export function formatStatus(report: StatusReport): string {
  const rows = report.addresses.map((a) => [
    a.interface ?? '-',
    a.mac,
    a.address,
    a.eip ?? '-',
    a.mode ?? '-',
    a.owned ? 'yes' : 'no',
    a.inSync ? 'in sync' : `drift: ${a.drift.join('; ')}`,
  ]);
  const out = [`Target ${report.target}, routing ${report.routing}, root ${report.root}`, ''];
  out.push(...alignColumns([['INTERFACE', 'MAC', 'ADDRESS', 'EIP', 'MODE', 'OWNED', 'STATE'], ...rows]));
  out.push('');
  // The lists are in `plan` (with diffs) and in --json; here only how much is pending.
  const files = report.files.length;
  const runtime = report.runtime.length;
  const names = report.files.map((f) => f.path.split('/').at(-1)).join(', ');
  out.push(`Files:        ${files === 0 ? 'in sync' : `${files} file${files === 1 ? '' : 's'} to write (${names})`}`);
  out.push(`Runtime:      ${runtime === 0 ? 'in sync' : `${runtime} change${runtime === 1 ? '' : 's'} pending`}`);
  if (report.pendingRemovals.length > 0) out.push(`Pending:      ${report.pendingRemovals.join('; ')}`);
  if (report.bootStack !== undefined) out.push(`At boot:      ${report.bootStack.replace(/^network at boot: /, '')}`);
  if (report.refusal !== undefined) out.push(`Refused:      ${report.refusal}`);
  const last = report.lastApply;
  out.push(
    `Last apply:   ${last === null ? 'never' : `${last.at} ${last.ok ? 'ok' : 'FAILED (rolled back)'}, model ${last.modelHash.slice(0, 12)}`}`,
  );
  out.push(
    `Last error:   ${report.lastError === null ? 'none' : `${report.lastError.at} ${report.lastError.message}`}`,
  );
  if (report.failedModelHash !== null) {
    const times = report.failedAttempts === 1 ? 'once' : `${report.failedAttempts} times in a row`;
    const when =
      report.retryAfter !== null
        ? `the service tries it again after ${report.retryAfter} (the wait doubles with each failure, at most 15 min)`
        : 'the service tries it again at its next read';
    out.push(
      `Retry:        model ${report.failedModelHash.slice(0, 12)} failed verification ${times} and was rolled back; ` +
        `${when}, or at once when the metadata changes; \`eip-agent apply\` retries it now (stop the service first)`,
    );
  }
  out.push(
    `Reads:        the service sees an ENI attached or detached and a private IP added, removed or moved within one interval; ` +
      `an EIP bound, unbound or put in direct mode and a NIC's primary IP swapped (the same addresses listed) ` +
      `at its next full read, at most ${FULL_READ_MS / 1000} s later`,
  );
  const c = report.counters;
  out.push(
    `Counters:     ${c.applies} applies, ${c.verifyFailures} verify failures, ${c.rollbacks} rollbacks, ${c.metadataErrors} metadata errors`,
  );
  out.push('', report.inSync ? 'In sync.' : 'Not in sync: `eip-agent plan` shows what apply would change.');
  return `${out.join('\n')}\n`;
}
