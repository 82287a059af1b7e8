// The systemd unit of the daemon. systemd/eip-agent.service in the repository is this text for the
// default install paths (a test keeps them equal); `eip-agent install --systemd` writes it with the
// paths of the running installation.
import { posix } from 'node:path';
import { ConfigError } from '../errors.js';

/** Where `install --systemd` writes the unit (under --root). */
export const UNIT_PATH = '/etc/systemd/system/eip-agent.service';
export const UNIT_NAME = 'eip-agent.service';
/** First line of the unit: the agent replaces or removes only a unit that starts with it. */
export const UNIT_MARKER = '# Managed by eip-agent';

/** node_exporter's usual textfile-collector directory (Debian/RHEL packages). */
export const DEFAULT_TEXTFILE_DIR = '/var/lib/node_exporter/textfile_collector';

/** What varies between installations. */
export interface UnitOptions {
  /** Absolute path of the node binary. */
  node: string;
  /** Absolute path of bin/eip-agent.js (or the `eip-agent` link to it). */
  bin: string;
  /** The release executable: when set, ExecStart runs it (node and bin are not used). */
  executable?: string;
  /** --config to pass to `run`, when not the default file. */
  config?: string;
  /** The config's metricsTextfile, whose directory must be writable. */
  metricsTextfile?: string;
  /** The systemd that will run the unit (`systemctl --version`); unknown: a current one. */
  systemdVersion?: number;
}

/** The first systemd that knows the @system-service group. */
const SYSTEM_SERVICE_GROUP = 239;

/**
 * The allow-list of system calls. An older systemd (CentOS 7 has 219) ignores the group name it
 * does not know and would allow almost nothing, killing the agent at start: leave it out there.
 */
function syscallFilter(version: number | undefined): string {
  if (version === undefined || version >= SYSTEM_SERVICE_GROUP) return 'SystemCallFilter=@system-service';
  return `# SystemCallFilter=@system-service needs systemd >= ${SYSTEM_SERVICE_GROUP}; systemd ${version} would read it as an empty allow-list.`;
}

/** systemd version that runs `ExecStartPre=+...` outside the sandbox (the `+` prefix). */
const FULL_PRIVILEGE_PREFIX = 231;

/**
 * The directories the agent writes must exist before the sandbox starts: ProtectSystem=strict makes everything else
 * read-only and ReadWritePaths=-X skips a missing X, so `mkdir /etc/sysconfig` would fail with EROFS on a guest that
 * has none. Created 0755 (not the service's UMask=0077).
 */
function prepareDirectories(version: number | undefined): string {
  const mkdir = `/bin/mkdir -p -m 0755 ${WRITABLE_DIRS.join(' ')}`;
  if (version === undefined || version >= FULL_PRIVILEGE_PREFIX) return `ExecStartPre=+${mkdir}`;
  return `# systemd ${version} has no ExecStartPre=+ (>= ${FULL_PRIVILEGE_PREFIX}): create them by hand if missing: ${mkdir}`;
}

/** What the agent writes besides its state and runtime directories. */
const WRITABLE_DIRS = ['/etc/sysconfig/network-scripts', '/etc/sysctl.d'];
/** Where `netplan generate` writes networkd's and udev's files from the agent's netplan file (target netplan). */
const NETPLAN_GENERATED_DIRS = ['/run/systemd/network', '/run/systemd/system', '/run/udev/rules.d'];
/** Written only where their stack is installed (target networkmanager or netplan, --cloud-init disable): never created. */
const STACK_DIRS = [
  '/etc/NetworkManager/system-connections',
  '/etc/cloud/cloud.cfg.d',
  '/etc/netplan',
  '/etc/systemd/network',
  ...NETPLAN_GENERATED_DIRS,
];

/** The version number in \`systemctl --version\`'s first line (\`systemd 252 (252.38-1~deb12u1)\`). */
export function parseSystemdVersion(output: string): number | undefined {
  const match = /^systemd (\d+)/.exec(output.trimStart());
  return match ? Number(match[1]) : undefined;
}

/** The paths the repository's unit file is written for: a global `npm install -g` with prefix /usr. */
export const DEFAULT_UNIT_OPTIONS: UnitOptions = {
  node: '/usr/bin/node',
  bin: '/usr/lib/node_modules/eip-agent/bin/eip-agent.js',
};

/** Directories the service cannot see: ProtectHome= hides the first two, PrivateTmp= gives it its own /tmp. */
const HIDDEN_FROM_SERVICE = ['/home', '/root', '/run/user', '/tmp', '/var/tmp'];

/** A path that can go into ExecStart= or ReadWritePaths= as it is: no spaces, quotes, `%` specifiers or `$` variables. */
function unitPath(what: string, path: string): string {
  if (!/^\/[\w.+@:/-]+$/.test(path) || path.split('/').includes('..')) {
    throw new ConfigError(
      `${what} ${JSON.stringify(path)}: a unit file needs an absolute path of letters, digits and . _ + @ : / - only`,
    );
  }
  return path;
}

/** Refuses a path the sandboxed service could not see (ProtectHome=, PrivateTmp=): the unit would never start. */
export function requireVisibleToService(what: string, path: string): string {
  const hidden = HIDDEN_FROM_SERVICE.find((dir) => path === dir || path.startsWith(`${dir}/`));
  if (hidden !== undefined) {
    throw new ConfigError(
      `${what} ${path}: the service cannot see ${hidden} (ProtectHome=, PrivateTmp=); install eip-agent elsewhere (e.g. /usr/local/lib) and give that path`,
    );
  }
  return path;
}

