// The gratuitous ARP after an apply: one detached shell per NIC, and that shell's arping per address, with every value
// an argument (the shell is run for real here, over a recording arping).
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RuntimeChange } from '../../src/plan/plan.js';
import { ANNOUNCE_SCRIPT, announceAddresses } from '../../src/targets/linux/target.js';
import { createTestHost } from '../helpers/host.js';

function added(ifname: string, cidr: string): RuntimeChange {
  return {
    kind: 'address',
    summary: `add ${cidr} to ${ifname}`,
    owns: { kind: 'address', item: { ifname, mac: '52:54:00:00:00:01', cidr } },
  };
}

describe('announceAddresses', () => {
  it('starts one detached shell per NIC with its added addresses, and none for /32s, removals and other changes', () => {
    const started: string[][] = [];
    const host = createTestHost({ runDetached: (argv) => void started.push([...argv]) });
    const removed: RuntimeChange = {
      kind: 'address',
      summary: 'remove 10.0.0.9/24 from eth1',
      releases: { kind: 'address', item: { ifname: 'eth1', mac: '52:54:00:00:00:01', cidr: '10.0.0.9/24' } },
    };
    announceAddresses(host, [
      added('eth0', '10.0.0.3/24'),
      added('eth1', '10.0.1.7/24'),
      added('eth0', '10.0.0.4/24'),
      added('eth1', '203.0.113.9/32'),
      removed,
      { kind: 'sysctl', summary: 'set rp_filter' },
    ]);
    expect(started).toEqual([
      ['sh', '-c', ANNOUNCE_SCRIPT, 'eip-agent-announce', 'eth0', '10.0.0.3', '10.0.0.4'],
      ['sh', '-c', ANNOUNCE_SCRIPT, 'eip-agent-announce', 'eth1', '10.0.1.7'],
    ]);
  });

  it('starts nothing when no address was added', () => {
    const started: string[][] = [];
    announceAddresses(createTestHost({ runDetached: (argv) => void started.push([...argv]) }), [
      added('eth1', '203.0.113.9/32'),
    ]);
    expect(started).toEqual([]);
  });

  describe('the shell', () => {
    let dir: string | undefined;
    afterEach(() => {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    it('runs arping once per address, each value one argument that the shell never evaluates', () => {
      dir = mkdtempSync(join(tmpdir(), 'eip-announce-'));
      const log = join(dir, 'log');
      const arping = join(dir, 'arping');
      // One line per call: the argument count, then each argument in brackets, written at once (the calls run side
      // by side, and one write per piece let their lines interleave).
      writeFileSync(
        arping,
        `#!/bin/sh\nline="$#"\nfor a in "$@"; do line="$line [$a]"; done\nprintf '%s\\n' "$line" >> '${log}'\n`,
      );
      chmodSync(arping, 0o755);
      const marker = join(dir, 'evaluated');
      execFileSync(
        'sh',
        ['-c', ANNOUNCE_SCRIPT, 'eip-agent-announce', 'eth1', '10.0.0.7', `$(touch ${marker})`, '10.0.0.8 ; touch x'],
        { env: { PATH: `${dir}:/usr/bin:/bin` }, cwd: dir },
      );
      const lines = readFileSync(log, 'utf8').trim().split('\n').sort();
      expect(lines).toEqual(
        [
          `7 [-q] [-U] [-c] [1] [-I] [eth1] [$(touch ${marker})]`,
          '7 [-q] [-U] [-c] [1] [-I] [eth1] [10.0.0.7]',
          '7 [-q] [-U] [-c] [1] [-I] [eth1] [10.0.0.8 ; touch x]',
        ].sort(),
      );
      expect(() => readFileSync(marker)).toThrow();
      expect(() => readFileSync(join(dir!, 'x'))).toThrow();
    });
  });
});
