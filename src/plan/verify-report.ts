/** One verification check and its outcome. */
export interface Check {
  kind: 'file' | 'metadata' | 'link' | 'address' | 'rule' | 'route' | 'rp_filter' | 'marks' | 'ping' | 'script';
  subject: string;
  ok: boolean;
  /** The check could not be made (no answer, a tool that did not run): not ok, and no proof that anything is wrong. */
  unknown?: boolean;
  detail: string;
}

/** The verification result; `ok` only when every check passed. */
export interface VerifyReport {
  ok: boolean;
  checks: Check[];
}

/** Builds a report from checks. */
export function report(checks: Check[]): VerifyReport {
  return { ok: checks.every((c) => c.ok), checks };
}
