// An emulated VPC made of network namespaces, built from the guests' metadata trees: a router with one bridge per
// subnet, EIP NAT and per-port anti-spoofing, an internet host, one namespace per guest and a real metadata
// emulator per guest. Nothing in it is connected to the host's network: traffic cannot leave the lab.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';
import { controlEmulator } from '../../src/metadata/emulator.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { agentCommand } from './agent-command.js';
import { seedCentos7Boot } from '../helpers/centos-boot.js';
import { OWN_PREFIX, deleteNamespaceSync, listNamespaces, sweepStaleLabs, track, untrack } from './cleanup.js';
import {
  INTERNET_IP,
  METADATA_IP,
  ROUTER_WAN_IP,
  WAN_IF,
  WAN_PREFIX,
  cloudPolicy,
  ipv4ToInt,
  planTopology,
  renderRuleset,
  type GuestPlan,
  type LabGuestSpec,
  type TopologyPlan,
} from './topology.js';

export type { LabGuestSpec } from './topology.js';
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
const CLI = join(REPO, 'bin', 'eip-agent.js');
const EMULATOR_READY_MS = 15_000;
const EMULATOR_STOP_MS = 3_000;
/** Longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;

let labCount = 0;

/** Runs argv on the host (only `ip` and `nft` aimed at the lab's namespaces); throws on timeout or if it cannot start. */
async function run(argv: readonly string[], opts: LabRunOptions = {}): Promise<LabRun> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('lab: empty argv');
  const timeout = opts.timeoutMs ?? 30_000;
  const result = await execa(file, args, { reject: false, timeout, stripFinalNewline: false, ...(opts.input === undefined ? {} : { input: opts.input }), ...(opts.env === undefined ? {} : { env: opts.env }) });
  if (result.timedOut) throw new Error(`lab: ${argv.join(' ')}: timed out after ${timeout} ms\n${result.stderr}`);
  if (result.exitCode !== undefined) return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
  if (result.signal !== undefined) {
    // The shell's convention, so a killed process still has a number tests can compare.
    return { exitCode: 128 + constants.signals[result.signal], stdout: result.stdout, stderr: result.stderr };
  }
  throw new Error(`lab: ${argv.join(' ')}: ${result.message}`);
}

/** Like run, but a non-zero exit is an error naming the command and its stderr. */
async function must(argv: readonly string[], input?: string): Promise<LabRun> {
  const result = await run(argv, input === undefined ? {} : { input });
  if (result.exitCode !== 0) {
    const script = input === undefined ? '' : `\n--- input ---\n${input}`;
    throw new Error(`lab: ${argv.join(' ')}: exit ${result.exitCode}: ${result.stderr.trim()}${script}`);
  }
  return result;
}

/** `ip -n NS -batch -`: many changes in one process, stopping at the first that fails. */
async function ipBatch(ns: string, lines: readonly string[]): Promise<void> {
  if (lines.length > 0) await must(['ip', '-n', ns, '-batch', '-'], `${lines.join('\n')}\n`);
}

