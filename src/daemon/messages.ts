// The daemon's log lines about an apply: what changed, what verification found, and when a failed model comes back.
import { MetadataError, ValidationError } from '../errors.js';
import type { ApplyResult } from '../pipeline.js';

/** A model hash as the log shows it. */
export function short(hash: string): string {
  return hash.slice(0, 12);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The checks a verification failed, one `kind subject: detail` each. */
export function failedChecks(result: ApplyResult): string[] {
  return (result.report?.checks ?? []).filter((c) => !c.ok).map((c) => `${c.kind} ${c.subject}: ${c.detail}`);
}

/** What could not be checked, and what happens next. */
export function describeUnverified(result: ApplyResult): string {
  const checks = (result.unverified ?? []).map((c) => `${c.kind} ${c.subject}: ${c.detail}`);
  return (
    `verification could not finish (${checks.join('; ')}); ` +
    'nothing was found wrong, the change is kept and verified again after the backoff'
  );
}

/** What an apply changed, whether it was verified, and what waits for the next read. */
export function describeApply(result: ApplyResult): string {
  const files = result.outcome.filesWritten.length;
  const runtime = result.outcome.runtimeApplied.length;
  const verified = result.report ? ', verified' : '';
  const pending =
    result.pendingRemovals > 0
      ? `; ${plural(result.pendingRemovals, 'item')} no longer in the metadata, removed on the next read if it agrees`
      : '';
  if (files === 0 && runtime === 0) return `in sync with the metadata: nothing to change${verified}${pending}`;
  return `applied: ${plural(files, 'file')} written, ${plural(runtime, 'runtime change')}${verified}${pending}`;
}

/** When a model that failed verification is tried again, from now. */
export function retryWhen(retryAt: number, now: number): string {
  const seconds = Math.max(0, Math.round((retryAt - now) / 1000));
  return `tried again in about ${seconds} s, or at once when the metadata changes`;
}

/** Whether an error is about the metadata itself (unreachable or invalid), as opposed to applying it. */
export function isMetadataError(error: unknown): boolean {
  return error instanceof MetadataError || error instanceof ValidationError;
}
