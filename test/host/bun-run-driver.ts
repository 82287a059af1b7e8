// Run by Bun itself (test/host/run.test.ts): the Bun.spawn runner on every shared case, as JSON on stdout.
import { bunRun, bunRuntime } from '../../src/host/bun-run.js';
import { RUN_CASES, outcome } from './run-cases.js';

const bun = bunRuntime();
if (bun === undefined) throw new Error('run this with bun');
const run = bunRun(bun);
const results: Record<string, unknown> = {};
for (const c of RUN_CASES) results[c.name] = await outcome(run, c);
process.stdout.write(`${JSON.stringify(results)}\n`);
