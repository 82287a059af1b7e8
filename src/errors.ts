/** The failure domains; the CLI maps them to exit codes and one-line messages. */
export type ErrorDomain = 'metadata' | 'validation' | 'config' | 'apply' | 'verify' | 'host';

/** Base of every error the agent reports to a user: one line that names what and where. */
export class AgentError extends Error {
  constructor(
    readonly domain: ErrorDomain,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AgentError';
  }

  /**
   * The line the CLI prints, e.g. `metadata: mac: not found (404)`. (Not `line`: the Bun runtime of the release
   * executable gives every error an own `line` property, the source line number, which would shadow a getter.)
   */
  get userLine(): string {
    return `${this.domain}: ${this.message}`;
  }
}

/** Reading the instance metadata failed (HTTP, timeout, truncation, missing required item, bad JSON file). */
export class MetadataError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('metadata', message, options);
  }
}

/** JSON string form that also escapes the line separators JSON leaves raw, so a message stays one line. */
export function quote(value: string): string {
  return JSON.stringify(value).replace(
    /[\u0085\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Longest part of a value a message shows: an error is always one short line, whatever the input. */
export const SHOWN_CHARS = 64;

/** quote() of at most SHOWN_CHARS characters of value, saying how long it really is when cut. */
export function quoteShort(value: string): string {
  const chars = [...value];
  if (chars.length <= SHOWN_CHARS) return quote(value);
  return `${quote(chars.slice(0, SHOWN_CHARS).join(''))}... (${chars.length} characters)`;
}

/** A metadata value is unusable; `path` is the metadata path, `value` the offending value. */
export class ValidationError extends AgentError {
  constructor(
    readonly path: string,
    readonly value: string | undefined,
    reason: string,
  ) {
    super('validation', value === undefined ? `${path}: ${reason}` : `${path}: ${quoteShort(value)} ${reason}`);
  }
}

/** Bad options or configuration file. */
export class ConfigError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('config', message, options);
  }
}

/** Applying the plan failed; what was changed has been undone where possible. */
export class ApplyError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('apply', message, options);
  }
}

/** A NIC the metadata lists is not on the system (yet, or any more): nothing can be applied until it is, or the metadata drops it. */
export class MissingNicError extends ApplyError {}

/** The host cannot do what was asked (missing binary, missing privileges). */
export class HostError extends AgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('host', message, options);
  }
}
