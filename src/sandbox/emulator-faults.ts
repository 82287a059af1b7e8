/** Which requests a fault applies to: paths containing `match` (all if absent), the next `count` of them (all if absent). */
export interface FaultRule {
  match?: string;
  count?: number;
}

/** Faults the metadata emulator injects; `{}` is a healthy server. */
export interface MetadataFaults {
  /** Added to every request before it is answered. */
  latencyMs?: number;
  /** Answer `code` instead of the tree. */
  status?: FaultRule & { code: number };
  /** Never answer. */
  hang?: FaultRule;
  /** Declare a Content-Length larger than the body, send the body, then destroy the socket. */
  truncate?: FaultRule;
  /** Answer 200 with these bytes (base64), e.g. invalid UTF-8, which a JS string in the tree cannot produce. */
  body?: FaultRule & { base64: string };
}

/** The fault that fires for one request, already counted. */
export type FiredFault =
  | { kind: 'hang' }
  | { kind: 'truncate' }
  | { kind: 'status'; code: number }
  | { kind: 'body'; bytes: Buffer }
  | undefined;

function fires(rule: FaultRule | undefined, path: string): boolean {
  if (rule === undefined) return false;
  if (rule.match !== undefined && !path.includes(rule.match)) return false;
  if (rule.count === undefined) return true;
  if (rule.count <= 0) return false;
  rule.count--;
  return true;
}

/** Picks the fault for a request to `path` (hang, then status, truncate, body) and spends one of its count. */
export function fireFault(faults: MetadataFaults, path: string): FiredFault {
  if (fires(faults.hang, path)) return { kind: 'hang' };
  if (faults.status && fires(faults.status, path)) return { kind: 'status', code: faults.status.code };
  if (fires(faults.truncate, path)) return { kind: 'truncate' };
  if (faults.body && fires(faults.body, path))
    return { kind: 'body', bytes: Buffer.from(faults.body.base64, 'base64') };
  return undefined;
}

function ruleProblem(name: string, value: unknown, extra: Record<string, 'string' | 'number'>): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${name}: expected an object`;
  const fields: Record<string, string> = { match: 'string', count: 'number', ...extra };
  for (const [key, field] of Object.entries(value)) {
    if (!(key in fields)) return `${name}.${key}: unknown field`;
    if (typeof field !== fields[key]) return `${name}.${key}: expected a ${fields[key]}`;
  }
  for (const [key, type] of Object.entries(extra)) {
    if (typeof (value as Record<string, unknown>)[key] !== type) return `${name}.${key}: required ${type}`;
  }
  return undefined;
}

/** What is wrong with a JSON value as MetadataFaults, or undefined; the control API answers 400 with it. */
export function faultsProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'faults: expected an object';
  const faults = value as Record<string, unknown>;
  for (const key of Object.keys(faults)) {
    if (!['latencyMs', 'status', 'hang', 'truncate', 'body'].includes(key)) return `faults.${key}: unknown fault`;
  }
  if (faults.latencyMs !== undefined && (typeof faults.latencyMs !== 'number' || faults.latencyMs < 0)) {
    return 'latencyMs: expected a number >= 0';
  }
  return (
    ruleProblem('status', faults.status, { code: 'number' }) ??
    ruleProblem('hang', faults.hang, {}) ??
    ruleProblem('truncate', faults.truncate, {}) ??
    ruleProblem('body', faults.body, { base64: 'string' })
  );
}
