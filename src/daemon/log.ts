// The daemon's log: one JSON object per line for journald and log shippers, a short line for a person at a terminal.

/** Severity of a log event, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One thing that happened: a level, a stable event name machines can match, a sentence for people, and details. */
export interface LogEvent {
  level: LogLevel;
  event: string;
  msg: string;
  [field: string]: unknown;
}

/** `json`: one object per line; `text`: `HH:MM:SS level message`. */
export type LogFormat = 'json' | 'text';

/** Where and how the logger writes. */
export interface LoggerOptions {
  write(line: string): void;
  format: LogFormat;
  now(): number;
  /** Events below this level are dropped; default info. */
  level?: LogLevel;
  /**
   * Start each line with the syslog priority (`<6>`), which journald strips and records as the
   * entry's PRIORITY; only when stderr is connected to the journal (JOURNAL_STREAM).
   */
  syslogPriority?: boolean;
}

/** Writes LogEvents. */
export type Logger = (event: LogEvent) => void;

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const SYSLOG: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

function clock(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** The JSON form of a field value: errors by their message, everything else as JSON has it. */
function plain(value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}

/** Formats one event as one line (no newline inside, whatever the message holds). */
export function formatEvent(event: LogEvent, format: LogFormat, now: number): string {
  const { level, event: name, msg, ...fields } = event;
  if (format === 'text') return `${clock(now)} ${level.padEnd(5)} ${msg.replace(/\s*[\r\n]+\s*/g, ' ')}`;
  const extra = Object.fromEntries(Object.entries(fields).flatMap(([k, v]) => (k === 'time' ? [] : [[k, plain(v)]])));
  return JSON.stringify({ time: new Date(now).toISOString(), level, event: name, msg, ...extra });
}

/** A logger writing to options.write, one line per event at or above the level. */
export function createLogger(options: LoggerOptions): Logger {
  const min = RANK[options.level ?? 'info'];
  return (event) => {
    if (RANK[event.level] < min) return;
    const prefix = options.syslogPriority ? `<${SYSLOG[event.level]}>` : '';
    options.write(`${prefix}${formatEvent(event, options.format, options.now())}\n`);
  };
}
