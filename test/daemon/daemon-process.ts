// `eip-agent run` as a process in a lab guest, its JSON log parsed as it comes, and the small helpers the daemon
// lab tests share (server B's tree, mtimes of a guest root, addresses of an interface).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { daemonCommand } from '../lab/agent-command.js';
import type { Lab } from '../lab/vpc.js';

/** One line of the daemon's JSON log. */
export interface DaemonEvent {
  event: string;
  level: string;
  msg: string;
  time?: string;
  filesWritten?: string[];
  runtimeApplied?: string[];
  pendingRemovals?: number;
  failedChecks?: string[];
  failures?: number;
  [field: string]: unknown;
}

/** How a daemon is started besides its guest and config file. */
export interface DaemonOptions {
  /** `--interval` in seconds; default 1. */
  interval?: number;
  /** Added to the daemon's environment (e.g. a PATH with wrappers). */
  env?: Record<string, string>;
}

/** The first executable `name` on the test process's PATH, or `name` itself. */
export function which(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return name;
}

/** Resolved once, so that a PATH given to a daemon (wrappers) does not change which `ip` starts it. */
const IP = which('ip');

/** A daemon running in a guest namespace, its JSON log parsed as it comes. */
export class Daemon {
  readonly events: DaemonEvent[] = [];
  /** stderr lines that were not JSON (a crash trace), kept for messages. */
  readonly stray: string[] = [];
  readonly exited: Promise<number | null>;
  readonly interval: number;
  private readonly child: ChildProcess;
  private rest = '';
  private done = false;

  constructor(lab: Lab, guest: string, config: string, options: DaemonOptions = {}) {
    this.interval = options.interval ?? 1;
    // As the unit starts it: the release executable's engine settings, the development CLI's node flags.
    const daemon = daemonCommand();
    this.child = spawn(
      IP,
      [
        'netns',
        'exec',
        lab.guestNs(guest),
        ...daemon.argv,
        'run',
        '--root',
        lab.guestRoot(guest),
        '--config',
        config,
        '--interval',
        String(this.interval),
        '--log-format',
        'json',
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, ...daemon.env, EIP_AGENT_DEBUG: '1', ...options.env },
      },
    );
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (this.rest + chunk).split('\n');
      this.rest = lines.pop() ?? '';
      for (const line of lines) this.take(line);
    });
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code) => {
        if (this.rest !== '') this.take(this.rest);
        this.rest = '';
        this.done = true;
        resolve(code);
      }),
    );
  }

  private take(line: string): void {
    try {
      this.events.push(JSON.parse(line) as DaemonEvent);
    } catch {
      this.stray.push(line);
    }
  }

  /** `ip netns exec` execs node, so this is the agent's own pid. */
  get pid(): number {
    return this.child.pid!;
  }

  /** Whether the process has exited and its log has been read to the end. */
  get finished(): boolean {
    return this.done;
  }

  /** Events named `event` from index `from` on. */
  count(event: string, from = 0): number {
    return this.events.slice(from).filter((e) => e.event === event).length;
  }

  /** The log so far, one short line per event, for failure messages. */
  describe(): string {
    return [...this.events.map((e) => `${e.time ?? ''} ${e.event}: ${e.msg}`), ...this.stray].join('\n');
  }

  async waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await predicate())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log:\n${this.describe()}`);
      await delay(50);
    }
  }

  /** Waits for the first event at index `from` or later that matches; returns it and its index. */
  async waitForEvent(
    what: string,
    from: number,
    match: (e: DaemonEvent) => boolean,
    timeoutMs = 30_000,
  ): Promise<{ event: DaemonEvent; index: number }> {
    let found = -1;
    await this.waitFor(
      what,
      () => {
        found = this.events.findIndex((e, i) => i >= from && match(e));
        return found >= 0;
      },
      timeoutMs,
    );
    return { event: this.events[found]!, index: found };
  }

  signal(name: NodeJS.Signals): void {
    if (!this.done) this.child.kill(name);
  }

  /** Sends `name` (SIGKILL unless told) and waits for the exit. */
  async stop(name: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    this.signal(name);
    return this.exited;
  }
}

/** Server B and server A without 10.0.0.8: the lab's fixtures, under the names these tests use. */
export {
  serverBTree as serverB,
  manualTreeWithout8 as serverAWithout8,
  SERVER_B_MAC as MAC_B,
} from '../lab/fixtures.js';

/** mtime of every file under dir, by path relative to it. */
export function mtimes(dir: string, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {};
  if (!existsSync(join(dir, prefix))) return out;
  for (const name of readdirSync(join(dir, prefix))) {
    const rel = join(prefix, name);
    const stat = statSync(join(dir, rel));
    if (stat.isDirectory()) Object.assign(out, mtimes(dir, rel));
    else out[rel] = stat.mtimeMs;
  }
  return out;
}

/** The IPv4 addresses of `dev` in the guest, `ip/prefix`, in the kernel's order. */
export async function addresses(lab: Lab, guest: string, dev: string): Promise<string[]> {
  const result = await lab.exec(lab.guestNs(guest), ['ip', '-j', '-4', 'address', 'show', 'dev', dev]);
  const [link] = JSON.parse(result.stdout || '[]') as { addr_info: { local: string; prefixlen: number }[] }[];
  return (link?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
}
