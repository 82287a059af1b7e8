import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';
// @ts-expect-error plain ESM helper shared with the build script, no type declarations
import { precompileModule } from './scripts/hbs-precompile.mjs';
import { releaseExecutable } from './test/release/paths.js';

/** The tests that run the agent in network namespaces: run against the development CLI and the release executable. */
const LAB = ['test/lab/**/*.test.ts', 'test/daemon/*-lab.test.ts'];

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
    {
      // As esbuild's text loader in scripts/bundle-options.mjs: a plain script file is imported as its text.
      name: 'script-text',
      load(id) {
        if (!id.endsWith('.ps1')) return null;
        return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
      },
    },
  ],
  test: {
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'dev', include: ['test/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'release',
          include: LAB,
          exclude: ['test/lab/topology.test.ts'],
          env: { EIP_AGENT_EXECUTABLE: releaseExecutable() },
        },
      },
    ],
  },
});
