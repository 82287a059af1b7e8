// A real boot for the service: small Debian 12 VMs (debootstrap from Debian's packages, systemd 252, Debian's cloud
// kernel booted with -kernel/-initrd; one image with NetworkManager 1.42, one with netplan, systemd-networkd and Docker),
// each cached between runs by the hash of its recipe, started under qemu (KVM when it works, else TCG) with its NICs on
// taps that take the places of a lab guest's ports, so the lab's gateways, metadata emulator, EIP NAT and anti-spoofing
// serve it, and dnsmasq in the router's namespace can be its DHCP. A command channel: a shell on a virtio-serial port,
// started by a unit of the image. No SSH, no passwords.
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab, type Lab } from '../lab/vpc.js';
import { planTopology, type LabGuestSpec, type NicPlan } from '../../src/sandbox/topology.js';

/** What an image is built from: Debian's packages, and what is written into the tree before it becomes a disk. */
interface Recipe {
  packages: string[];
  /** Files to write (path inside the image -> content). */
  files: Record<string, string>;
  /** Units to enable with `systemctl --root`. */
  enable: string[];
}

const SUITE = 'bookworm';
const MIRROR = 'http://deb.debian.org/debian';

/** The shell on the command port: one per connection, restarted after each. */
const CMD_UNIT = `[Unit]
Description=eip-agent test command channel (a shell on the virtio-serial port eip.cmd)
After=systemd-udevd.service

[Service]
ExecStartPre=/bin/sh -c 'until [ -e /dev/virtio-ports/eip.cmd ]; do sleep 0.2; done'
ExecStart=/bin/sh -c 'exec /bin/sh 0<>/dev/virtio-ports/eip.cmd 1>&0 2>&0'
Restart=always
RestartSec=0.5

[Install]
WantedBy=multi-user.target
`;

/** NetworkManager as an EL9 cloud image has it: keyfiles, and no DHCP profiles made up for NICs without one. */
const NM_CONF = '[main]\nplugins=keyfile\nno-auto-default=*\n';

/**
 * The images: `networkmanager`, an EL-like guest whose NetworkManager owns the NICs (nftables for the agent's
 * connection marks); `netplan`, an Ubuntu-like guest where netplan renders systemd-networkd's files and
 * NetworkManager is absent, with Docker (Debian's docker.io; AppArmor, without which the kernel's AppArmor keeps every container in "Created") and busybox for a container's web server.
 */
const RECIPES = {
  networkmanager: {
    packages: [
      'systemd',
      'systemd-sysv',
      'udev',
      'dbus',
      'libpam-systemd',
      'iproute2',
      'iputils-ping',
      'procps',
      'network-manager',
      'linux-image-cloud-amd64',
      'nftables',
    ],
    files: { 'etc/NetworkManager/NetworkManager.conf': NM_CONF },
    enable: [],
  },
  netplan: {
    packages: [
      'systemd',
      'systemd-sysv',
      'udev',
      'dbus',
      'libpam-systemd',
      'iproute2',
      'iputils-ping',
      'iputils-arping',
      'procps',
      'linux-image-cloud-amd64',
      'nftables',
      'netplan.io',
      'docker.io',
      'apparmor',
      'busybox-static',
    ],
    files: {},
    enable: ['systemd-networkd.service'],
  },
} satisfies Record<string, Recipe>;

export type VmFlavour = keyof typeof RECIPES;

/** Changing any of this rebuilds the image (the networkmanager recipe hashes as it did before there were two). */
function recipeKey(flavour: VmFlavour): string {
  const r = RECIPES[flavour];
  if (flavour === 'networkmanager')
    return JSON.stringify({ PACKAGES: r.packages, SUITE, MIRROR, CMD_UNIT, NM_CONF, version: 1 });
  return JSON.stringify({ flavour, ...r, SUITE, MIRROR, CMD_UNIT, version: 1 });
}

function tool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why a VM cannot be built or started here, or undefined. */
export function vmProblem(): string | undefined {
  for (const name of ['debootstrap', 'qemu-system-x86_64', 'mkfs.ext4', 'dnsmasq'])
    if (!tool(name))
      return `${name} is not installed (.ci/run installs debootstrap, qemu-system-x86, e2fsprogs and dnsmasq-base)`;
  return undefined;
}

export interface VmImage {
  disk: string;
  kernel: string;
  initrd: string;
}

