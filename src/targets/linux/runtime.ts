import { ApplyError } from '../../errors.js';
import type { Host } from '../../host/host.js';
import { undoLines, type RuntimeChange } from '../../plan/plan.js';
import { runGuardedBatch } from './batch.js';
import { firstLine, runTool } from '../../host/run-tool.js';
import { runMarksScript } from './marks.js';

/** Runtime changes carried out, so that they can be undone. */
export interface RuntimeTransaction {
  applied: RuntimeChange[];
  /** Addresses the kernel took away with a deleted one, put back (see runGuardedBatch), and what went wrong around that. */
  notes: string[];
  /**
   * Undoes what was applied. With keepRemovals, removals of owned items (two metadata reads agreed the VPC took them
   * away) stay done, and are returned: putting such an address back could clash with the machine that has it now.
   */
  undo(options?: { keepRemovals?: boolean }): Promise<RuntimeChange[]>;
}

const FAILED_LINE = /Command failed -:(\d+)/;

async function setSysctls(host: Host, pairs: { key: string; value: string }[]): Promise<void> {
  if (pairs.length === 0) return;
  const result = await runTool(host, ['sysctl', '-q', '-w', ...pairs.map((p) => `${p.key}=${p.value}`)]);
  if (result.exitCode !== 0)
    throw new ApplyError(`sysctl failed (exit ${result.exitCode}): ${firstLine(result.stderr)}`);
}

async function undoBatch(host: Host, changes: readonly RuntimeChange[]): Promise<void> {
  const lines = undoLines(changes);
  if (lines.length === 0) return;
  // -force: undo as much as possible even if one line fails, then say so.
  const { result } = await runGuardedBatch(host, lines, { force: true });
  if (result.exitCode !== 0)
    throw new ApplyError(`undoing runtime changes was incomplete: ${firstLine(result.stderr)}`);
}

/**
 * Applies the runtime changes: every `ip` change in ONE `ip -batch` process, then the sysctls in
 * one `sysctl -w`. On failure, what had been applied is undone before the error is thrown.
 */
export async function applyRuntime(host: Host, changes: readonly RuntimeChange[]): Promise<RuntimeTransaction> {
  const ipChanges = changes.filter((c) => c.batch !== undefined);
  const marksChanges = changes.filter((c) => c.marks !== undefined);
  const sysctlChanges = changes.filter((c) => c.sysctl !== undefined);
  const applied: RuntimeChange[] = [];
  const notes: string[] = [];
  // Addresses first, sysctls after: promote_secondaries must still be 1 while addresses are deleted.
  const undo = async (options: { keepRemovals?: boolean } = {}): Promise<RuntimeChange[]> => {
    const kept = options.keepRemovals === true ? applied.filter((c) => c.releases !== undefined) : [];
    try {
      // The table before the rules it serves, as it was made after them.
      for (const c of applied.filter((a) => a.marks !== undefined).reverse())
        await runMarksScript(host, c.marks!.tool, c.marks!.undo);
      await undoBatch(
        host,
        applied.filter((c) => !kept.includes(c)),
      );
    } finally {
      await setSysctls(
        host,
        applied.flatMap((c) => (c.sysctl?.previous != null ? [{ key: c.sysctl.key, value: c.sysctl.previous }] : [])),
      );
    }
    return kept;
  };

  if (ipChanges.length > 0) {
    const { result, restored, warnings } = await runGuardedBatch(
      host,
      ipChanges.map((c) => c.batch as string),
      { force: false },
    );
    notes.push(
      ...restored.map((line) => `${line} (removed by the kernel with a deleted address; put back)`),
      ...warnings,
    );
    if (result.exitCode !== 0) {
      const failedAt = Number(FAILED_LINE.exec(result.stderr)?.[1] ?? ipChanges.length);
      await undoBatch(host, ipChanges.slice(0, Math.max(0, failedAt - 1)));
      const failed = ipChanges[failedAt - 1];
      throw new ApplyError(
        `\`ip ${failed?.batch ?? '-batch'}\` failed: ${firstLine(result.stderr)}; runtime changes undone`,
      );
    }
    applied.push(...ipChanges);
  }
  // The connection marks after the rules and tables that route what they mark.
  for (const change of marksChanges) {
    try {
      await runMarksScript(host, change.marks!.tool, change.marks!.script);
    } catch (error) {
      await undo().catch(() => undefined); // the original failure is the one to report
      throw new ApplyError(`${(error as Error).message}; runtime changes undone`);
    }
    applied.push(change);
  }
  try {
    await setSysctls(
      host,
      sysctlChanges.map((c) => ({ key: c.sysctl!.key, value: c.sysctl!.value })),
    );
  } catch (error) {
    // Some keys may have been written before the failing one; previous values restore them all.
    applied.push(...sysctlChanges);
    await undo().catch(() => undefined); // the original failure is the one to report
    throw error;
  }
  applied.push(...sysctlChanges);
  return { applied, notes, undo };
}
