// Whether the network lab can run here, and what a test file does when it cannot.
import { describe, it } from 'vitest';
import { labAvailable } from './vpc.js';

const availability = labAvailable();

/** True when namespaces, nftables and ping are usable (root). */
export const labOk = availability.ok;

/**
 * Registers the "lab unavailable" outcome for a test file: in CI a missing lab is a broken runner
 * and fails; elsewhere the lab tests are skipped with the reason printed.
 */
export function requireLab(suite: string): void {
  if (availability.ok) return;
  const { reason } = availability;
  if (process.env.CI === 'true') {
    describe(suite, () => {
      it('has a network lab in CI', () => {
        throw new Error(`the network lab cannot run here: ${reason}`);
      });
    });
  } else {
    console.warn(`skipping ${suite}: ${reason}`);
  }
}
