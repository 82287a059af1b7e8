// The pieces the daemon's lab tests share: metadata trees of the manual's guest, the live state and files of a guest
// as comparable values, and a lab per scenario whose daemons are killed at teardown whatever happens.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll } from 'vitest';
import { STATE_PATH } from '../../src/plan/record.js';
import { LOCK_PATH } from '../../src/plan/lock.js';
import { controlEmulator, type MetadataFaults } from '../../src/sandbox/emulator.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { isBootStandIn } from '../../src/sandbox/guest-root.js';
import { startLab, type Lab, type LabGuestSpec } from '../lab/vpc.js';
import { Daemon, type DaemonEvent, type DaemonOptions } from './daemon-process.js';

export const MAC_A0 = '52:54:00:8A:7A:64';
export const MAC_A1 = '20:90:6F:F7:93:2E';

// ---------------------------------------------------------------------------------------------------------------
// Trees

/** One `local-ipv4s/<ip>/` directory in the manual's subnet, with a NAT EIP when given. */
export function addr(publicIp?: string): MetaTree {
  const dir: MetaTree = { gateway: '10.0.0.1', 'subnet-mask': '255.255.255.0' };
  if (publicIp !== undefined) Object.assign(dir, { 'public-ipv4': publicIp, 'public-ipv4-mode': 'NAT' });
  return dir;
}

export function macsOf(tree: MetaTree): MetaTree {
  return ((tree.network as MetaTree).interfaces as MetaTree).macs as MetaTree;
}

/** `tree` (mutated) with `add` added to and `drop` removed from the NIC `mac`'s addresses. */
export function withAddresses(
  tree: MetaTree,
  mac: string,
  add: Record<string, MetaTree>,
  drop: readonly string[] = [],
): MetaTree {
  const ips = (macsOf(tree)[mac] as MetaTree)['local-ipv4s'] as MetaTree;
  for (const ip of drop) delete ips[ip];
  Object.assign(ips, add);
  return tree;
}

/** `tree` (mutated) without the NIC `mac`. */
export function withoutNic(tree: MetaTree, mac: string): MetaTree {
  delete macsOf(tree)[mac];
  return tree;
}

// ---------------------------------------------------------------------------------------------------------------
// What a guest looks like

export interface Live {
  addresses: string[];
  rules: string[];
  routes: string[];
}

export async function json<T>(lab: Lab, guest: string, argv: string[]): Promise<T> {
  const result = await lab.exec(lab.guestNs(guest), argv);
  if (result.exitCode !== 0) throw new Error(`${argv.join(' ')}: exit ${result.exitCode}: ${result.stderr}`);
  return JSON.parse(result.stdout || '[]') as T;
}

