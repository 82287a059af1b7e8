// Builds the bundled CLI once, so tests that run `eip-agent` as a user would (lab, CLI) use the real artefact, and the
// PowerShell host the Windows scripts run in (test/windows/engine.ts).
import { execFileSync } from 'node:child_process';
import { buildEngine } from './windows/engine.js';

export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  buildEngine();
}