/** Builds the image once per recipe (about a minute: debootstrap, then mkfs.ext4 -d), or returns the cached one. */
export function vmImage(flavour: VmFlavour = 'networkmanager'): VmImage {
  const recipe: Recipe = RECIPES[flavour];
  const hash = createHash('sha256').update(recipeKey(flavour)).digest('hex').slice(0, 16);
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'eip-agent-vm', hash);
  const done = join(cache, 'disk.img');
  if (!existsSync(done)) {
    const work = mkdtempSync(join(tmpdir(), 'eipvm-build-'));
    try {
      const root = join(work, 'rootfs');
      execFileSync(
        'debootstrap',
        ['--variant=minbase', `--include=${recipe.packages.join(',')}`, SUITE, root, MIRROR],
        { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 },
      );
      writeFileSync(join(root, 'etc/fstab'), '/dev/vda / ext4 defaults 0 1\n');
      writeFileSync(join(root, 'etc/hostname'), 'eip-vm\n');
      writeFileSync(join(root, 'etc/systemd/system/eip-cmd.service'), CMD_UNIT);
      mkdirSync(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
      execFileSync('ln', [
        '-sf',
        '/etc/systemd/system/eip-cmd.service',
        join(root, 'etc/systemd/system/multi-user.target.wants/eip-cmd.service'),
      ]);
      for (const [path, content] of Object.entries(recipe.files)) writeFileSync(join(root, path), content);
      for (const unit of recipe.enable)
        execFileSync('systemctl', ['--root', root, 'enable', unit], { stdio: 'ignore' });
      mkdirSync(cache, { recursive: true });
      const boot = readdirSync(join(root, 'boot'));
      const kernel = boot.find((n) => n.startsWith('vmlinuz-'));
      const initrd = boot.find((n) => n.startsWith('initrd.img-'));
      if (kernel === undefined || initrd === undefined)
        throw new Error(`no kernel or initrd in the image: ${boot.join(' ')}`);
      execFileSync('cp', [join(root, 'boot', kernel), join(cache, 'vmlinuz')]);
      execFileSync('cp', [join(root, 'boot', initrd), join(cache, 'initrd.img')]);
      execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', root, join(work, 'disk.img'), '2G']);
      renameSync(join(work, 'disk.img'), done);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return { disk: done, kernel: join(cache, 'vmlinuz'), initrd: join(cache, 'initrd.img') };
}

/** A disk with the files a run hands the VM (the release tarball, a setup script), mounted by that script's caller. */
export function seedDisk(dir: string, files: Record<string, string | { copyOf: string }>): string {
  const staging = join(dir, 'seed');
  mkdirSync(staging);
  for (const [name, content] of Object.entries(files)) {
    if (typeof content === 'string') writeFileSync(join(staging, name), content);
    else execFileSync('cp', [content.copyOf, join(staging, name)]);
  }
  const disk = join(dir, 'seed.img');
  execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'seed', '-d', staging, disk, '256M']);
  return disk;
}

export interface Vm {
  /** Runs a shell command in the guest as root; its output and exit code. */
  sh(command: string, timeoutMs?: number): Promise<{ code: number; out: string }>;
  /** Waits until the command channel answers (after a boot or a reboot). */
  ready(timeoutMs?: number): Promise<void>;
  /** The serial console so far, for messages. */
  console(): string;
  stop(): Promise<void>;
}

