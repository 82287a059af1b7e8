// The lab the tests run in: the emulated VPC of src/sandbox/vpc.ts (the one `eip-agent sandbox` builds), named and
// torn down per test process, with the agent under test (the development CLI or the release executable) run in it.
import { execFileSync } from 'node:child_process';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { createNodeHost } from '../../src/host/node.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { Vpc } from '../../src/sandbox/vpc.js';
import { ipv4ToInt, type LabGuestSpec } from '../../src/sandbox/topology.js';
import { agentCommand } from './agent-command.js';
import { OWN_PREFIX, deleteNamespaceSync, listNamespaces, sweepStaleLabs, track, untrack } from './cleanup.js';

export type { LabGuestSpec } from '../../src/sandbox/topology.js';
export { sweepStaleLabs } from './cleanup.js';

/** What a command run inside the lab returned. */
export interface LabRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Options of a command run inside the lab. */
export interface LabRunOptions {
  timeoutMs?: number;
  /** Text for the command's standard input. */
  input?: string;
  /** Extra environment variables (e.g. the private system bus of a lab NetworkManager). */
  env?: Record<string, string>;
}

/** A running lab; every method acts only inside the lab's own namespaces. */
export interface Lab {
  /** e.g. eipt12345-1; every namespace name starts with it. */
  readonly id: string;
  readonly internetNs: string;
  readonly routerNs: string;
  guestNs(name: string): string;
  /** A fresh, initially empty directory per guest, to pass as the agent's --root. */
  guestRoot(name: string): string;
  /** Unix socket of the guest's emulator control API (PUT /tree, PUT /faults, GET /stats). */
  metadataControlSocket(name: string): string;
  /** Runs the agent under test (agentCommand(): the development CLI or the release executable) in the guest's namespace (timeout 60 s); resolves whatever the exit code, throws on timeout. */
  agent(guest: string, args: readonly string[], opts?: LabRunOptions): Promise<LabRun>;
  /** Runs argv in one of the lab's namespaces; resolves whatever the exit code, throws on timeout. */
  exec(ns: string, argv: readonly string[], opts?: LabRunOptions): Promise<LabRun>;
  /** `ping -c1 -W1` from the internet host, up to `attempts` times (default 3); true when a reply came back. */
  pingFromInternet(address: string, attempts?: number): Promise<boolean>;
  /** GET http://<address>:<port>/ from the internet host: the body, or `failed: <why>` (gives up after 3 s). */
  fetchFromInternet(address: string, port: number): Promise<string>;
  /**
   * A namespace of the lab's own beside the guests (a container, a VPN peer), empty but for its loopback; torn down with
   * the lab. Its name is returned; link it to a guest with `ip link add ... netns <name>`.
   */
  addNamespace(name: string): Promise<string>;
  /** Changes what the cloud says about a guest: its emulator's tree, the router's EIP NAT and routes, anti-spoofing. */
  updateGuest(name: string, tree: MetaTree): Promise<void>;
  /** Stops the emulators, deletes every namespace and temp dir; throws if a namespace is left. Idempotent. */
  destroy(): Promise<void>;
}

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** The emulators always run the development CLI: they are the cloud, not the agent under test. */
const CLI = join(REPO, 'bin', 'eip-agent.js');

let labCount = 0;

/** Runs argv on the host (only `ip` aimed at the lab's namespaces); throws on timeout or if it cannot start. */
async function run(argv: readonly string[], opts: LabRunOptions = {}): Promise<LabRun> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('lab: empty argv');
  const timeout = opts.timeoutMs ?? 30_000;
  const result = await execa(file, args, {
    reject: false,
    timeout,
    stripFinalNewline: false,
    ...(opts.input === undefined ? {} : { input: opts.input }),
    ...(opts.env === undefined ? {} : { env: opts.env }),
  });
  if (result.timedOut) throw new Error(`lab: ${argv.join(' ')}: timed out after ${timeout} ms\n${result.stderr}`);
  if (result.exitCode !== undefined) return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
  if (result.signal !== undefined) {
    // The shell's convention, so a killed process still has a number tests can compare.
    return { exitCode: 128 + constants.signals[result.signal], stdout: result.stdout, stderr: result.stderr };
  }
  throw new Error(`lab: ${argv.join(' ')}: ${result.message}`);
}

class VpcLab implements Lab {
  private destroyed = false;

  constructor(private readonly vpc: Vpc) {
    track(this);
  }

  get id(): string {
    return this.vpc.record.id;
  }

  get internetNs(): string {
    return this.vpc.internetNs;
  }

