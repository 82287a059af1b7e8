// An emulated VPC made of network namespaces, built from the guests' metadata trees: a router with one bridge per
// subnet, EIP NAT and per-port anti-spoofing, an internet host, one namespace per guest and a real metadata emulator
// per guest. Nothing in it is connected to the host's network: traffic cannot leave it. The sandbox command and the
// lab tests both build it with this class; its whole state is a plain record, so a later process can take it over.
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Host, RunOptions, RunResult } from '../host/host.js';
import { controlEmulator } from './emulator.js';
import type { MetaTree } from '../metadata/tree.js';
import { seedCentos7Boot } from './guest-root.js';
import { killAndDeleteNamespace, listNamespaces } from './namespaces.js';
import {
  INTERNET_IP,
  METADATA_IP,
  ROUTER_WAN_IP,
  WAN_IF,
  WAN_PREFIX,
  attachNic,
  cloudPolicy,
  detachNic,
  ipv4ToInt,
  planTopology,
  renderRuleset,
  type GuestPlan,
  type LabGuestSpec,
  type NicPlan,
  type TopologyPlan,
} from './topology.js';

/** Everything a VPC is, as JSON: what `sandbox status|change|down` read back from the sandbox's directory. */
export interface VpcRecord {
  /** Every namespace name starts with `<id>-`. */
  id: string;
  /** Holds the guests' roots, the emulators' fixtures, sockets and logs; removed with the VPC. */
  dir: string;
  plan: TopologyPlan;
  /** The metadata each guest's emulator serves, by guest name. */
  trees: Record<string, MetaTree>;
  /** Routes of `direct` EIPs in the router, to reconcile at the next change. */
  directRoutes: string[];
  /** Namespaces added beside the guests (a container, a VPN peer), by full name. */
  extra: string[];
  /** argv prefix that starts eip-agent, for `metadata serve`. */
  agent: string[];
}

/** What `ping` from the internet host saw. */
export interface PingResult {
  answered: boolean;
  /** Round trip of the reply, in ms. */
  ms?: number;
}

