// `eip-agent sandbox`: the emulated VPC on this machine, with the agent's real apply, verify and daemon run in a guest
// namespace against the metadata emulator, so an operator sees the main job live, rehearses a change, or replays a VM
// from a `metadata dump`. A sandbox is its namespaces (`eips-<name>-*`) and its directory under /run; `down` needs
// nothing else, so it also clears one whose `up` was killed.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import example from '../../examples/manual.json' with { type: 'json' };
import { AgentError, ConfigError, HostError, quoteShort } from '../errors.js';
import type { Host, RunResult } from '../host/host.js';
import { fileMetadataSource } from '../metadata/file-source.js';
import type { MetaTree } from '../metadata/tree.js';
import { FULL_READ_MS } from '../daemon/read-schedule.js';
import { buildModel } from '../model/index.js';
import { ipv4Text } from '../model/ipv4.js';
import { alignColumns } from '../render/columns.js';
import { applyChange, type SandboxChange } from './changes.js';
import { listNamespaces, processAlive } from './namespaces.js';
import { hostOf, ipv4ToInt, maskText, planTopology, publicAddresses, type LabGuestSpec } from './topology.js';
import { Vpc, destroyVpc, type VpcRecord } from './vpc.js';

/** Where sandboxes keep their files: tmpfs, gone at a reboot like the namespaces themselves. */
export const SANDBOX_DIR = '/run/eip-agent/sandbox';
/**
 * The targets a sandbox guest runs: the agent writes their files under the guest's root and applies them live. The
 * networkmanager and netplan targets need NetworkManager or netplan with systemd-networkd in the guest, which the
 * sandbox does not start (yet); the agent refuses them there rather than write files that nothing would load.
 */
export const SANDBOX_TARGETS = ['centos'] as const;
export type SandboxTarget = (typeof SANDBOX_TARGETS)[number];
/**
 * How long `run` and `change` wait for the daemons to converge: the daemon's own bound, a full metadata read (which
 * is how a change inside an address, an EIP bound in direct mode, reaches it), plus an apply and a verification.
 */
const CONVERGE_MS = FULL_READ_MS + 30_000;
const AGENT_MS = 120_000;

/** Where a sandbox command prints: results to out, progress and errors to err. */
export interface SandboxIo {
  out(text: string): void;
  err(text: string): void;
}

/** What a sandbox is, as its directory keeps it. */
interface SandboxRecord {
  name: string;
  target: SandboxTarget;
  /** The config file every agent run in the sandbox reads (never the host's /etc/eip-agent/config.json). */
  config: string;
  vpc: VpcRecord;
  /** Daemon pid by guest, once `sandbox run` started one. */
  daemons: Record<string, number>;
}

/** What `up`, `status` and `change` report per EIP. */
interface EipRow {
  guest: string;
  publicIp: string;
  privateIp: string;
  nic: string;
  mac: string;
  mode: 'NAT' | 'direct';
  answered: boolean;
  ms?: number;
}

interface Report {
  sandbox: string;
  target: SandboxTarget;
  eips: EipRow[];
  verify: { guest: string; exitCode: number; output: string }[];
  ok: boolean;
}

export function sandboxId(name: string): string {
  return `eips-${name}`;
}

function sandboxDir(name: string): string {
  return join(SANDBOX_DIR, name);
}

/** argv that starts this very eip-agent: the release executable alone, or Node with the CLI script. */
export function selfCommand(): string[] {
  if (process.versions.bun !== undefined) return [process.execPath];
  const script = process.argv[1];
  if (script === undefined) throw new HostError('cannot tell which eip-agent script runs (no argv[1])');
  return [process.execPath, resolve(script)];
}

/** The sandbox name: it becomes namespace and directory names. */
export function checkName(name: string): string {
  if (!/^[a-z][a-z0-9]{0,9}$/.test(name))
    throw new ConfigError(
      `--name ${quoteShort(name)}: expected 1-10 lower-case letters and digits, starting with a letter`,
    );
  return name;
}

