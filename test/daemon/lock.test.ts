import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { LOCK_PATH, parseLock, withLock } from '../../src/plan/lock.js';
import { createNodeHost, nodeFs } from '../../src/host/node.js';
import { createTestHost, vol } from '../helpers/host.js';

const ROOT = '/guest';
const LOCK = `${ROOT}${LOCK_PATH}`;

/** A /proc/<pid>/stat line as Linux writes it (the command name may hold spaces and parentheses). */
function procStat(pid: number, startTime: string, state = 'S', comm = 'node (eip) x'): string {
  const fields = [
    state,
    '1',
    String(pid),
    String(pid),
    '0',
    '-1',
    '4194560',
    '1000',
    '0',
    '0',
    '0',
    '10',
    '5',
    '0',
    '0',
    '20',
    '0',
    '11',
    '0',
    startTime,
    '1000000',
  ];
  return `${pid} (${comm}) ${fields.join(' ')}\n`;
}

function seedProcess(pid: number, startTime: string, state = 'S'): void {
  vol.mkdirSync(`/proc/${pid}`, { recursive: true });
  vol.writeFileSync(`/proc/${pid}/stat`, procStat(pid, startTime, state));
}

function lockText(): string | null {
  return vol.existsSync(LOCK) ? String(vol.readFileSync(LOCK, 'utf8')) : null;
}

beforeEach(() => {
  vol.reset();
  seedProcess(4242, '777');
});

