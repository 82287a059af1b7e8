import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempName, writeFileAtomic } from '../../src/host/atomic-write.js';

describe('writeFileAtomic', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eip-atomic-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the file with its mode (whatever the umask) and leaves no temp file', async () => {
    const path = join(dir, 'etc/sysconfig/network-scripts/ifcfg-eth0');
    await writeFileAtomic(path, 'DEVICE=eth0\n', 0o644);
    expect(readFileSync(path, 'utf8')).toBe('DEVICE=eth0\n');
    expect(statSync(path).mode & 0o777).toBe(0o644);
    await writeFileAtomic(join(dir, 'state.json'), '{}\n', 0o600);
    expect(statSync(join(dir, 'state.json')).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(dir, 'etc/sysconfig/network-scripts'))).toEqual(['ifcfg-eth0']);
  });

  it("creates missing directories 0755 under the service's UMask=0077, and leaves existing ones alone", async () => {
    const existing = join(dir, 'etc');
    await writeFileAtomic(join(existing, 'keep'), 'x\n', 0o644);
    (await import('node:fs')).chmodSync(existing, 0o750);
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(join(dir, 'etc/sysconfig/network-scripts/ifcfg-eth0'), 'DEVICE=eth0\n', 0o644);
    } finally {
      process.umask(old);
    }
    expect(statSync(join(dir, 'etc/sysconfig')).mode & 0o777).toBe(0o755);
    expect(statSync(join(dir, 'etc/sysconfig/network-scripts')).mode & 0o777).toBe(0o755);
    expect(statSync(existing).mode & 0o777).toBe(0o750);
  });

  it('replaces an existing file whole', async () => {
    const path = join(dir, 'ifcfg-eth1');
    writeFileSync(path, 'old\n');
    await writeFileAtomic(path, 'new\n', 0o644);
    expect(readFileSync(path, 'utf8')).toBe('new\n');
  });

  it('removes temp files a killed writer left, and never one of a live writer', async () => {
    // pid 2**22 + 1 is above the kernel's pid_max limit, so it is never alive.
    const dead = `.ifcfg-eth0.eip-agent-tmp-${2 ** 22 + 1}-0`;
    const live = `.ifcfg-eth0.eip-agent-tmp-${process.pid}-999`;
    writeFileSync(join(dir, dead), 'half');
    writeFileSync(join(dir, live), 'in progress');
    await writeFileAtomic(join(dir, 'ifcfg-eth0'), 'DEVICE=eth0\n', 0o644);
    expect(readdirSync(dir).sort()).toEqual([live, 'ifcfg-eth0'].sort());
  });

  it('removes a temp file whose pid now belongs to a process that started after it was written (a reused pid)', async () => {
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const reused = join(dir, `.ifcfg-eth0.eip-agent-tmp-${other.pid}-0`);
      writeFileSync(reused, 'half');
      const past = new Date(Date.now() - 60_000);
      utimesSync(reused, past, past);
      await writeFileAtomic(join(dir, 'ifcfg-eth0'), 'DEVICE=eth0\n', 0o644);
      expect(readdirSync(dir)).toEqual(['ifcfg-eth0']);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it.each(['ifcfg-eth0', 'route-eth1', 'rule-eth1', '99-zz-eip-agent.conf'])(
    'names the temp file of %s so that no initscripts or sysctl.d glob matches it',
    (base) => {
      const name = tempName(base, 1234, 5);
      expect(name).toBe(`.${base}.eip-agent-tmp-1234-5`);
      for (const glob of [/^ifcfg-/, /^route-/, /^rule-/, /\.conf$/]) expect(glob.test(name)).toBe(false);
    },
  );
});