/** Root, Linux, and the programs the VPC is made with; one line naming what is missing. */
export async function checkSandboxHost(host: Host): Promise<void> {
  if (host.platform !== 'linux')
    throw new HostError(`the sandbox needs Linux network namespaces; this is ${host.platform}`);
  if (!host.isPrivileged())
    throw new HostError('the sandbox needs root (it makes network namespaces): run it with sudo');
  const missing: string[] = [];
  for (const [argv, pkg] of [
    [['ip', '-V'], 'iproute2'],
    [['nft', '--version'], 'nftables'],
    [['ping', '-V'], 'iputils-ping'],
    [['sysctl', '--version'], 'procps'],
  ] as const) {
    const ok = await host.run(argv, { timeoutMs: 10_000 }).then(
      (r) => r.exitCode === 0,
      () => false,
    );
    if (!ok) missing.push(`${argv[0]} (${pkg})`);
  }
  if (missing.length > 0)
    throw new HostError(
      `the sandbox needs ${missing.join(', ')}: install ${missing.length > 1 ? 'them' : 'it'}, ` +
        `e.g. apt-get install ${missing.map((m) => /\((.+)\)/.exec(m)?.[1]).join(' ')}`,
    );
}

/** The tree a sandbox starts from, validated as the agent validates metadata: one line naming the path when it is not. */
async function startTree(host: Host, file: string | undefined): Promise<{ tree: MetaTree; source: string }> {
  const source = file ?? 'the built-in example (examples/manual.json)';
  const tree =
    file === undefined ? (structuredClone(example) as MetaTree) : await fileMetadataSource(host, file).read();
  buildModel(tree);
  return { tree, source };
}

/** Server B of the manual's migration: one NIC in the first guest's eth0 subnet, with a free address from .20 on. */
function serverB(first: MetaTree): MetaTree {
  const eth0 = planTopology([{ name: 'a', tree: first }]).guests[0]?.nics[0];
  if (eth0 === undefined) throw new ConfigError('--server-b: the metadata has no primary NIC to share a subnet with');
  const used = new Set(
    Object.values(((first.network as MetaTree).interfaces as MetaTree).macs as MetaTree).flatMap((nic) =>
      Object.keys(((nic as MetaTree)['local-ipv4s'] ?? {}) as MetaTree),
    ),
  );
  const base = ipv4ToInt(eth0.subnet.cidr.split('/')[0] as string) as number;
  for (let n = base + 20; n < base + 2 ** (32 - eth0.subnet.prefix); n++) {
    const ip = ipv4Text(n);
    if (used.has(ip) || !hostOf(eth0.subnet, ip)) continue;
    const mask = maskText(eth0.subnet.prefix);
    const mac = '52:54:00:ee:0b:01';
    return {
      'instance-id': 'ins-sandbox-b',
      mac,
      'local-ipv4': ip,
      network: {
        interfaces: {
          macs: {
            [mac]: {
              'primary-local-ipv4': ip,
              'local-ipv4s': { [ip]: { gateway: eth0.subnet.gateway, 'subnet-mask': mask } },
            },
          },
        },
      },
    };
  }
  throw new ConfigError(`--server-b: no free address left in ${eth0.subnet.cidr}`);
}

