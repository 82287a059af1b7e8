import { createTwoFilesPatch } from 'diff';
import type { FileChange, Plan } from '../plan/plan.js';
import { planChanges, planInSync } from '../plan/plan.js';
import type { VerifyReport } from '../plan/verify-report.js';

/** Unified diff of one file change, as `diff -u` would print it (empty when unchanged). */
export function fileDiff(change: FileChange): string {
  if (change.action === 'unchanged') return '';
  const before = change.action === 'create' ? '/dev/null' : `a${change.path}`;
  return createTwoFilesPatch(before, `b${change.path}`, change.previous ?? '', change.content, undefined, undefined, {
    context: 3,
  })
    .split('\n')
    .slice(1) // drop the "====" banner
    .join('\n');
}

function fileLine(change: FileChange): string {
  const notes: string[] = [];
  if (change.backupPath) notes.push(`original saved as ${change.backupPath}`);
  if (change.action === 'update' && !change.previousOwned && !change.backupPath)
    notes.push('original already backed up');
  return `  ${change.action.padEnd(9)} ${change.path}${notes.length ? ` (${notes.join('; ')})` : ''}`;
}

/** The human plan: file list, diffs, runtime changes, warnings, and a closing verdict. */
export function formatPlan(plan: Plan): string {
  const out: string[] = [];
  out.push(`Plan for target ${plan.target}, root ${plan.root}`);
  if (plan.bootStack !== undefined) out.push(plan.bootStack.charAt(0).toUpperCase() + plan.bootStack.slice(1));
  if (plan.refusal !== undefined) out.push(`apply refuses: ${plan.refusal}`);
  out.push('', 'Files:');
  for (const f of plan.files) out.push(fileLine(f));
  for (const f of plan.files) {
    const diff = fileDiff(f);
    if (diff) out.push('', diff.trimEnd());
  }
  out.push('', 'Runtime:');
  if (!plan.runtimePlanned)
    out.push('  (not compared: --no-runtime, or this is not the machine the metadata describes; see warnings)');
  else if (plan.runtime.length === 0) out.push('  in sync');
  for (const c of plan.runtime) out.push(`  ${c.releases ? '-' : '+'} ${c.summary}`);
  if (plan.ownership.pending.length) {
    out.push('', 'Pending removal (no longer in the metadata; removed when the next successful read agrees):');
    for (const p of plan.ownership.pending) out.push(`  - ${p}`);
  }
  if (plan.warnings.length) {
    out.push('', 'Warnings:');
    for (const w of plan.warnings) out.push(`  ! ${w}`);
  }
  const pending = plan.files.filter((f) => f.action !== 'unchanged').length + plan.runtime.length;
  const removals = plan.ownership.pending.length;
  if (planChanges(plan)) out.push('', `${pending} change(s) pending; \`eip-agent apply\` makes them.`);
  else if (removals > 0)
    out.push(
      '',
      `Not in sync: ${removals} removal(s) pending; the next \`eip-agent apply\` (or the service's next read) whose metadata read agrees makes them.`,
    );
  else out.push('', 'In sync: nothing to do.');
  return `${out.join('\n')}\n`;
}

/** The plan as JSON for scripts: same content as the human form. */
export function planJson(plan: Plan): unknown {
  return {
    target: plan.target,
    root: plan.root,
    inSync: planInSync(plan),
    files: plan.files.map((f) => ({
      path: f.path,
      action: f.action,
      mode: f.mode.toString(8),
      ...(f.backupPath ? { backupPath: f.backupPath } : {}),
      diff: fileDiff(f),
    })),
    runtimePlanned: plan.runtimePlanned,
    runtime: plan.runtime.map((c) => ({ kind: c.kind, summary: c.summary })),
    pendingRemovals: plan.ownership.pending,
    ...(plan.bootStack !== undefined ? { bootStack: plan.bootStack } : {}),
    ...(plan.refusal !== undefined ? { refusal: plan.refusal } : {}),
    warnings: plan.warnings,
  };
}

/** The verification report as a table of checks. */
export function formatReport(report: VerifyReport): string {
  const rows = report.checks.map(
    (c) => `  ${c.ok ? 'ok  ' : c.unknown === true ? '??  ' : 'FAIL'} ${c.kind.padEnd(9)} ${c.subject} — ${c.detail}`,
  );
  const failed = report.checks.filter((c) => !c.ok && c.unknown !== true).length;
  const unknown = report.checks.filter((c) => c.unknown === true).length;
  const verdict = report.ok
    ? `Verified: all ${report.checks.length} checks passed.`
    : failed > 0
      ? `Not as desired: ${failed} of ${report.checks.length} checks failed.`
      : `Not verified: ${unknown} of ${report.checks.length} checks could not be made (the others passed); ` +
        `nothing was found wrong, so nothing was rolled back: \`eip-agent verify\` checks again.`;
  return `${rows.join('\n')}\n${verdict}\n`;
}
