// The files the agent reads, backs up and replaces, on the real file system (a temp --root): it never follows a
// link, never reads a FIFO or a device, stays inside --root, and keeps an original's mode and owner.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, main } from '../../src/cli/main.js';
import { createNodeHost } from '../../src/host/node.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
const SCRIPTS = 'etc/sysconfig/network-scripts';

let dir: string;
let root: string;
let outside: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'eip-files-'));
  root = join(dir, 'root');
  outside = join(dir, 'outside');
  mkdirSync(outside);
  cpSync(join(EXAMPLES, 'centos7-root'), root, { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function cli(command: string, ...extra: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const argv = [
    command,
    '--metadata-file',
    join(EXAMPLES, 'manual.json'),
    '--root',
    root,
    ...(command === 'apply' ? ['--no-runtime'] : []),
    ...extra,
  ];
  const code = await main(argv, createNodeHost(), { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

/** Every path under the root with its type and mode (the lock's directory in run/ aside), to show that nothing changed. */
function snapshot(at: string): string {
  return execFileSync('find', [at, '-path', join(at, 'run'), '-prune', '-o', '-printf', '%P %y %m %s\\n'], {
    encoding: 'utf8',
  })
    .split('\n')
    .sort()
    .join('\n');
}

function expectRefused(run: { code: number; out: string; err: string }, line: string): void {
  expect(run.code).toBe(EXIT.error);
  expect(run.out).toBe('');
  expect(run.err).toBe(`eip-agent: ${line}\n`);
}

describe('files the agent will not read or write', () => {
  it.each(['plan', 'apply'])(
    '%s refuses a symlink planted at ifcfg-eth1, without showing or copying its target',
    async (command) => {
      writeFileSync(join(outside, 'v1'), 'SECRET=1\n', { mode: 0o600 });
      symlinkSync(join(outside, 'v1'), join(root, SCRIPTS, 'ifcfg-eth1'));
      const before = snapshot(root);
      const run = await cli(command);
      expectRefused(
        run,
        `host: ${join(root, SCRIPTS, 'ifcfg-eth1')} is a symbolic link: the agent never follows a link for a file it reads, backs up or replaces; replace it with a regular file or remove it`,
      );
      expect(run.err).not.toContain('SECRET');
      expect(snapshot(root)).toBe(before);
      expect(existsSync(join(root, SCRIPTS, 'ifcfg-eth1.bak'))).toBe(false);
    },
  );

  it('apply refuses a directory symlink that leads out of --root, and writes nothing outside it', async () => {
    rmSync(join(root, 'etc/sysctl.d'), { recursive: true, force: true });
    symlinkSync(outside, join(root, 'etc/sysctl.d'));
    const run = await cli('apply');
    expect(run.code).toBe(EXIT.error);
    expect(run.err).toMatch(
      /^eip-agent: host: .*\/etc\/sysctl\.d\/99-zz-eip-agent\.conf: .*\/etc\/sysctl\.d leads outside --root .* through a symbolic link: refusing to read or write there\n$/,
    );
    expect(execFileSync('find', [outside, '-mindepth', '1'], { encoding: 'utf8' })).toBe('');
  });

  it('plan refuses a FIFO at an ifcfg path at once instead of hanging', async () => {
    execFileSync('mkfifo', [join(root, SCRIPTS, 'ifcfg-eth1')]);
    expectRefused(
      await cli('plan'),
      `host: ${join(root, SCRIPTS, 'ifcfg-eth1')} is a FIFO, not a regular file: refusing to read it; remove it or give the path of a file`,
    );
  });

  it('plan refuses a link to /dev/zero (no endless read)', async () => {
    symlinkSync('/dev/zero', join(root, SCRIPTS, 'ifcfg-eth1'));
    expect((await cli('plan')).err).toContain('is a symbolic link');
  });

  it('plan refuses a file over 1 MiB at an ifcfg path', async () => {
    writeFileSync(join(root, SCRIPTS, 'ifcfg-eth1'), 'x'.repeat(1024 * 1024 + 1));
    expectRefused(
      await cli('plan'),
      `host: ${join(root, SCRIPTS, 'ifcfg-eth1')} is larger than 1 MiB: refusing to read it`,
    );
  });

  it('plan refuses a directory at an ifcfg path', async () => {
    mkdirSync(join(root, SCRIPTS, 'ifcfg-eth1'));
    expectRefused(
      await cli('plan'),
      `host: ${join(root, SCRIPTS, 'ifcfg-eth1')} is a directory, not a regular file: refusing to read it; remove it or give the path of a file`,
    );
  });
});

describe('modes of originals', () => {
  it("the backup keeps the original's mode; rollback --original puts the original back with it", async () => {
    const eth0 = join(root, SCRIPTS, 'ifcfg-eth0');
    const original = readFileSync(eth0, 'utf8');
    chmodSync(eth0, 0o600);
    const apply = await cli('apply');
    expect(apply.code, apply.err).toBe(EXIT.ok);
    expect(statSync(`${eth0}.bak`).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${eth0}.bak`, 'utf8')).toBe(original);
    expect(statSync(eth0).mode & 0o777).toBe(0o644);

    let out = '';
    const code = await main(['rollback', '--original', '--root', root], createNodeHost(), {
      out: (t) => (out += t),
      err: (t) => (out += t),
    });
    expect(code, out).toBe(EXIT.ok);
    expect(readFileSync(eth0, 'utf8')).toBe(original);
    expect(statSync(eth0).mode & 0o777).toBe(0o600);
    expect(existsSync(`${eth0}.bak`)).toBe(false);
  });
});
