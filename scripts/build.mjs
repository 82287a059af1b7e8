// Bundles the CLI into one file so that a cold start loads one module, and inlines the templates.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/eip-agent.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  loader: { '.hbs': 'text' },
  sourcemap: 'linked',
  logLevel: 'warning',
  // Bundled CommonJS dependencies (handlebars, yargs' helpers) call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __eipCreateRequire } from 'node:module'; const require = __eipCreateRequire(import.meta.url);" },
});
