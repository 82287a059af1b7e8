// Bundles the CLI into one file (a Windows guest needs only bin/ and this file), with the templates
// precompiled in; modules imported lazily are evaluated only when a command needs them.
import { build } from 'esbuild';
import { bundleOptions } from './bundle-options.mjs';

await build({ ...bundleOptions('src/cli/main.ts', 'dist/eip-agent.js'), sourcemap: 'linked' });
