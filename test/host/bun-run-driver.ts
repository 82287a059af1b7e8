// Run by Bun itself (test/host/run.test.ts): the Bun.spawn runner and watch on every shared case, as JSON on stdout.
import { bunGlobal } from '../../src/host/bun.js';
import { bunRun, bunWatch } from '../../src/host/bun-run.js';
import { RUN_CASES, WATCH_CASES, outcome, watchOutcome } from './run-cases.js';

const bun = bunGlobal();
if (bun === undefined) throw new Error('run this with bun');
const run = bunRun(bun);
const watch = bunWatch(bun);
const results: Record<string, unknown> = {};
for (const c of RUN_CASES) results[c.name] = await outcome(run, c);
const watched: Record<string, unknown> = {};
for (const c of WATCH_CASES) watched[c.name] = await watchOutcome(watch, c);
process.stdout.write(`${JSON.stringify({ run: results, watch: watched })}\n`);