const EMULATOR_READY_MS = 15_000;
/** Longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;
const NO_IPV6 = { 'net.ipv6.conf.all.disable_ipv6': '1', 'net.ipv6.conf.default.disable_ipv6': '1' };

export class Vpc {
  private readonly emulators = new Map<string, ChildProcess>();

  private constructor(
    private readonly host: Host,
    readonly record: VpcRecord,
  ) {}

  /** Takes over a VPC built earlier, maybe by another process, from its record. */
  static open(host: Host, record: VpcRecord): Vpc {
    return new Vpc(host, record);
  }

  /**
   * Builds the VPC for the guests (names: 1-8 lower-case letters) in `dir` (created if missing); throws an Error
   * naming the guest and metadata path when a tree cannot be built, leaving nothing behind.
   */
  static async create(
    host: Host,
    options: { id: string; dir: string; guests: readonly LabGuestSpec[]; agent: string[] },
  ): Promise<Vpc> {
    const plan = planTopology(options.guests);
    const trees = Object.fromEntries(options.guests.map((g) => [g.name, structuredClone(g.tree)]));
    const vpc = new Vpc(host, {
      id: options.id,
      dir: options.dir,
      plan,
      trees,
      directRoutes: [],
      extra: [],
      agent: options.agent,
    });
    try {
      await vpc.build();
    } catch (error) {
      vpc.destroy();
      throw error;
    }
    return vpc;
  }

  get routerNs(): string {
    return `${this.record.id}-rtr`;
  }

  get internetNs(): string {
    return `${this.record.id}-inet`;
  }

  get guests(): readonly GuestPlan[] {
    return this.record.plan.guests;
  }

  guestNs(name: string): string {
    return `${this.record.id}-g-${this.guest(name).name}`;
  }

  /** The guest's file system root for the agent (--root): the files it writes stay in the VPC's directory. */
  guestRoot(name: string): string {
    return join(this.record.dir, `root-${this.guest(name).name}`);
  }

  /** Unix socket of the guest's emulator control API (PUT /tree, PUT /faults, GET /stats). */
  metadataControlSocket(name: string): string {
    return join(this.record.dir, `${this.guest(name).name}.sock`);
  }

  tree(name: string): MetaTree {
    const tree = this.record.trees[this.guest(name).name];
    if (tree === undefined) throw new Error(`vpc ${this.record.id}: no tree for guest ${name}`);
    return structuredClone(tree);
  }

  /** Every namespace of this VPC, in the order they are made. */
  namespaces(): string[] {
    return [this.routerNs, this.internetNs, ...this.guests.map((g) => this.guestNs(g.name)), ...this.record.extra];
  }

  /** Runs argv in one of the VPC's namespaces; resolves whatever the exit code, throws on timeout. */
  async exec(ns: string, argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    // Without this check a typo would run the command in the host's namespace, outside the VPC.
    if (!this.namespaces().includes(ns)) throw new Error(`vpc: ${ns} is not a namespace of ${this.record.id}`);
    return this.host.run(['ip', 'netns', 'exec', ns, ...argv], { timeoutMs: 30_000, ...options });
  }

  /** `ping -c1 -W1` from the internet host, up to `attempts` times; the round trip of the first reply. */
  async ping(address: string, attempts = 3): Promise<PingResult> {
    // A literal only: a name would be looked up, and the VPC never sends anything outside itself.
    if (ipv4ToInt(address) === undefined) throw new Error(`vpc: ping: ${address} is not an IPv4 address`);
    for (let i = 0; i < attempts; i++) {
      const result = await this.exec(this.internetNs, ['ping', '-n', '-c1', '-W1', address]);
      if (result.exitCode === 0) {
        const ms = /time=([\d.]+) ms/.exec(result.stdout)?.[1];
        return ms === undefined ? { answered: true } : { answered: true, ms: Number(ms) };
      }
    }
    return { answered: false };
  }

  /** A namespace of the VPC's own beside the guests, empty but for its loopback; its name is returned. */
  async addNamespace(name: string): Promise<string> {
    if (!/^[a-z]{1,8}$/.test(name)) throw new Error(`vpc: namespace name ${name}: 1-8 lower-case letters`);
    const ns = `${this.record.id}-x-${name}`;
    if (this.namespaces().includes(ns)) throw new Error(`vpc: namespace ${ns} exists`);
    await this.must(['ip', 'netns', 'add', ns]);
    this.record.extra.push(ns);
    await this.sysctls(ns, NO_IPV6);
    await this.ipBatch(ns, ['link set lo up']);
    return ns;
  }

  /**
   * Changes what the cloud says about a guest: its emulator's tree, the router's EIP NAT and routes, anti-spoofing.
   * With `links`, an ENI the new tree lists and the guest lacks is attached (a new ethN, down and bare, as a VM
   * sees a hot-plugged NIC) and one it no longer lists is detached; without, the links stay as they are.
   */
  async updateGuest(
    name: string,
    tree: MetaTree,
    options: { links?: boolean } = {},
  ): Promise<{ attached: NicPlan[]; detached: NicPlan[] }> {
    const guest = this.guest(name);
    const attached: NicPlan[] = [];
    const detached: NicPlan[] = [];
    if (options.links === true) {
      const listed = new Set(Object.keys(macsOf(tree)).map((mac) => mac.toLowerCase()));
      for (const nic of [...guest.nics])
        if (!listed.has(nic.mac)) detached.push(detachNic(this.record.plan, name, nic.mac));
      for (const mac of listed)
        if (!guest.nics.some((n) => n.mac === mac)) attached.push(attachNic(this.record.plan, name, tree, mac));
    }
    // Detached first, so the guest loses the ENI's addresses before anyone else may use them.
    await this.ipBatch(
      this.routerNs,
      detached.map((nic) => `link del ${nic.port}`),
    );
    await controlEmulator(this.metadataControlSocket(name), 'PUT', '/tree', tree);
    this.record.trees[name] = structuredClone(tree);
    await this.buildBridges();
    await this.ipBatch(
      this.routerNs,
      attached.flatMap((nic) => this.portLines(guest, nic)),
    );
    await this.ipBatch(
      this.guestNs(name),
      attached.map((nic) => `link set ${nic.guestIf} address ${nic.mac}`),
    );
    await this.applyPolicy();
    return { attached, detached };
  }

  /** Kills every process in the VPC's namespaces, deletes them and the directory. Idempotent; throws if one is left. */
  destroy(): void {
    destroyVpc(this.record.id, this.record.dir);
  }

  /** Builds everything; on failure the caller destroys the half-built VPC. */
  private async build(): Promise<void> {
    mkdirSync(this.record.dir, { recursive: true, mode: 0o700 });
    const longest = join(this.record.dir, `${'x'.repeat(8)}.sock`);
    if (longest.length > MAX_SOCKET_PATH)
      throw new Error(`vpc: directory ${this.record.dir} is too long for unix sockets; set TMPDIR shorter`);
    await this.createNamespaces();
    await this.buildRouter();
    await Promise.all(this.guests.map((guest) => this.buildGuest(guest)));
    await this.ipBatch(this.internetNs, [
      'link set lo up',
      `address add ${INTERNET_IP}/${WAN_PREFIX} dev eth0`,
      'link set eth0 up',
      `route add default via ${ROUTER_WAN_IP}`,
    ]);
    await this.applyPolicy();
    await Promise.all(this.guests.map((guest) => this.startEmulator(guest)));
  }

  private guest(name: string): GuestPlan {
    const guest = this.guests.find((g) => g.name === name);
    if (guest === undefined) throw new Error(`vpc ${this.record.id}: no guest named ${name}`);
    return guest;
  }

  private async must(argv: readonly string[], input?: string): Promise<RunResult> {
    const result = await this.host.run(argv, { timeoutMs: 30_000, ...(input === undefined ? {} : { input }) });
    if (result.exitCode !== 0) {
      const script = input === undefined ? '' : `\n--- input ---\n${input}`;
      throw new Error(`vpc: ${argv.join(' ')}: exit ${result.exitCode}: ${result.stderr.trim()}${script}`);
    }
    return result;
  }

  /** `ip -n NS -batch -`: many changes in one process, stopping at the first that fails. */
  private async ipBatch(ns: string, lines: readonly string[]): Promise<void> {
    if (lines.length > 0) await this.must(['ip', '-n', ns, '-batch', '-'], `${lines.join('\n')}\n`);
  }

  private async sysctls(ns: string, settings: Record<string, string>): Promise<void> {
    const pairs = Object.entries(settings).map(([key, value]) => `${key}=${value}`);
    // -e: the bridge keys exist only while br_netfilter is loaded; net.* keys are per namespace.
    await this.must(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-e', '-w', ...pairs]);
  }

  private async createNamespaces(): Promise<void> {
    for (const ns of [this.routerNs, this.internetNs, ...this.guests.map((g) => this.guestNs(g.name))])
      await this.must(['ip', 'netns', 'add', ns]);
    await this.sysctls(this.routerNs, {
      ...NO_IPV6,
      'net.ipv4.ip_forward': '1',
      'net.ipv4.conf.all.rp_filter': '0',
      'net.ipv4.conf.default.rp_filter': '0',
      // A VPC router routes; with br_netfilter loaded on the host, bridged frames would also cross the ip hooks.
      'net.bridge.bridge-nf-call-iptables': '0',
      'net.bridge.bridge-nf-call-ip6tables': '0',
      'net.bridge.bridge-nf-call-arptables': '0',
    });
    await this.sysctls(this.internetNs, NO_IPV6);
    for (const guest of this.guests) {
      // CentOS 7's defaults (strict reverse-path filter, promoted secondaries) and an IPv4-only image; set before
      // the NICs arrive, because a new interface copies `default`.
      await this.sysctls(this.guestNs(guest.name), {
        ...NO_IPV6,
        'net.ipv4.conf.all.rp_filter': '1',
        'net.ipv4.conf.default.rp_filter': '1',
        'net.ipv4.conf.all.promote_secondaries': '1',
        'net.ipv4.conf.default.promote_secondaries': '1',
      });
    }
  }

  /** The subnets' bridges the router lacks (all of them at the start; a new subnet's when an ENI is attached). */
  private async buildBridges(): Promise<void> {
    const links = JSON.parse((await this.must(['ip', '-n', this.routerNs, '-j', 'link'])).stdout) as {
      ifname: string;
    }[];
    const have = new Set(links.map((l) => l.ifname));
    const lines: string[] = [];
    for (const [index, subnet] of this.record.plan.subnets.entries()) {
      if (have.has(subnet.bridge)) continue;
      // A fixed MAC, as a real VPC gateway has: a bridge otherwise takes its lowest port's, so attaching an ENI whose
      // router end has a lower MAC changes the gateway's MAC, and detaching it black-holes the subnet until the
      // guests' neighbour entries age out (30-40 s).
      const mac = `02:ee:00:00:${(index >> 8).toString(16).padStart(2, '0')}:${(index & 0xff).toString(16).padStart(2, '0')}`;
      lines.push(
        `link add ${subnet.bridge} address ${mac} type bridge`,
        `address add ${subnet.gateway}/${subnet.prefix} dev ${subnet.bridge}`,
        `link set ${subnet.bridge} up`,
      );
    }
    await this.ipBatch(this.routerNs, lines);
  }

  private portLines(guest: GuestPlan, nic: NicPlan): string[] {
    return [
      `link add ${nic.port} type veth peer name ${nic.guestIf} netns ${this.guestNs(guest.name)}`,
      `link set ${nic.port} master ${nic.subnet.bridge}`,
      `link set ${nic.port} up`,
    ];
  }

  private async buildRouter(): Promise<void> {
    await this.ipBatch(this.routerNs, ['link set lo up', `address add ${METADATA_IP}/32 dev lo`]);
    await this.buildBridges();
    const lines = [
      `link add ${WAN_IF} type veth peer name eth0 netns ${this.internetNs}`,
      `address add ${ROUTER_WAN_IP}/${WAN_PREFIX} dev ${WAN_IF}`,
      `link set ${WAN_IF} up`,
    ];
    for (const guest of this.guests) for (const nic of guest.nics) lines.push(...this.portLines(guest, nic));
    await this.ipBatch(this.routerNs, lines);
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
    await this.ipBatch(this.guestNs(guest.name), lines);
  }

  /** Rebuilds the router's nftables tables atomically and reconciles the routes of `direct` EIPs. */
  private async applyPolicy(): Promise<void> {
    const policy = cloudPolicy(this.record.plan, new Map(Object.entries(this.record.trees)));
    await this.must(['ip', 'netns', 'exec', this.routerNs, 'nft', '-f', '-'], renderRuleset(policy));
    const wanted = new Map(policy.direct.map((d) => [`${d.publicIp}/32`, `via ${d.privateIp} dev ${d.bridge}`]));
    await this.ipBatch(this.routerNs, [
      ...this.record.directRoutes.filter((dst) => !wanted.has(dst)).map((dst) => `route del ${dst}`),
      ...[...wanted].map(([dst, how]) => `route replace ${dst} ${how}`),
    ]);
    this.record.directRoutes = [...wanted.keys()];
  }

  /** The guest's emulator in the router namespace, detached: it outlives this process until the VPC is destroyed. */
  private async startEmulator(guest: GuestPlan): Promise<void> {
    const fixture = join(this.record.dir, `${guest.name}.json`);
    const socket = this.metadataControlSocket(guest.name);
    const log = join(this.record.dir, `${guest.name}-metadata.log`);
    writeFileSync(fixture, JSON.stringify(this.record.trees[guest.name]));
    const argv = ['netns', 'exec', this.routerNs, ...this.record.agent, 'metadata', 'serve'];
    argv.push(
      '--fixture',
      fixture,
      '--host',
      METADATA_IP,
      '--port',
      String(guest.metadataPort),
      '--control-socket',
      socket,
    );
    const fd = openSync(log, 'a');
    const child = process
      .getBuiltinModule('node:child_process')
      .spawn('ip', argv, { stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    let failed: Error | undefined;
    child.once('error', (error) => (failed = error));
    child.unref();
    this.emulators.set(guest.name, child);
    const output = (): string => readFileSync(log, 'utf8').slice(-4096).trim();
    const deadline = Date.now() + EMULATOR_READY_MS;
    for (;;) {
      if (failed !== undefined || child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `vpc: metadata emulator of guest ${guest.name} exited before it answered: ${failed?.message ?? output()}`,
        );
      }
      try {
        await controlEmulator(socket, 'GET', '/stats');
        return;
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(
            `vpc: metadata emulator of guest ${guest.name} not ready after ${EMULATOR_READY_MS} ms: ${String(error)}\n${output()}`,
          );
      }
      await delay(50);
    }
  }
}

function macsOf(tree: MetaTree): MetaTree {
  const node = ((tree.network as MetaTree | undefined)?.interfaces as MetaTree | undefined)?.macs;
  return typeof node === 'object' ? node : {};
}

/**
 * Kills every process in the namespaces named `<id>-*`, deletes them and `dir`; what `down` does after a kill -9 too,
 * because it needs nothing but the names. Throws if a namespace is left.
 */
export function destroyVpc(id: string, dir: string): void {
  const ours = (): string[] => listNamespaces().filter((ns) => ns.startsWith(`${id}-`));
  const errors: unknown[] = [];
  const found = ours();
  // Guests and extras before the router.
  for (const ns of [...found.filter((n) => !n.endsWith('-rtr')), ...found.filter((n) => n.endsWith('-rtr'))]) {
    try {
      killAndDeleteNamespace(ns);
    } catch (error) {
      errors.push(error);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const left = ours();
  if (left.length > 0)
    throw new AggregateError(errors, `vpc ${id}: namespaces left after teardown: ${left.join(', ')}`);
}
