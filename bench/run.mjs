// `npm run bench`: bundles bench/main.ts (which imports src/ directly) the way scripts/build.mjs bundles the CLI, then
// runs it. The bundle also serves as the entry of the helper processes the bench starts inside its namespaces.
import { build } from 'esbuild';
import { bundleOptions } from '../scripts/bundle-options.mjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), `eipb${process.pid}-bundle-`));
const outfile = join(dir, 'bench.mjs');
try {
  await build(bundleOptions(join(repo, 'bench', 'main.ts'), outfile));
  process.env.EIP_BENCH_REPO = repo;
  const bench = await import(pathToFileURL(outfile).href);
  // Also on SIGINT/SIGTERM, which end the process before `finally` runs.
  bench.registerCleanup(() => rmSync(dir, { recursive: true, force: true }));
  process.exitCode = await bench.runBench(process.argv.slice(2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