async function sysctls(ns: string, settings: Record<string, string>): Promise<void> {
  const pairs = Object.entries(settings).map(([key, value]) => `${key}=${value}`);
  // -e: the bridge keys exist only while br_netfilter is loaded; net.* keys are per namespace.
  await must(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-e', '-w', ...pairs]);
}

/** A metadata emulator process in the router namespace. */
interface Emulator {
  child: ChildProcess;
  /** The last of its stdout and stderr, for the error when it dies. */
  output: string;
  exited: Promise<void>;
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

class VpcLab implements Lab {
  readonly id: string;
  readonly internetNs: string;
  readonly routerNs: string;
  private readonly dir: string;
  private readonly trees = new Map<string, MetaTree>();
  private readonly emulators = new Map<string, Emulator>();
  /** Namespaces in the order they were created, so a half-built lab tears down exactly what exists. */
  private readonly namespaces: string[] = [];
  private directRoutes: string[] = [];
  private destroyed = false;

  constructor(private readonly plan: TopologyPlan, guests: readonly LabGuestSpec[]) {
    this.id = `${OWN_PREFIX}${++labCount}`;
    this.internetNs = `${this.id}-inet`;
    this.routerNs = `${this.id}-rtr`;
    for (const guest of guests) this.trees.set(guest.name, structuredClone(guest.tree));
    this.dir = mkdtempSync(join(tmpdir(), `${this.id}-`));
    track(this);
  }

  guestNs(name: string): string {
    return `${this.id}-g-${this.guest(name).name}`;
  }

  guestRoot(name: string): string {
    return join(this.dir, `root-${this.guest(name).name}`);
  }

  metadataControlSocket(name: string): string {
    return join(this.dir, `${this.guest(name).name}.sock`);
  }

  async agent(guest: string, args: readonly string[], opts: LabRunOptions = {}): Promise<LabRun> {
    return this.exec(this.guestNs(guest), [...agentCommand(), ...args], { ...opts, timeoutMs: opts.timeoutMs ?? 60_000 });
  }

  async exec(ns: string, argv: readonly string[], opts: LabRunOptions = {}): Promise<LabRun> {
    // Without this check a typo would run the command in the host's namespace, outside the lab.
    if (!this.namespaces.includes(ns)) throw new Error(`lab: ${ns} is not a namespace of lab ${this.id}`);
    if (this.destroyed) throw new Error(`lab ${this.id}: destroyed`);
    return run(['ip', 'netns', 'exec', ns, ...argv], opts);
  }

  async pingFromInternet(address: string, attempts = 3): Promise<boolean> {
    // A literal only: a name would be looked up, and the lab never sends anything outside itself.
    if (ipv4ToInt(address) === undefined) throw new Error(`lab: pingFromInternet: ${address} is not an IPv4 address`);
    for (let i = 0; i < attempts; i++) {
      const result = await this.exec(this.internetNs, ['ping', '-n', '-c1', '-W1', address]);
      if (result.exitCode === 0) return true;
    }
    return false;
  }

  async fetchFromInternet(address: string, port: number): Promise<string> {
    if (ipv4ToInt(address) === undefined) throw new Error(`lab: fetchFromInternet: ${address} is not an IPv4 address`);
    const script = `fetch('http://${address}:${port}/', { signal: AbortSignal.timeout(3000) }).then((r) => r.text()).then((t) => process.stdout.write(t), (e) => process.stdout.write('failed: ' + e.message)).finally(() => process.exit(0));`;
    return (await this.exec(this.internetNs, [process.execPath, '-e', script], { timeoutMs: 10_000 })).stdout;
  }

  async addNamespace(name: string): Promise<string> {
    if (!/^[a-z]{1,8}$/.test(name)) throw new Error(`lab: namespace name ${name}: 1-8 lower-case letters`);
    const ns = `${this.id}-x-${name}`;
    if (this.namespaces.includes(ns)) throw new Error(`lab: namespace ${ns} exists`);
    await must(['ip', 'netns', 'add', ns]);
    this.namespaces.push(ns);
    await sysctls(ns, { 'net.ipv6.conf.all.disable_ipv6': '1', 'net.ipv6.conf.default.disable_ipv6': '1' });
    await ipBatch(ns, ['link set lo up']);
    return ns;
  }

  async updateGuest(name: string, tree: MetaTree): Promise<void> {
    this.guest(name);
    await controlEmulator(this.metadataControlSocket(name), 'PUT', '/tree', tree);
    this.trees.set(name, structuredClone(tree));
    await this.applyPolicy();
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.emulators.values()].map((emulator) => this.stopEmulator(emulator)));
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
    for (const { child } of this.emulators.values()) if (!hasExited(child)) child.kill('SIGKILL');
    const errors: unknown[] = [];
    for (const ns of [...this.namespaces].reverse()) {
      try {
        deleteNamespaceSync(ns);
      } catch (error) {
        errors.push(error);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, `lab ${this.id}: teardown failed`);
  }

  /** Builds everything; on failure the caller destroys the half-built lab. */
  async build(): Promise<void> {
    const longest = join(this.dir, `${'x'.repeat(8)}.sock`);
    if (longest.length > MAX_SOCKET_PATH) throw new Error(`lab: temp dir ${this.dir} is too long for unix sockets; set TMPDIR shorter`);
    await this.createNamespaces();
    await this.buildRouter();
    await Promise.all(this.plan.guests.map((guest) => this.buildGuest(guest)));
    await ipBatch(this.internetNs, [
      'link set lo up',
      `address add ${INTERNET_IP}/${WAN_PREFIX} dev eth0`,
      'link set eth0 up',
      `route add default via ${ROUTER_WAN_IP}`,
    ]);
    await this.applyPolicy();
    await Promise.all(this.plan.guests.map((guest) => this.startEmulator(guest)));
  }

  private guest(name: string): GuestPlan {
    const guest = this.plan.guests.find((g) => g.name === name);
    if (guest === undefined) throw new Error(`lab ${this.id}: no guest named ${name}`);
    return guest;
  }

  private async createNamespaces(): Promise<void> {
    for (const ns of [this.routerNs, this.internetNs, ...this.plan.guests.map((g) => this.guestNs(g.name))]) {
      await must(['ip', 'netns', 'add', ns]);
      this.namespaces.push(ns);
    }
    const noIpv6 = { 'net.ipv6.conf.all.disable_ipv6': '1', 'net.ipv6.conf.default.disable_ipv6': '1' };
    await sysctls(this.routerNs, {
      ...noIpv6,
      'net.ipv4.ip_forward': '1',
      'net.ipv4.conf.all.rp_filter': '0',
      'net.ipv4.conf.default.rp_filter': '0',
      // A VPC router routes; with br_netfilter loaded on the host, bridged frames would also cross the ip hooks.
      'net.bridge.bridge-nf-call-iptables': '0',
      'net.bridge.bridge-nf-call-ip6tables': '0',
      'net.bridge.bridge-nf-call-arptables': '0',
    });
    await sysctls(this.internetNs, noIpv6);
    for (const guest of this.plan.guests) {
      // CentOS 7's defaults (strict reverse-path filter, promoted secondaries) and an IPv4-only image; set before
      // the NICs arrive, because a new interface copies `default`.
      await sysctls(this.guestNs(guest.name), {
        ...noIpv6,
        'net.ipv4.conf.all.rp_filter': '1',
        'net.ipv4.conf.default.rp_filter': '1',
        'net.ipv4.conf.all.promote_secondaries': '1',
        'net.ipv4.conf.default.promote_secondaries': '1',
      });
    }
  }

  private async buildRouter(): Promise<void> {
    const lines = ['link set lo up', `address add ${METADATA_IP}/32 dev lo`];
    for (const [index, subnet] of this.plan.subnets.entries()) {
      // A fixed MAC, as a real VPC gateway has: a bridge otherwise takes its lowest port's, so attaching an ENI whose
      // router end has a lower MAC changes the gateway's MAC, and detaching it black-holes the subnet until the
      // guests' neighbour entries age out (30-40 s).
      const mac = `02:ee:00:00:${(index >> 8).toString(16).padStart(2, '0')}:${(index & 0xff).toString(16).padStart(2, '0')}`;
      lines.push(`link add ${subnet.bridge} address ${mac} type bridge`, `address add ${subnet.gateway}/${subnet.prefix} dev ${subnet.bridge}`, `link set ${subnet.bridge} up`);
    }
    lines.push(`link add ${WAN_IF} type veth peer name eth0 netns ${this.internetNs}`, `address add ${ROUTER_WAN_IP}/${WAN_PREFIX} dev ${WAN_IF}`, `link set ${WAN_IF} up`);
    for (const guest of this.plan.guests) {
      for (const nic of guest.nics) {
        lines.push(
          `link add ${nic.port} type veth peer name ${nic.guestIf} netns ${this.guestNs(guest.name)}`,
          `link set ${nic.port} master ${nic.subnet.bridge}`,
          `link set ${nic.port} up`,
        );
      }
    }
    await ipBatch(this.routerNs, lines);
  }

  /** What DHCP leaves on a fresh VM: eth0 up with its primary IP and the default route; attached ENIs down, bare. */
  private async buildGuest(guest: GuestPlan): Promise<void> {
    mkdirSync(this.guestRoot(guest.name));
    seedCentos7Boot(this.guestRoot(guest.name));
    const lines = ['link set lo up', ...guest.nics.map((nic) => `link set ${nic.guestIf} address ${nic.mac}`)];
    const eth0 = guest.nics[0];
    if (eth0 !== undefined) {
      lines.push(
        `address add ${eth0.primaryIp}/${eth0.subnet.prefix} dev ${eth0.guestIf}`,
        `link set ${eth0.guestIf} up`,
        `route add default via ${eth0.subnet.gateway} dev ${eth0.guestIf}`,
      );
    }
    await ipBatch(this.guestNs(guest.name), lines);
  }

  /** Rebuilds the router's nftables tables atomically and reconciles the routes of `direct` EIPs. */
  private async applyPolicy(): Promise<void> {
    const policy = cloudPolicy(this.plan, this.trees);
    await must(['ip', 'netns', 'exec', this.routerNs, 'nft', '-f', '-'], renderRuleset(policy));
    const wanted = new Map(policy.direct.map((d) => [`${d.publicIp}/32`, `via ${d.privateIp} dev ${d.bridge}`]));
    const lines = [
      ...this.directRoutes.filter((dst) => !wanted.has(dst)).map((dst) => `route del ${dst}`),
      ...[...wanted].map(([dst, how]) => `route replace ${dst} ${how}`),
    ];
    await ipBatch(this.routerNs, lines);
    this.directRoutes = [...wanted.keys()];
  }

  private async startEmulator(guest: GuestPlan): Promise<void> {
    const fixture = join(this.dir, `${guest.name}.json`);
    const socket = this.metadataControlSocket(guest.name);
    writeFileSync(fixture, JSON.stringify(this.trees.get(guest.name)));
    const argv = ['netns', 'exec', this.routerNs, process.execPath, CLI, 'metadata', 'serve'];
    argv.push('--fixture', fixture, '--host', METADATA_IP, '--port', String(guest.metadataPort), '--control-socket', socket);
    const child = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const emulator: Emulator = {
      child,
      output: '',
      exited: new Promise((resolve) => {
        child.once('close', () => resolve());
        child.once('error', (error) => {
          emulator.output += `\n${error.message}`;
          resolve();
        });
      }),
    };
    const keep = (chunk: Buffer): void => {
      emulator.output = (emulator.output + chunk.toString('utf8')).slice(-16_384);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.emulators.set(guest.name, emulator);

    const deadline = Date.now() + EMULATOR_READY_MS;
    for (;;) {
      if (hasExited(child) || child.pid === undefined) {
        await emulator.exited;
        throw new Error(`lab: metadata emulator of guest ${guest.name} exited before it answered: ${emulator.output.trim()}`);
      }
      try {
        await controlEmulator(socket, 'GET', '/stats');
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`lab: metadata emulator of guest ${guest.name} not ready after ${EMULATOR_READY_MS} ms: ${String(error)}\n${emulator.output}`);
        }
      }
      await delay(50);
    }
  }

  private async stopEmulator(emulator: Emulator): Promise<void> {
    if (hasExited(emulator.child)) return;
    emulator.child.kill('SIGTERM');
    const stopped = await Promise.race([emulator.exited.then(() => true), delay(EMULATOR_STOP_MS, false)]);
    if (!stopped) {
      emulator.child.kill('SIGKILL');
      await emulator.exited;
    }
  }
}

/**
 * Builds a lab for the guests (names: 1-8 lower-case letters). Trees are validated only as far as the links need;
 * throws, leaving nothing behind, when a tree cannot be built or the host cannot run a lab (see labAvailable).
 */
export async function startLab(guests: readonly LabGuestSpec[]): Promise<Lab> {
  const availability = labAvailable();
  if (!availability.ok) throw new Error(`lab: not available: ${availability.reason}`);
  const plan = planTopology(guests);
  sweepStaleLabs();
  const lab = new VpcLab(plan, guests);
  try {
    await lab.build();
  } catch (error) {
    await lab.destroy().catch(() => undefined);
    throw error;
  }
  return lab;
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
  for (const argv of [['ip', '-V'], ['nft', '--version'], ['ping', '-V'], ['sysctl', '--version']] as const) {
    try {
      execFileSync(argv[0], [argv[1]], { stdio: 'ignore' });
    } catch (error) {
      return { ok: false, reason: `${argv[0]} does not run: ${(error as Error).message}` };
    }
  }
  const ns = `${OWN_PREFIX}probe`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('ip', ['-n', ns, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1'], { stdio: ['ignore', 'ignore', 'pipe'] });
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
