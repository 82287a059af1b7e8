import { describe, expect, it } from 'vitest';
import { createLogger, formatEvent, type LoggerOptions } from '../../src/daemon/log.js';

const NOW = Date.parse('2025-01-01T12:34:56.789Z');

function capture(options: Partial<LoggerOptions> = {}): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger({ write: (l) => lines.push(l), format: 'json', now: () => NOW, ...options }) };
}

describe('createLogger', () => {
  it('json: one object per line with time, level, event, msg, then the fields', () => {
    const { lines, log } = capture();
    log({
      level: 'info',
      event: 'apply',
      msg: 'applied: 1 file written',
      filesWritten: ['/etc/x'],
      error: new Error('boom'),
      time: 'ignored',
    });
    expect(lines).toEqual([
      '{"time":"2025-01-01T12:34:56.789Z","level":"info","event":"apply","msg":"applied: 1 file written","filesWritten":["/etc/x"],"error":"boom"}\n',
    ]);
  });

  it('json: a message with newlines stays on one line', () => {
    const { lines, log } = capture();
    log({ level: 'error', event: 'x', msg: 'a\nb\u2028c' });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.split('\n')).toHaveLength(2);
    expect(JSON.parse(lines[0]!).msg).toBe('a\nb\u2028c');
  });

  it('text: clock, level, message', () => {
    const { lines, log } = capture({ format: 'text' });
    log({ level: 'warn', event: 'metadata-error', msg: 'metadata: HTTP 503\n  retrying', failures: 2 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d warn {2}metadata: HTTP 503 retrying\n$/);
  });

  it('drops events below the level (info by default)', () => {
    const quiet = capture();
    quiet.log({ level: 'debug', event: 'unchanged', msg: 'metadata unchanged' });
    expect(quiet.lines).toEqual([]);
    const verbose = capture({ level: 'debug' });
    verbose.log({ level: 'debug', event: 'unchanged', msg: 'metadata unchanged' });
    expect(verbose.lines).toHaveLength(1);
    const errorsOnly = capture({ level: 'error' });
    errorsOnly.log({ level: 'warn', event: 'w', msg: 'w' });
    expect(errorsOnly.lines).toEqual([]);
  });

  it.each([
    ['debug', '<7>'],
    ['info', '<6>'],
    ['warn', '<4>'],
    ['error', '<3>'],
  ] as const)('journal: %s lines start with the syslog priority %s', (level, prefix) => {
    const { lines, log } = capture({ syslogPriority: true, level: 'debug' });
    log({ level, event: 'e', msg: 'm' });
    expect(lines[0]!.startsWith(`${prefix}{"time":`)).toBe(true);
  });
});

describe('formatEvent', () => {
  it('is what the logger writes, without the newline', () => {
    expect(formatEvent({ level: 'info', event: 'stop', msg: 'stopped (SIGTERM)' }, 'json', NOW)).toBe(
      '{"time":"2025-01-01T12:34:56.789Z","level":"info","event":"stop","msg":"stopped (SIGTERM)"}',
    );
  });
});