describe('withLock', () => {
  it('writes the pid and start time while fn runs and removes the lock afterwards', async () => {
    const host = createTestHost();
    let during: string | null = null;
    const result = await withLock(host, ROOT, async () => {
      during = lockText();
      return 'done';
    });
    expect(result).toBe('done');
    expect(during).toBe('4242\n777\n');
    expect(lockText()).toBeNull();
  });

  it('refuses a second agent with a message naming the pid that holds the lock', async () => {
    seedProcess(5151, '900');
    const first = createTestHost();
    const second = createTestHost({ pid: 5151 });
    let ran = false;
    await withLock(first, ROOT, async () => {
      await expect(withLock(second, ROOT, async () => (ran = true))).rejects.toThrow(
        `another eip-agent is running: pid 4242 holds the lock ${LOCK}; wait for it to finish (or \`systemctl stop eip-agent\` if it is the service)`,
      );
      expect(lockText()).toBe('4242\n777\n');
    });
    expect(ran).toBe(false);
    expect(lockText()).toBeNull();
  });

  it('releases the lock when fn throws', async () => {
    const host = createTestHost();
    await expect(withLock(host, ROOT, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(lockText()).toBeNull();
  });

  it.each([
    [
      'a pid that no longer exists',
      '999\n123\n',
      () => undefined,
      'took over the lock /guest/run/eip-agent/lock from pid 999, which is no longer running',
    ],
    [
      'a pid reused by another process (start time differs)',
      '999\n123\n',
      () => seedProcess(999, '555'),
      'took over the lock /guest/run/eip-agent/lock from pid 999, which is no longer running',
    ],
    [
      'a zombie',
      '999\n123\n',
      () => seedProcess(999, '123', 'Z'),
      'took over the lock /guest/run/eip-agent/lock from pid 999, which is no longer running',
    ],
    [
      'our own pid (a restarted container)',
      '4242\n1\n',
      () => undefined,
      'took over the lock /guest/run/eip-agent/lock from pid 4242, which is no longer running',
    ],
    ['no pid at all', 'garbage\n', () => undefined, 'took over the lock /guest/run/eip-agent/lock, which held no pid'],
  ])('takes over a stale lock: %s', async (_name, content, seed, message) => {
    seed();
    vol.mkdirSync(`${ROOT}/run/eip-agent`, { recursive: true });
    vol.writeFileSync(LOCK, content);
    const said: string[] = [];
    const host = createTestHost();
    let during: string | null = null;
    await withLock(host, ROOT, async () => void (during = lockText()), { onTakeover: (m) => said.push(m) });
    expect(during).toBe('4242\n777\n');
    expect(said).toEqual([message]);
    expect(lockText()).toBeNull();
  });

  it('keeps a live holder whose start time matches, and one without a recorded start time', async () => {
    seedProcess(999, '123');
    vol.mkdirSync(`${ROOT}/run/eip-agent`, { recursive: true });
    for (const content of ['999\n123\n', '999\n']) {
      vol.writeFileSync(LOCK, content);
      await expect(withLock(createTestHost(), ROOT, async () => undefined)).rejects.toThrow('pid 999 holds the lock');
      expect(lockText()).toBe(content);
    }
  });

  it('does not remove a lock that someone else holds when it ends', async () => {
    const host = createTestHost();
    await withLock(host, ROOT, async () => {
      vol.writeFileSync(LOCK, '5151\n1\n');
    });
    expect(lockText()).toBe('5151\n1\n');
  });

  it('waits for a lock file whose pid is still being written', async () => {
    seedProcess(5151, '1');
    vol.mkdirSync(`${ROOT}/run/eip-agent`, { recursive: true });
    vol.writeFileSync(LOCK, '');
    const host = createTestHost({
      sleep: async () => {
        vol.writeFileSync(LOCK, '5151\n1\n');
      },
    });
    await expect(withLock(host, ROOT, async () => undefined)).rejects.toThrow('pid 5151 holds the lock');
  });
});

describe('parseLock', () => {
  it.each([
    ['123\n456\n', { pid: 123, startTime: '456' }],
    ['123\n', { pid: 123 }],
    ['123', { pid: 123 }],
    ['', undefined],
    ['0\n', undefined],
    ['-5\n', undefined],
    ['12a\n', undefined],
  ])('%j', (text, expected) => {
    expect(parseLock(text)).toEqual(expected);
  });
});

describe('the real file system', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eip-lock-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('createExclusive creates once, then reports the file exists', async () => {
    const path = join(dir, 'a', 'b', 'lock');
    expect(await nodeFs.createExclusive(path, 'one\n')).toBe(true);
    expect(await nodeFs.createExclusive(path, 'two\n')).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe('one\n');
  });

  it('two agents in this process: the second is refused with our real pid and start time', async () => {
    const host = createNodeHost();
    const content = readFileSync(`/proc/${process.pid}/stat`, 'utf8');
    const start = content.slice(content.lastIndexOf(')') + 2).split(' ')[19];
    await withLock(host, dir, async () => {
      expect(readFileSync(join(dir, LOCK_PATH), 'utf8')).toBe(`${process.pid}\n${start}\n`);
      // A second agent has another pid (its own pid in the lock would count as a leftover).
      await expect(withLock({ ...host, pid: 1 }, dir, async () => undefined)).rejects.toThrow(
        `pid ${process.pid} holds the lock`,
      );
    });
  });
});

describe('a lock that cannot be created', () => {
  it('is a one-line host error naming the path', async () => {
    vol.reset();
    const base = createTestHost().fs;
    const host = createTestHost({
      fs: {
        ...base,
        createExclusive: async () => {
          throw Object.assign(new Error("EACCES: permission denied, open '/guest/run/eip-agent/lock'"), {
            code: 'EACCES',
          });
        },
      },
    });
    let ran = false;
    await expect(withLock(host, ROOT, async () => (ran = true))).rejects.toThrow(
      `cannot create the lock ${LOCK}: EACCES: permission denied, open '/guest/run/eip-agent/lock' (run as root)`,
    );
    expect(ran).toBe(false);
  });
});

describe('the lock on Windows (no /proc; the lock survives reboots)', () => {
  const PROGRAM_DATA = 'C:\\ProgramData';
  const WIN_LOCK = `${PROGRAM_DATA}\\eip-agent\\lock`;
  const windowsHost = (running: readonly number[]) =>
    createTestHost({
      platform: 'win32',
      env: { ProgramData: PROGRAM_DATA },
      isRunning: (pid) => running.includes(pid),
    });

  it("lives in the agent's directory under %ProgramData%, not on the drive root", async () => {
    let during: string | null = null;
    await withLock(windowsHost([]), '/', async () => {
      during = vol.existsSync(WIN_LOCK) ? String(vol.readFileSync(WIN_LOCK, 'utf8')) : null;
    });
    expect(during).toMatch(/^4242\n/);
    expect(vol.existsSync(WIN_LOCK)).toBe(false);
  });

  it('takes over a lock left by a process that no longer runs (a reboot, a task killed at its time limit)', async () => {
    vol.mkdirSync(`${PROGRAM_DATA}\\eip-agent`, { recursive: true });
    vol.writeFileSync(WIN_LOCK, '777\n\n');
    const messages: string[] = [];
    expect(await withLock(windowsHost([]), '/', async () => 'ran', { onTakeover: (m) => messages.push(m) })).toBe(
      'ran',
    );
    expect(messages).toEqual([`took over the lock ${WIN_LOCK} from pid 777, which is no longer running`]);
  });

  it('refuses while the holder runs', async () => {
    vol.mkdirSync(`${PROGRAM_DATA}\\eip-agent`, { recursive: true });
    vol.writeFileSync(WIN_LOCK, '777\n\n');
    await expect(withLock(windowsHost([777]), '/', async () => 'ran')).rejects.toThrow(
      `another eip-agent is running: pid 777 holds the lock ${WIN_LOCK}`,
    );
  });
});