/**
 * Node flags of the service: a 1 MB young generation keeps a daemon that lives for weeks near the
 * memory it uses (a few hundred KB of garbage per poll) instead of V8's 16 MB default, at no
 * measurable CPU cost for its small, short-lived allocations; `--expose-gc` lets the daemon collect
 * after each stage of a pass (see Host.collectGarbage), which V8 alone left to grow: on the 8 x 30
 * guest, peak RSS 105 -> 71 MB, in sync 100 -> 62 MB; one V8 worker thread instead of four (each
 * thread's allocations in a malloc arena of its own): peak 66.6-68.0 -> 63.8-65.2 MB, anonymous
 * memory in sync 18-20.5 -> 16.6-17.1 MB (see the benchmarks).
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--expose-gc', '--v8-pool-size=1'] as const;

/**
 * Environment of the service when it runs the release executable. JavaScriptCore (Bun's engine) without its
 * optimizing tiers (DFG, and FTL above it): a daemon that wakes once a second for a few requests never gains from
 * them, and compiling costs memory and CPU: on the 8 x 30 guest at --interval 1, peak RSS 93-98 -> 81-86 MB and
 * in-sync CPU 0.47-0.53% -> 0.42-0.43% of a core. Without Bun's own collection timer, which collects every second
 * while the heap moves, every 30 s once it is still: the daemon collects after each stage of a pass itself (see
 * Host.collectGarbage), and on the timer's every-second collections its main thread took 2.2 ms a second instead of
 * 1.3 for the half minute after each pass; in-sync CPU 0.51-0.60% -> 0.43-0.48%, same peak and anonymous memory
 * (see the benchmarks).
 */
export const DAEMON_EXECUTABLE_ENV = { BUN_JSC_useDFGJIT: '0', BUN_GC_TIMER_DISABLE: '1' } as const;

/** The unit text. */
export function renderUnit(options: UnitOptions): string {
  const program =
    options.executable !== undefined
      ? [unitPath('--executable', options.executable)]
      : [unitPath('--node', options.node), ...DAEMON_NODE_FLAGS, unitPath('--bin', options.bin)];
  const environment =
    options.executable === undefined
      ? ''
      : `# The release executable's engine without its optimizing JIT tiers and without its collection timer (the daemon\n# collects after each stage itself): less memory and CPU for a daemon that polls.\n${Object.entries(
          DAEMON_EXECUTABLE_ENV,
        )
          .map(([k, v]) => `Environment=${k}=${v}\n`)
          .join('')}`;
  const exec = [
    ...program,
    'run',
    ...(options.config !== undefined ? ['--config', unitPath('--config', options.config)] : []),
  ];
  const textfileDirs = new Set([DEFAULT_TEXTFILE_DIR]);
  if (options.metricsTextfile !== undefined)
    textfileDirs.add(unitPath('metricsTextfile', posix.dirname(options.metricsTextfile)));
  return `${UNIT_MARKER} (\`eip-agent install --systemd\`); \`eip-agent uninstall --systemd\` removes it.
[Unit]
Description=eip-agent: configures ENIs, secondary private IPs and EIPs from the instance metadata
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
${prepareDirectories(options.systemdVersion)}
ExecStart=${exec.join(' ')}
${environment}ExecReload=/bin/kill -HUP $MAINPID
Restart=always
RestartSec=5s
# SIGTERM lets an apply in progress finish (or roll back) before the agent exits.
TimeoutStopSec=90s
# The daemon peaks near 70 MB; a runaway (a huge metadata answer, a leak) is stopped and restarted, not left to grow.
MemoryMax=256M

# Writable: the lock (/run/eip-agent), the state (/var/lib/eip-agent), the files the agent writes
# and node_exporter's textfile directory ("-": a directory that does not exist is skipped).
RuntimeDirectory=eip-agent
RuntimeDirectoryPreserve=yes
StateDirectory=eip-agent
ProtectSystem=strict
ReadWritePaths=${[...WRITABLE_DIRS, ...STACK_DIRS].map((d) => `-${d}`).join(' ')} ${[...textfileDirs].map((d) => `-${d}`).join(' ')}
# Files get their modes explicitly (0644 for ifcfg and the metrics, 0600 for the state).
UMask=0077

# Root, but only with the capabilities of \`ip\` (CAP_NET_ADMIN), \`ping\` and \`arping\` (CAP_NET_RAW).
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW
AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW
NoNewPrivileges=yes
# AF_NETLINK for \`ip\`, AF_PACKET for the gratuitous ARP (\`arping -U\`), AF_UNIX for systemctl/nmcli (--reload).
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET
${syscallFilter(options.systemdVersion)}
SystemCallErrorNumber=EPERM
SystemCallArchitectures=native
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateIPC=yes
PrivateMounts=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
# Deliberately not set:
# ProtectKernelTunables=yes makes /proc/sys read-only, and the agent sets
#   net.ipv4.conf.*.rp_filter with \`sysctl -w\` (systemd-networkd's unit omits it for the same reason).
# ProtectProc=invisible / ProcSubset=pid hide the lock holder's /proc/<pid> (a root \`eip-agent apply\`
#   has capabilities this service lacks) and /proc/sys respectively.
# MemoryDenyWriteExecute=yes breaks V8's JIT compiler.
# PrivateNetwork=, IPAddressDeny= would cut the agent off the network it configures.

[Install]
WantedBy=multi-user.target
`;
}
