#!/usr/bin/env node
// The installed entry point: the bundled CLI built by `npm ci` (prepare) or `npm run build`.
import { main } from '../dist/eip-agent.js';

process.exitCode = await main(process.argv.slice(2));
