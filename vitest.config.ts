import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';
// @ts-expect-error plain ESM helper shared with the build script, no type declarations
import { precompileModule } from './scripts/hbs-precompile.mjs';

export default defineConfig({
  plugins: [
    {
      // Same contract as the esbuild plugin in scripts/build.mjs: a .hbs import is its precompiled spec.
      name: 'hbs-precompile',
      load(id) {
        if (!id.endsWith('.hbs')) return null;
        return precompileModule(readFileSync(id, 'utf8'));
      },
    },
  ],
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
