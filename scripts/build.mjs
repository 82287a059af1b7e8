// Bundles the CLI into one file (a Windows guest needs only bin/ and this file), with the templates
// precompiled in; modules imported lazily are evaluated only when a command needs them.
import { readFile } from 'node:fs/promises';
import { build } from 'esbuild';
import { precompileModule } from './hbs-precompile.mjs';

/** .hbs imports become precompiled template specs. */
const handlebarsPlugin = {
  name: 'hbs-precompile',
  setup(b) {
    b.onLoad({ filter: /\.hbs$/ }, async (args) => ({ contents: precompileModule(await readFile(args.path, 'utf8')), loader: 'js' }));
  },
};

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/eip-agent.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  plugins: [handlebarsPlugin],
  sourcemap: 'linked',
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
});