function save(record: SandboxRecord): void {
  const path = join(record.vpc.dir, 'sandbox.json');
  writeFileSync(`${path}.new`, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.new`, path);
}

function load(name: string): SandboxRecord {
  const path = join(sandboxDir(name), 'sandbox.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    const left = listNamespaces().some((ns) => ns.startsWith(`${sandboxId(name)}-`));
    throw new ConfigError(
      left
        ? `sandbox ${name} is half made (its up was stopped): eip-agent sandbox down --name ${name}, then up again`
        : `no sandbox named ${name}: eip-agent sandbox up --name ${name} makes one`,
    );
  }
  return JSON.parse(text) as SandboxRecord;
}

/** Runs eip-agent in a guest with the sandbox's root and config. */
function agent(vpc: Vpc, record: SandboxRecord, guest: string, args: readonly string[]): Promise<RunResult> {
  return vpc.exec(
    vpc.guestNs(guest),
    [...selfCommand(), ...args, '--root', vpc.guestRoot(guest), '--config', record.config],
    { timeoutMs: AGENT_MS },
  );
}

/** What DHCP and cloud-init leave in a fresh guest of the target: a CentOS 7 guest has eth0 on DHCP in ifcfg-eth0. */
function seedGuest(vpc: Vpc, target: SandboxTarget): void {
  if (target !== 'centos') return;
  for (const guest of vpc.guests) {
    const eth0 = guest.nics[0];
    if (eth0 === undefined) continue;
    const path = join(vpc.guestRoot(guest.name), 'etc/sysconfig/network-scripts/ifcfg-eth0');
    mkdirSync(dirname(path), { recursive: true });
    const lines = [
      '# Created by cloud-init on instance boot automatically, do not edit.',
      '#',
      'BOOTPROTO=dhcp',
      'DEVICE=eth0',
      `HWADDR=${eth0.mac}`,
      'ONBOOT=yes',
      'PERSISTENT_DHCLIENT=yes',
      'TYPE=Ethernet',
      'USERCTL=no',
    ];
    writeFileSync(path, `${lines.join('\n')}\n`);
  }
}

/** Pings every EIP the cloud serves from the internet host and runs `verify` in every guest. */
async function report(vpc: Vpc, record: SandboxRecord): Promise<Report> {
  const eips: EipRow[] = [];
  for (const guest of vpc.guests) {
    for (const address of publicAddresses(guest, vpc.tree(guest.name))) {
      const ping = await vpc.ping(address.publicIp);
      eips.push({
        guest: guest.name,
        publicIp: address.publicIp,
        privateIp: address.privateIp,
        nic: address.guestIf ?? '-',
        mac: address.mac,
        mode: address.direct ? 'direct' : 'NAT',
        answered: ping.answered,
        ...(ping.ms === undefined ? {} : { ms: ping.ms }),
      });
    }
  }
  const verify = [];
  for (const guest of vpc.guests) {
    const result = await agent(vpc, record, guest.name, ['verify']);
    verify.push({ guest: guest.name, exitCode: result.exitCode, output: (result.stdout + result.stderr).trimEnd() });
  }
  const ok = eips.every((e) => e.answered) && verify.every((v) => v.exitCode === 0);
  return { sandbox: record.name, target: record.target, eips, verify, ok };
}

function printReport(out: (text: string) => void, result: Report, json: boolean): void {
  if (json) {
    out(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const twoGuests = new Set(result.eips.map((e) => e.guest)).size > 1 || result.verify.length > 1;
  const head = [...(twoGuests ? ['GUEST'] : []), 'EIP', 'PRIVATE IP', 'NIC', 'MAC', 'MODE', 'ANSWERED', 'TIME'];
  const rows = result.eips.map((e) => [
    ...(twoGuests ? [e.guest] : []),
    e.publicIp,
    e.privateIp,
    e.nic,
    e.mac,
    e.mode,
    e.answered ? 'yes' : 'NO',
    e.ms === undefined ? '-' : `${e.ms} ms`,
  ]);
  out(result.eips.length === 0 ? 'No EIP is bound.\n' : `${alignColumns([head, ...rows]).join('\n')}\n`);
  for (const v of result.verify) {
    const what =
      v.exitCode === 0
        ? 'verified'
        : v.exitCode === 4
          ? 'not verified: a check could not be made'
          : `NOT verified (exit ${v.exitCode})`;
    out(`Guest ${v.guest}: ${what}\n`);
    if (v.exitCode !== 0) out(`${v.output}\n`);
  }
  const failed = result.eips.filter((e) => !e.answered).length;
  out(
    result.ok
      ? `Every EIP answered and every guest verified.\n`
      : `${failed} of ${result.eips.length} EIPs did not answer${result.verify.some((v) => v.exitCode !== 0) ? ', and a guest did not verify' : ''}.\n`,
  );
}

/** Pings, verifies and prints; exit 0 when every EIP answered and every guest verified, else 3. */
async function finish(vpc: Vpc, record: SandboxRecord, io: SandboxIo, json: boolean): Promise<number> {
  const result = await report(vpc, record);
  printReport(io.out, result, json);
  return result.ok ? 0 : 3;
}

/** Options of `sandbox up`. */
export interface UpOptions {
  name: string;
  metadataFile?: string;
  target: SandboxTarget;
  serverB: boolean;
  json: boolean;
}

/** `sandbox up`: builds the VPC, runs `apply` in each guest, then pings every EIP and verifies. Exit 0 only when all is well. */
export async function sandboxUp(host: Host, io: SandboxIo, options: UpOptions): Promise<number> {
  await checkSandboxHost(host);
  const { tree, source } = await startTree(host, options.metadataFile);
  const guests: LabGuestSpec[] = [{ name: 'a', tree }];
  if (options.serverB) guests.push({ name: 'b', tree: serverB(tree) });
  try {
    planTopology(guests);
  } catch (error) {
    throw new ConfigError(
      `${options.metadataFile ?? 'example'}: ${(error as Error).message.replace(/^lab: guest \w+: /, '')}`,
    );
  }
  const id = sandboxId(options.name);
  const dir = sandboxDir(options.name);
  if (existsSync(dir) || listNamespaces().some((ns) => ns.startsWith(`${id}-`))) {
    throw new ConfigError(
      `sandbox ${options.name} exists: eip-agent sandbox down --name ${options.name} removes it (or give another --name)`,
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const config = join(dir, 'config.json');
  writeFileSync(config, `${JSON.stringify({ target: options.target, interval: 1 })}\n`);
  let vpc: Vpc;
  try {
    vpc = await Vpc.create(host, { id, dir, guests, agent: selfCommand() });
  } catch (error) {
    destroyVpc(id, dir);
    throw new HostError(
      `building sandbox ${options.name} failed, nothing is left: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  const record: SandboxRecord = { name: options.name, target: options.target, config, vpc: vpc.record, daemons: {} };
  seedGuest(vpc, options.target);
  save(record);
  io.err(
    `eip-agent: sandbox ${options.name}: VPC built from ${source} (namespaces ${id}-*); ` +
      `applying in ${vpc.guests.map((g) => `guest ${g.name}`).join(' and ')}\n`,
  );
  let applied = true;
  for (const guest of vpc.guests) {
    const result = await agent(vpc, record, guest.name, ['apply']);
    if (!options.json) io.out(`--- eip-agent apply in guest ${guest.name} (exit ${result.exitCode})\n${result.stdout}`);
    if (result.stderr.trim() !== '') io.err(result.stderr);
    applied &&= result.exitCode === 0;
  }
  const code = await finish(vpc, record, io, options.json);
  io.err(`eip-agent: sandbox ${options.name} is up: eip-agent sandbox run|change|status|down --name ${options.name}\n`);
  return applied ? code : 3;
}

function running(record: SandboxRecord, guest: string): number | undefined {
  const pid = record.daemons[guest];
  return pid !== undefined && processAlive(pid) ? pid : undefined;
}

/** Polls `status` in the guests until each is in sync (exit 0); the time it took, or undefined at the deadline. */
async function converge(
  host: Host,
  vpc: Vpc,
  record: SandboxRecord,
  guests: readonly string[],
): Promise<number | undefined> {
  const start = host.now();
  const pending = new Set(guests);
  while (host.now() - start < CONVERGE_MS) {
    for (const guest of [...pending])
      if ((await agent(vpc, record, guest, ['status'])).exitCode === 0) pending.delete(guest);
    if (pending.size === 0) return host.now() - start;
    await host.sleep(500);
  }
  return undefined;
}

/** `sandbox run`: starts the daemon (`eip-agent run`) in each guest, in the background, and waits until it is in sync. */
export async function sandboxRun(host: Host, io: SandboxIo, name: string): Promise<number> {
  await checkSandboxHost(host);
  const record = load(name);
  const vpc = Vpc.open(host, record.vpc);
  for (const guest of vpc.guests) {
    const pid = running(record, guest.name);
    if (pid !== undefined) {
      io.out(`Guest ${guest.name}: the daemon runs already (pid ${pid}).\n`);
      continue;
    }
    const log = join(record.vpc.dir, `daemon-${guest.name}.log`);
    const fd = openSync(log, 'a');
    const argv = [
      'netns',
      'exec',
      vpc.guestNs(guest.name),
      ...selfCommand(),
      'run',
      '--root',
      vpc.guestRoot(guest.name),
      '--config',
      record.config,
      '--log-format',
      'text',
    ];
    const child = process
      .getBuiltinModule('node:child_process')
      .spawn('ip', argv, { stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    child.unref();
    if (child.pid === undefined) throw new HostError(`cannot start the daemon in guest ${guest.name}: see ${log}`);
    record.daemons[guest.name] = child.pid;
    save(record);
    io.out(`Guest ${guest.name}: daemon started (pid ${child.pid}); its log: ${log}\n`);
  }
  const took = await converge(
    host,
    vpc,
    record,
    vpc.guests.map((g) => g.name),
  );
  if (took === undefined) {
    io.err(`eip-agent: the daemons are not in sync after ${CONVERGE_MS / 1000} s: see the logs in ${record.vpc.dir}\n`);
    return 2;
  }
  io.out(
    `In sync after ${(took / 1000).toFixed(1)} s. Change the metadata with eip-agent sandbox change --name ${name} ...; the daemons follow.\n`,
  );
  return 0;
}

/** `sandbox change`: the cloud's side of one operation, then the daemons converging (or one apply where none runs). */
export async function sandboxChange(
  host: Host,
  io: SandboxIo,
  name: string,
  change: SandboxChange,
  json: boolean,
): Promise<number> {
  await checkSandboxHost(host);
  const record = load(name);
  const vpc = Vpc.open(host, record.vpc);
  const current = Object.fromEntries(vpc.guests.map((g) => [g.name, vpc.tree(g.name)]));
  const result = applyChange(vpc.record.plan, current, change);
  for (const { guest, tree } of result.trees) {
    const { attached, detached } = await vpc.updateGuest(guest, tree, { links: true });
    save(record);
    for (const nic of attached)
      io.err(`eip-agent: the cloud attached ${nic.mac} to guest ${guest}: it appears as ${nic.guestIf}\n`);
    for (const nic of detached)
      io.err(`eip-agent: the cloud detached ${nic.mac} (${nic.guestIf}) from guest ${guest}\n`);
  }
  io.err(`eip-agent: sandbox ${name}: ${result.description}\n`);
  const guests = [...new Set(result.trees.map((t) => t.guest))];
  const withDaemon = guests.filter((g) => running(record, g) !== undefined);
  if (withDaemon.length > 0 && (change.op === 'bind-eip' || change.op === 'unbind-eip')) {
    io.err(
      `eip-agent: a daemon's poll reads the listings; a change inside an address (an EIP, its mode) ` +
        `reaches it at its next full read, within ${FULL_READ_MS / 1000} s\n`,
    );
  }
  for (const guest of guests.filter((g) => !withDaemon.includes(g))) {
    const applied = await agent(vpc, record, guest, ['apply']);
    io.err(
      `eip-agent: no daemon runs in guest ${guest} (eip-agent sandbox run starts one): ran apply once, exit ${applied.exitCode}\n`,
    );
    if (applied.exitCode !== 0) io.err(applied.stdout + applied.stderr);
  }
  if (withDaemon.length > 0) {
    const took = await converge(host, vpc, record, withDaemon);
    if (took === undefined) {
      io.err(
        `eip-agent: the daemon of guest ${withDaemon.join(' and ')} is not in sync after ${CONVERGE_MS / 1000} s: see ${record.vpc.dir}/daemon-*.log\n`,
      );
      return 2;
    }
    io.err(`eip-agent: the daemon of guest ${withDaemon.join(' and ')} converged in ${(took / 1000).toFixed(1)} s\n`);
  }
  return finish(vpc, record, io, json);
}

/** `sandbox status`: the sandbox's guests and daemons, every EIP pinged, every guest verified. */
export async function sandboxStatus(host: Host, io: SandboxIo, name: string, json: boolean): Promise<number> {
  await checkSandboxHost(host);
  const record = load(name);
  const vpc = Vpc.open(host, record.vpc);
  const missing = vpc.namespaces().filter((ns) => !listNamespaces().includes(ns));
  if (missing.length > 0)
    throw new HostError(
      `sandbox ${name} is broken, ${missing.join(', ')} is gone: eip-agent sandbox down --name ${name}, then up again`,
    );
  if (!json) {
    io.out(
      `Sandbox ${name}: target ${record.target}, namespaces ${vpc.namespaces().join(', ')}, files in ${record.vpc.dir}\n`,
    );
    for (const guest of vpc.guests) {
      const pid = running(record, guest.name);
      io.out(
        `Guest ${guest.name}: ${guest.nics.map((n) => `${n.guestIf} ${n.mac} ${n.primaryIp}`).join(', ')}; ` +
          `daemon ${pid === undefined ? 'not running' : `running (pid ${pid})`}\n`,
      );
    }
  }
  return finish(vpc, record, io, json);
}

/** `sandbox down`: kills every process in the sandbox's namespaces, deletes them and its directory. */
export async function sandboxDown(host: Host, io: SandboxIo, name: string): Promise<number> {
  await checkSandboxHost(host);
  const id = sandboxId(name);
  const namespaces = listNamespaces().filter((ns) => ns.startsWith(`${id}-`));
  const dir = sandboxDir(name);
  if (namespaces.length === 0 && !existsSync(dir)) {
    io.out(`No sandbox named ${name}: nothing to remove.\n`);
    return 0;
  }
  try {
    destroyVpc(id, dir);
  } catch (error) {
    throw new HostError(`sandbox ${name}: ${(error as Error).message}: remove them with ip netns del`);
  }
  io.out(`Removed sandbox ${name}: ${namespaces.length} namespaces and ${dir}.\n`);
  return 0;
}

/** One line for anything a sandbox step throws that is not already the agent's own error. */
export function asAgentError(error: unknown): unknown {
  return error instanceof AgentError ? error : new HostError((error as Error).message.split('\n')[0] ?? String(error));
}
