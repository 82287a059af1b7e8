// `node scripts/record-bytecode-order.mjs`: records the order the release daemon's bytecode runs in (a first pass
// over the bench's 8 x 30 guest, then polls in sync) into scripts/bytecode-order.txt, which `npm run release` passes
// to Bun's --bytecode-order. Needs what `npm run bench` needs (root, network namespaces); takes about a minute.
// Re-record after large changes to the daemon's code; an older profile still applies, only less well.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const scratch = mkdtempSync(join(tmpdir(), 'eip-bytecode-order-'));
const recorded = join(scratch, 'daemon.txt');
try {
  execFileSync(process.execPath, [join(repo, 'scripts', 'release.mjs')], { stdio: 'inherit' });
  execFileSync(process.execPath, [join(repo, 'bench', 'run.mjs'), '--only', 'daemon', '--quick'], {
    stdio: 'inherit',
    env: { ...process.env, EIP_BENCH_FOOTPRINT: 'release', EIP_BENCH_BYTECODE_ORDER_OUT: recorded },
  });
  if ((statSync(recorded, { throwIfNoEntry: false })?.size ?? 0) === 0)
    throw new Error(`the daemon wrote no profile to ${recorded}`);
  copyFileSync(recorded, join(repo, 'scripts', 'bytecode-order.txt'));
  console.log('recorded scripts/bytecode-order.txt; run `npm run release` to build with it');
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