/** Addresses, policy rules and IPv4 routes of every table, as comparable sorted lines. */
export async function live(lab: Lab, guest: string): Promise<Live> {
  const links = await json<{ ifname: string; addr_info: { local: string; prefixlen: number }[] }[]>(lab, guest, [
    'ip',
    '-j',
    '-4',
    'address',
  ]);
  const rules = await json<{ priority: number; src?: string; srclen?: number; table: string }[]>(lab, guest, [
    'ip',
    '-j',
    '-4',
    'rule',
  ]);
  const routes = await json<
    {
      dst: string;
      gateway?: string;
      dev?: string;
      table?: string;
      protocol?: string;
      prefsrc?: string;
      type?: string;
    }[]
  >(lab, guest, ['ip', '-j', '-4', 'route', 'show', 'table', 'all']);
  return {
    addresses: links.flatMap((l) => l.addr_info.map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`)).sort(),
    rules: rules
      .map(
        (r) => `${r.priority} from ${r.src ?? 'all'}${r.srclen === undefined ? '' : `/${r.srclen}`} table ${r.table}`,
      )
      .sort(),
    routes: routes
      .map((r) =>
        [
          r.table ?? 'main',
          r.type ?? '',
          r.dst,
          r.gateway ? `via ${r.gateway}` : '',
          r.dev ? `dev ${r.dev}` : '',
          r.protocol ?? '',
          r.prefsrc ?? '',
        ].join(' '),
      )
      .sort(),
  };
}

/** Every file under root by relative path with its content, but the state file (counters, last error) and the lock. */
export function files(root: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(join(root, prefix))) return out;
  for (const name of readdirSync(join(root, prefix))) {
    const rel = join(prefix, name);
    if (`/${rel}` === STATE_PATH || `/${rel}` === LOCK_PATH || isBootStandIn(rel)) continue;
    if (statSync(join(root, rel)).isDirectory()) Object.assign(out, files(root, rel));
    else out[rel] = readFileSync(join(root, rel), 'utf8');
  }
  return out;
}

export interface StateFile {
  owned: unknown;
  absentOnce: string[];
  failedModelHash?: string;
  counters: { applies: number; rollbacks: number; metadataErrors: number };
}

export function readState(root: string): StateFile {
  return JSON.parse(readFileSync(join(root, STATE_PATH), 'utf8')) as StateFile;
}

/** Policy rules from `ip` (`ip -j rule` leaves out srclen for a /32). */
export async function rulesFrom(lab: Lab, guest: string, ip: string): Promise<string[]> {
  return (await live(lab, guest)).rules.filter((r) => r.includes(`from ${ip} `) || r.includes(`from ${ip}/`));
}

/** One `ping -c1 -W1` from the internet host. */
export async function answers(lab: Lab, address: string): Promise<boolean> {
  return (await lab.exec(lab.internetNs, ['ping', '-n', '-c1', '-W1', address])).exitCode === 0;
}

export async function must(lab: Lab, ns: string, argv: string[], input?: string): Promise<void> {
  const result = await lab.exec(ns, argv, input === undefined ? {} : { input });
  if (result.exitCode !== 0)
    throw new Error(`${argv.join(' ')} in ${ns}: exit ${result.exitCode}: ${result.stderr.trim()}`);
}

/** Polls `probe` every 100 ms until it is true; the time it first was, or undefined at the deadline. */
export async function until(deadline: number, probe: () => Promise<boolean>): Promise<number | undefined> {
  while (Date.now() <= deadline) {
    if (await probe()) return Date.now();
    await delay(100);
  }
  return undefined;
}

export const isConverge = (e: DaemonEvent): boolean => e.event === 'apply' || e.event === 'in-sync';

// ---------------------------------------------------------------------------------------------------------------
// A lab per scenario

export interface Scenario {
  readonly lab: Lab;
  readonly dir: string;
  readonly config: string;
  root(guest: string): string;
  /** Starts a daemon in the guest; it is killed in afterAll whatever happens. */
  start(guest: string, options: DaemonOptions & { interval: number }): Daemon;
  faults(guest: string, faults: MetadataFaults): Promise<void>;
  requests(guest: string): Promise<number>;
  /** Runs at teardown, before the lab goes. */
  onCleanup(fn: () => void | Promise<void>): void;
}

export function scenario(guests: readonly LabGuestSpec[], config: Record<string, unknown> = {}): Scenario {
  let lab: Lab | undefined;
  let dir = '';
  const daemons: Daemon[] = [];
  const cleanups: (() => void | Promise<void>)[] = [];
  const s: Scenario = {
    get lab() {
      if (lab === undefined) throw new Error('the lab did not start');
      return lab;
    },
    get dir() {
      return dir;
    },
    get config() {
      return join(dir, 'config.json');
    },
    root: (guest) => s.lab.guestRoot(guest),
    start(guest, options) {
      const daemon = new Daemon(s.lab, guest, s.config, options);
      daemons.push(daemon);
      return daemon;
    },
    faults: async (guest, faults) =>
      void (await controlEmulator(s.lab.metadataControlSocket(guest), 'PUT', '/faults', faults)),
    requests: async (guest) =>
      ((await controlEmulator(s.lab.metadataControlSocket(guest), 'GET', '/stats')) as { requests: number }).requests,
    onCleanup: (fn) => void cleanups.push(fn),
  };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'eip-service-lab-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    lab = await startLab(guests);
  });
  afterAll(async () => {
    try {
      for (const fn of cleanups) await fn();
      await Promise.all(daemons.map((d) => d.stop('SIGKILL')));
    } finally {
      await lab?.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  return s;
}
