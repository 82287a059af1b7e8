// Builds the bundled CLI once, so tests that run `eip-agent` as a user would (lab, CLI) use the real artefact.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
}
