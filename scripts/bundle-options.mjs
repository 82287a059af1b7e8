// The esbuild options of every bundle of the agent's code (the CLI, the benchmarks), so they all
// load templates, plain script files and CommonJS dependencies the same way.
import { readFile } from 'node:fs/promises';
import { precompileModule } from './hbs-precompile.mjs';

/** .hbs imports become precompiled template specs. */
const handlebarsPlugin = {
  name: 'hbs-precompile',
  setup(b) {
    b.onLoad({ filter: /\.hbs$/ }, async (args) => ({
      contents: precompileModule(await readFile(args.path, 'utf8')),
      loader: 'js',
    }));
  },
};

/** Options for one ESM bundle of `entry` into `outfile`, for Node 20. */
export function bundleOptions(entry, outfile) {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    plugins: [handlebarsPlugin],
    // Plain script files (the Windows script's fixed logic) are imported as their text.
    loader: { '.ps1': 'text' },
    logLevel: 'warning',
    // Bundled CommonJS dependencies (handlebars...) use require() and may use __filename; give the ESM bundle both.
    banner: {
      js: [
        "import { createRequire as __eipCreateRequire } from 'node:module';",
        "import { fileURLToPath as __eipFileURLToPath } from 'node:url';",
        'const require = __eipCreateRequire(import.meta.url);',
        'const __filename = __eipFileURLToPath(import.meta.url);',
      ].join(' '),
    },
  };
}
