// The daemon's two pure parts: which metadata read a poll makes, and when drift is repaired at once.
import { describe, expect, it } from 'vitest';
import { DRIFT_WINDOW_MS, DriftGuard, MAX_REPAIRS_PER_WINDOW } from '../../src/daemon/drift-guard.js';
import { COMPLETE_READ_MS, FULL_READ_MS, afterListings, readKind } from '../../src/daemon/read-schedule.js';

describe('readKind', () => {
  const last = { at: 1_000_000, completeAt: 1_000_000 };

  it.each([
    ['the first poll', { now: 0, last: undefined, settled: false, drifted: false }, 'complete'],
    ['settled, a second after a read', { now: last.at + 1000, last, settled: true, drifted: false }, 'listings'],
    [
      'settled, FULL_READ_MS after a read',
      { now: last.at + FULL_READ_MS, last, settled: true, drifted: false },
      'refresh',
    ],
    [
      'not settled (a removal waits, or nothing applied)',
      { now: last.at + 1000, last, settled: false, drifted: false },
      'refresh',
    ],
    ['drift seen', { now: last.at + 1000, last, settled: true, drifted: true }, 'refresh'],
    [
      'COMPLETE_READ_MS after the complete read',
      {
        now: last.completeAt + COMPLETE_READ_MS,
        last: { at: last.completeAt + COMPLETE_READ_MS - FULL_READ_MS, completeAt: last.completeAt },
        settled: true,
        drifted: false,
      },
      'complete',
    ],
  ] as const)('%s: %s', (_what, input, kind) => {
    expect(readKind(input)).toBe(kind);
  });

  it('keeps the listings poll while in sync even when a complete read is due: it comes with the next full read', () => {
    const recent = { at: last.completeAt + COMPLETE_READ_MS - 1000, completeAt: last.completeAt };
    const now = last.completeAt + COMPLETE_READ_MS + 1000;
    expect(readKind({ now, last: recent, settled: true, drifted: false })).toBe('listings');
    expect(afterListings({ now, last: recent })).toBe('complete');
  });
});

describe('DriftGuard', () => {
  it('reacts at once until MAX_REPAIRS_PER_WINDOW repairs in DRIFT_WINDOW_MS, says so once, and reacts again when they age out', () => {
    const guard = new DriftGuard();
    for (let i = 0; i < MAX_REPAIRS_PER_WINDOW - 1; i++) {
      guard.repaired(i * 1000);
      expect(guard.react(i * 1000)).toEqual({ react: true });
    }
    guard.repaired(5000);
    const first = guard.react(5000);
    expect(first).toMatchObject({ react: false });
    expect((first as { flapping?: string }).flapping).toMatch(/^5 repairs in the last 60 s: something keeps changing/);
    expect(guard.react(6000)).toEqual({ react: false });
    expect(guard.react(DRIFT_WINDOW_MS + 1001)).toEqual({ react: true });
    expect(guard.recent(DRIFT_WINDOW_MS + 1001)).toBe(MAX_REPAIRS_PER_WINDOW - 2);
  });
});