/** Takes a lab guest's ports for the VM: each veth pair goes, a tap with the port's name joins the same bridge. */
export async function tapsFor(lab: Lab, nics: readonly NicPlan[]): Promise<void> {
  for (const nic of nics) {
    for (const argv of [
      ['ip', 'link', 'del', nic.port],
      ['ip', 'tuntap', 'add', 'dev', nic.port, 'mode', 'tap'],
      ['ip', 'link', 'set', nic.port, 'master', nic.subnet.bridge, 'up'],
    ]) {
      const result = await lab.exec(lab.routerNs, argv);
      if (result.exitCode !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr.trim()}`);
    }
  }
}

/** KVM works when qemu, asked for it, stays up (stopped with -S) instead of exiting at once with an error. */
function kvmWorks(): boolean {
  try {
    execFileSync(
      'qemu-system-x86_64',
      [
        '-accel',
        'kvm',
        '-machine',
        'none',
        '-S',
        '-display',
        'none',
        '-monitor',
        'none',
        '-serial',
        'none',
        '-parallel',
        'none',
      ],
      { stdio: 'ignore', timeout: 1500 },
    );
    return false;
  } catch (error) {
    return (error as { signal?: string }).signal === 'SIGTERM';
  }
}

/** Boots the image with a throwaway overlay (-snapshot: the cached disk never changes), NICs on the lab's taps. */
export function startVm(lab: Lab, image: VmImage, seed: string, nics: readonly NicPlan[], dir: string): Vm {
  const socket = join(dir, 'cmd.sock');
  const serial = join(dir, 'serial.log');
  const accel = kvmWorks() ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max'];
  const args = [
    ...accel,
    '-m',
    '1024',
    '-smp',
    '2',
    '-nographic',
    '-monitor',
    'none',
    '-display',
    'none',
    '-snapshot',
    '-kernel',
    image.kernel,
    '-initrd',
    image.initrd,
    '-append',
    'root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1 quiet',
    '-drive',
    `file=${image.disk},if=virtio,format=raw`,
    '-drive',
    `file=${seed},if=virtio,format=raw,readonly=on`,
    '-serial',
    `file:${serial}`,
    '-device',
    'virtio-serial-pci',
    '-chardev',
    `socket,id=cmd,path=${socket},server=on,wait=off`,
    '-device',
    'virtserialport,chardev=cmd,name=eip.cmd',
    ...nics.flatMap((nic, i) => [
      '-netdev',
      `tap,id=n${i},ifname=${nic.port},script=no,downscript=no`,
      '-device',
      `virtio-net-pci,netdev=n${i},mac=${nic.mac}`,
    ]),
  ];
  const child: ChildProcess = spawn('ip', ['netns', 'exec', lab.routerNs, 'qemu-system-x86_64', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const readConsole = (): string => {
    try {
      return execFileSync('tail', ['-c', '4000', serial], { encoding: 'utf8' });
    } catch {
      return '';
    }
  };
  // One connection for the VM's life: the guest's shell ends when the host hangs up (and is restarted), so a command
  // sent right after a hang-up could meet no shell. Across a reboot the connection stays; what is written while the
  // guest's side is closed is lost, so only idempotent probes are sent then (ready, boot_id) and retried.
  let seq = 0;
  let conn: Socket | undefined;
  let buffer = '';
  const waiters = new Set<() => void>();
  const connection = (): Socket => {
    if (conn !== undefined && !conn.destroyed) return conn;
    const c = createConnection(socket);
    c.on('data', (b: Buffer) => {
      buffer = (buffer + b.toString()).slice(-1_000_000);
      for (const w of waiters) w();
    });
    c.on('error', () => undefined);
    c.on('close', () => {
      if (conn === c) conn = undefined;
    });
    conn = c;
    return c;
  };
  const sh = (command: string, timeoutMs = 120_000): Promise<{ code: number; out: string }> =>
    new Promise((resolve, reject) => {
      const marker = `__EIP_DONE_${process.pid}_${++seq}__`;
      const start = `__EIP_START_${process.pid}_${seq}__`;
      const check = (): void => {
        const from = buffer.indexOf(start);
        const found = from < 0 ? null : new RegExp(`${marker} (\\d+)`).exec(buffer.slice(from));
        if (found === null) return;
        waiters.delete(check);
        clearTimeout(timer);
        const text = buffer.slice(from + start.length, from + found.index);
        resolve({ code: Number(found[1]), out: text.replace(/\r/g, '').replace(/^\n/, '') });
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`vm: \`${command}\` timed out after ${timeoutMs} ms; output: ${buffer.slice(-2000)}`));
      }, timeoutMs);
      waiters.add(check);
      // No command reads the channel as its stdin (it would eat what follows); the output goes through a file.
      connection().write(
        `echo ${start}; { ${command}\n} </dev/null >/run/eip-cmd.out 2>&1; c=$?; cat /run/eip-cmd.out; echo "${marker} $c"\n`,
      );
    });
  return {
    sh,
    async ready(timeoutMs = 180_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (child.exitCode !== null)
          throw new Error(`qemu exited ${child.exitCode}: ${stderr}\nconsole:\n${readConsole()}`);
        try {
          const r = await sh('echo alive', 5_000);
          if (r.out.includes('alive')) return;
        } catch {
          // not up yet
        }
        if (Date.now() > deadline)
          throw new Error(`the VM did not answer within ${timeoutMs} ms; console:\n${readConsole()}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    },
    console: readConsole,
    async stop() {
      conn?.destroy();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}

/** The cloud's DHCP for a VM's NIC: dnsmasq in the router's namespace on the NIC's subnet bridge, one static lease. */
export interface Dhcp {
  /** What dnsmasq logged (the leases it gave). */
  log(): string;
  stop(): Promise<void>;
}

/** Serves `nic` its primary address, the subnet's mask and gateway as its router; DNS off. Needs dnsmasq (dnsmasq-base). */
export function serveDhcp(lab: Lab, nic: NicPlan): Dhcp {
  const { subnet } = nic;
  const mask = prefixMask(subnet.prefix);
  const network = subnet.cidr.split('/')[0]!;
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      lab.routerNs,
      'dnsmasq',
      '--keep-in-foreground',
      '--log-facility=-',
      '--log-dhcp',
      '--port=0',
      '--no-resolv',
      '--no-hosts',
      '--leasefile-ro',
      '--conf-file=/dev/null',
      `--interface=${subnet.bridge}`,
      '--bind-interfaces',
      `--dhcp-range=${network},static,${mask},12h`,
      `--dhcp-host=${nic.mac},${nic.primaryIp}`,
      `--dhcp-option=option:router,${subnet.gateway}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const keep = (b: Buffer): void => void (log = (log + b.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return {
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}

function prefixMask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 0xff).join('.');
}

/** How many times the service's journal of this boot says it verified an apply or found everything in sync. */
export async function convergeCount(vm: Vm): Promise<number> {
  return Number(
    (
      await vm.sh('journalctl -b -u eip-agent -o cat --no-pager | grep -cE "verified|in sync|unchanged" || true')
    ).out.trim(),
  );
}

/** Waits until the service's journal has more than `before` converges (within `timeoutMs`); the seconds since `since`. */
export async function convergedAfter(
  vm: Vm,
  before: number,
  since: number,
  what: string,
  timeoutMs = 120_000,
): Promise<number> {
  while ((await convergeCount(vm)) <= before) {
    if (Date.now() - since > timeoutMs)
      throw new Error(
        `${what}: the service did not converge: ${(await vm.sh('systemctl status eip-agent --no-pager; journalctl -u eip-agent --no-pager | tail -20')).out}`,
      );
    await new Promise((r) => setTimeout(r, 1000));
  }
  return (Date.now() - since) / 1000;
}

/** `systemctl reboot`, then waits for the command channel to answer from a new boot; the time the reboot began. */
export async function reboot(vm: Vm): Promise<number> {
  const bootId = async () => (await vm.sh('cat /proc/sys/kernel/random/boot_id', 5_000)).out.trim();
  const before = await bootId();
  await vm.sh('systemctl reboot', 10_000).catch(() => undefined);
  const rebooted = Date.now();
  for (;;) {
    const now = await bootId().catch(() => before);
    if (now !== before && now !== '') return rebooted;
    if (Date.now() - rebooted > 240_000)
      throw new Error(`the VM did not come back from the reboot; console:\n${vm.console()}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** One lab guest with a VM in its place, its seed disk holding setup.sh and the files it needs. */
export interface VmLab {
  readonly lab: Lab;
  readonly vm: Vm;
  readonly nics: readonly NicPlan[];
  /** Mounts the seed disk and runs its setup.sh as root. */
  runSetup(timeoutMs: number): Promise<{ code: number; out: string }>;
  /** Stops the VM (and the DHCP), tears the lab down, removes the run's files. */
  stop(): Promise<void>;
}

/**
 * Starts a lab for `spec`, boots the image of `flavour` in the guest's place with `seed(nics)` on its seed disk (with
 * the cloud's DHCP for eth0 when `dhcp`), and waits until the VM answers. Whatever it started is stopped if it fails.
 */
export async function startVmLab(
  flavour: VmFlavour,
  spec: LabGuestSpec,
  seed: (nics: readonly NicPlan[]) => Record<string, string | { copyOf: string }>,
  options: { dhcp?: boolean } = {},
): Promise<VmLab> {
  const nics = planTopology([spec]).guests[0]!.nics;
  const dir = mkdtempSync(join(tmpdir(), 'eipvm-'));
  let lab: Lab | undefined;
  let vm: Vm | undefined;
  let dhcp: Dhcp | undefined;
  const stop = async (): Promise<void> => {
    await vm?.stop();
    await dhcp?.stop();
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const image = vmImage(flavour);
    lab = await startLab([spec]);
    await tapsFor(lab, nics);
    if (options.dhcp === true) dhcp = serveDhcp(lab, nics[0]!);
    vm = startVm(lab, image, seedDisk(dir, seed(nics)), nics, dir);
    await vm.ready();
  } catch (error) {
    await stop();
    throw error;
  }
  const started = { lab, vm };
  return {
    ...started,
    nics,
    runSetup: (timeoutMs) =>
      started.vm.sh('mkdir -p /mnt/seed && mount -o ro /dev/vdb /mnt/seed && sh /mnt/seed/setup.sh', timeoutMs),
    stop,
  };
}