  get routerNs(): string {
    return this.vpc.routerNs;
  }

  guestNs(name: string): string {
    return this.vpc.guestNs(name);
  }

  guestRoot(name: string): string {
    return this.vpc.guestRoot(name);
  }

  metadataControlSocket(name: string): string {
    return this.vpc.metadataControlSocket(name);
  }

  async agent(guest: string, args: readonly string[], opts: LabRunOptions = {}): Promise<LabRun> {
    return this.exec(this.guestNs(guest), [...agentCommand(), ...args], {
      ...opts,
      timeoutMs: opts.timeoutMs ?? 60_000,
    });
  }

  async exec(ns: string, argv: readonly string[], opts: LabRunOptions = {}): Promise<LabRun> {
    // Without this check a typo would run the command in the host's namespace, outside the lab.
    if (!this.vpc.namespaces().includes(ns)) throw new Error(`lab: ${ns} is not a namespace of lab ${this.id}`);
    if (this.destroyed) throw new Error(`lab ${this.id}: destroyed`);
    return run(['ip', 'netns', 'exec', ns, ...argv], opts);
  }

  async pingFromInternet(address: string, attempts = 3): Promise<boolean> {
    if (this.destroyed) throw new Error(`lab ${this.id}: destroyed`);
    return (await this.vpc.ping(address, attempts)).answered;
  }

  async fetchFromInternet(address: string, port: number): Promise<string> {
    if (ipv4ToInt(address) === undefined) throw new Error(`lab: fetchFromInternet: ${address} is not an IPv4 address`);
    const script = `fetch('http://${address}:${port}/', { signal: AbortSignal.timeout(3000) }).then((r) => r.text()).then((t) => process.stdout.write(t), (e) => process.stdout.write('failed: ' + e.message)).finally(() => process.exit(0));`;
    return (await this.exec(this.internetNs, [process.execPath, '-e', script], { timeoutMs: 10_000 })).stdout;
  }

  async addNamespace(name: string): Promise<string> {
    return this.vpc.addNamespace(name);
  }

  async updateGuest(name: string, tree: MetaTree): Promise<void> {
    await this.vpc.updateGuest(name, tree);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    try {
      this.teardownSync();
    } finally {
      untrack(this);
    }
    const left = listNamespaces().filter((ns) => ns.startsWith(`${this.id}-`));
    if (left.length > 0) throw new Error(`lab: namespaces left after destroy: ${left.join(', ')}`);
  }

  /** Kills, deletes and removes everything without waiting: for destroy and for process exit. */
  teardownSync(): void {
    this.destroyed = true;
    this.vpc.destroy();
  }
}

/**
 * Builds a lab for the guests (names: 1-8 lower-case letters). Trees are validated only as far as the links need;
 * throws, leaving nothing behind, when a tree cannot be built or the host cannot run a lab (see labAvailable).
 */
export async function startLab(guests: readonly LabGuestSpec[]): Promise<Lab> {
  const availability = labAvailable();
  if (!availability.ok) throw new Error(`lab: not available: ${availability.reason}`);
  sweepStaleLabs();
  const id = `${OWN_PREFIX}${++labCount}`;
  // Named like the namespaces, so that the sweep of a later run removes it if this process dies.
  const dir = join(tmpdir(), `${id}-lab`);
  return new VpcLab(await Vpc.create(createNodeHost(), { id, dir, guests, agent: [process.execPath, CLI] }));
}

let availability: { ok: true } | { ok: false; reason: string } | undefined;

/** Whether this host can run a lab (root; ip, nft, ping and sysctl; `ip netns add` works); cached. */
export function labAvailable(): { ok: true } | { ok: false; reason: string } {
  availability ??= probe();
  return availability;
}

function probe(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `needs Linux, this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (network namespaces)' };
  for (const argv of [
    ['ip', '-V'],
    ['nft', '--version'],
    ['ping', '-V'],
    ['sysctl', '--version'],
  ] as const) {
    try {
      execFileSync(argv[0], [argv[1]], { stdio: 'ignore' });
    } catch (error) {
      return { ok: false, reason: `${argv[0]} does not run: ${(error as Error).message}` };
    }
  }
  const ns = `${OWN_PREFIX}probe`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('ip', ['-n', ns, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    execFileSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset'], { stdio: ['ignore', 'ignore', 'pipe'] });
    return { ok: true };
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return { ok: false, reason: `network namespaces do not work here: ${stderr || (error as Error).message}` };
  } finally {
    try {
      deleteNamespaceSync(ns);
    } catch {
      // It was never created.
    }
  }
}
