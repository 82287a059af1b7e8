import { ConfigError } from '../../errors.js';
import { UTF8_BOM } from './constants.js';

/**
 * Defence in depth for scripts that run as SYSTEM. The model has validated every value already; this
 * checks them again, by kind, right before they reach a template, with allow-lists that leave nothing
 * PowerShell or cmd.exe gives a meaning to: no quote of any kind, no `$`, backtick, `%`, `^`, `!`,
 * `&`, `|`, `<`, `>`, `;`, parenthesis, space or non-ASCII character.
 */
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
const MAC = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$/;
const MAC_KEY = /^[0-9A-F]{12}$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** http(s)://host[:port]/path with the characters a metadata URL needs and nothing else. */
const URL_RE = /^https?:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~/-]*)?$/;
/** The only characters any interpolated script value may contain. */
const SAFE_TOKEN = /^[A-Za-z0-9.:/_~ -]*$/;
/** A Windows absolute path for a single-quoted PowerShell string: drive, backslashes, and the characters install paths use. */
// Each component ends with its backslash, and only the last may lack one: one way to match, so linear time
// (an optional separator inside a repeated group backtracks exponentially on a path with one bad character).
const WINDOWS_PATH = /^[A-Za-z]:\\(?:[A-Za-z0-9 ._()~+-]+\\)*[A-Za-z0-9 ._()~+-]*$/;

function refuse(what: string, value: unknown, expected: string): never {
  throw new Error(
    `render: windows: ${what}: refusing to put ${JSON.stringify(value)} in a script (expected ${expected})`,
  );
}

/** A dotted-quad IPv4 address, checked again before it reaches a template. */
export function ipv4(what: string, value: string): string {
  if (!IPV4.test(value)) refuse(what, value, 'an IPv4 address');
  return value;
}

/** A colon-separated MAC, as the metadata lists it. */
export function mac(what: string, value: string): string {
  if (!MAC.test(value)) refuse(what, value, 'a MAC address');
  return value;
}

/** The 12 upper-case hex digits of a MAC: how the scripts compare metadata and Get-NetAdapter spellings. */
export function macKey(value: string): string {
  const key = value.replace(/[-:]/g, '').toUpperCase();
  if (!MAC_KEY.test(key)) refuse('MAC', value, 'a MAC address');
  return key;
}

/** An identifier (instance id); empty when absent. */
export function id(what: string, value: string | undefined): string {
  if (value === undefined) return '';
  if (!ID.test(value)) refuse(what, value, 'an identifier');
  return value;
}

/** A non-negative integer up to `max`. */
export function int(what: string, value: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) refuse(what, value, `an integer from 0 to ${max}`);
  return value;
}

/** The metadata URL the scripts check at the end; a config value, so a bad one is the user's to fix. */
export function metadataUrl(value: string): string {
  if (!URL_RE.test(value)) {
    throw new ConfigError(
      `metadata URL ${JSON.stringify(value)} cannot be used by the Windows scripts: ` +
        `only http(s)://host[:port]/path with letters, digits and . _ ~ / - is allowed`,
    );
  }
  return value;
}

/** A Windows absolute path (node.exe, the bundled agent); a user-given value, so a bad one is a ConfigError. */
export function windowsPath(what: string, value: string): string {
  if (!WINDOWS_PATH.test(value)) {
    throw new ConfigError(
      `${what} ${JSON.stringify(value)} must be an absolute Windows path (C:\\...) of letters, digits, spaces and . _ ( ) ~ + -`,
    );
  }
  return value;
}

/**
 * Walks template data and throws on any string that is not a safe token (or, where `paths` names the
 * key, a Windows path) and on any number that is not a safe integer. Catches a field added to the data
 * without a check of its own.
 */
export function assertSafeData(where: string, data: unknown, paths: ReadonlySet<string> = new Set(), key = ''): void {
  if (typeof data === 'string') {
    if (paths.has(key) ? !WINDOWS_PATH.test(data) : !SAFE_TOKEN.test(data))
      refuse(`${where}.${key}`, data, 'a validated value');
  } else if (typeof data === 'number') {
    if (!Number.isSafeInteger(data)) refuse(`${where}.${key}`, data, 'an integer');
  } else if (typeof data === 'boolean') {
    return;
  } else if (Array.isArray(data)) {
    for (const item of data) assertSafeData(where, item, paths, key);
  } else if (typeof data === 'object' && data !== null) {
    for (const [k, v] of Object.entries(data)) assertSafeData(where, v, paths, k);
  } else {
    refuse(`${where}.${key}`, data, 'a string, integer or boolean');
  }
}

/** Throws unless a rendered script is printable ASCII plus tab, CR and LF (after an optional BOM). */
export function assertAsciiScript(path: string, content: string): void {
  const text = content.startsWith(UTF8_BOM) ? content.slice(1) : content;
  const bad = /[^\t\r\n\x20-\x7e]/.exec(text);
  if (bad !== null) {
    const line = text.slice(0, bad.index).split('\n').length;
    throw new Error(
      `render: ${path}:${line}: refusing to write a non-ASCII or control character ${JSON.stringify(bad[0])}`,
    );
  }
}
