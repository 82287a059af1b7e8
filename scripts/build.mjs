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
