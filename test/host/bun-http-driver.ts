// Run by Bun itself (test/host/http-get.test.ts): the HTTP client over Bun.connect on every shared case, against the
// server whose base URL is the first argument, as JSON on stdout.
import { bunGlobal } from '../../src/host/bun.js';
import { bunConnect, httpClient } from '../../src/host/http-get.js';
import { HTTP_CASES, caseOutcome } from './http-cases.js';

const bun = bunGlobal();
const base = process.argv[2];
if (bun === undefined || base === undefined) throw new Error('run this with bun, the base URL as argument');
const get = httpClient(bunConnect((options) => bun.connect(options)));
const results: Record<string, unknown> = {};
for (const c of HTTP_CASES) results[c.name] = await caseOutcome(get, base, c);
process.stdout.write(`${JSON.stringify(results)}\n`);
