// The agent's settings, each written once: its kind, its words or bounds, its default, its command-line option and
// what it means. The command-line options and their help, the config file's check and its types, and the defaults the
// commands resolve all take them from here.

/** A setting that takes one of a few words. */
interface ChoiceSetting {
  kind: 'choice';
  choices: readonly string[];
  /** Absent: worked out at run time (`defaultDescription` says how). */
  default?: string;
}

/** A setting that takes an integer within inclusive bounds. */
interface IntegerSetting {
  kind: 'integer';
  range: readonly [number, number];
  default?: number;
}

/** A setting with its own check: a metadata URL, a list of MACs, a node_exporter textfile path. */
interface CheckedSetting {
  kind: 'url' | 'macs' | 'textfile';
  default?: string;
}

/** One setting: its value, what it means, and the command-line option that sets it too (if any). */
export type Setting = (ChoiceSetting | IntegerSetting | CheckedSetting) & {
  /** The option on the command line (kebab-case), where there is one. */
  option?: string;
  describe: string;
  /** What help shows as the default when it is not a fixed value (env, the running OS). */
  defaultDescription?: string;
};

/** Every setting, by its config-file key, in the order help and error messages list them. */
export const SETTINGS = {
  metadataUrl: {
    kind: 'url',
    option: 'metadata-url',
    default: 'http://169.254.0.23/latest/meta-data/',
    describe: 'metadata base URL (env EIP_AGENT_METADATA_URL)',
  },
  routing: {
    kind: 'choice',
    choices: ['policy', 'rp-filter'],
    default: 'policy',
    option: 'routing',
    describe: 'how secondary NICs route their replies',
  },
  connectionMarks: {
    kind: 'choice',
    choices: ['on', 'off'],
    default: 'on',
    option: 'connection-marks',
    describe:
      "Linux, policy mode: replies of forwarded or NATed connections (a container's published port) leave " +
      "by the NIC their original destination is on (nftables table inet eip-agent; iptables' mangle table " +
      'where there is no nft)',
  },
  cloudInit: {
    kind: 'choice',
    choices: ['keep', 'disable'],
    default: 'keep',
    option: 'cloud-init',
    describe:
      "Linux: disable (write /etc/cloud/cloud.cfg.d/99-eip-agent-network.cfg, owned like every file) or keep cloud-init's network configuration",
  },
  target: {
    kind: 'choice',
    choices: ['auto', 'centos', 'networkmanager', 'netplan', 'windows'],
    option: 'target',
    describe:
      'guest OS to configure: centos (ifcfg for the legacy network service), networkmanager (keyfile ' +
      'profiles), netplan (Ubuntu/Debian: netplan and systemd-networkd), windows; auto (Linux): centos ' +
      'where the legacy network service starts at boot, else networkmanager where NetworkManager runs, ' +
      'else netplan where netplan is configured',
    defaultDescription: 'the running OS',
  },
  reload: {
    kind: 'choice',
    choices: ['none', 'network', 'nmcli'],
    default: 'none',
    option: 'reload',
    describe:
      'after writing files: none, `systemctl restart network.service` (drops sessions), or `nmcli connection reload`',
  },
  windowsFlavor: {
    kind: 'choice',
    choices: ['powershell', 'netsh'],
    default: 'powershell',
    option: 'windows-flavor',
    describe: 'Windows target: what the PowerShell script changes adapters with, NetTCPIP cmdlets or netsh',
  },
  metadataTimeoutMs: {
    kind: 'integer',
    range: [100, 60_000],
    default: 2000,
    describe: 'milliseconds one metadata request may take',
  },
  metadataConcurrency: {
    kind: 'integer',
    range: [1, 256],
    default: 16,
    describe: 'metadata requests in flight at once',
  },
  metadataRetries: {
    kind: 'integer',
    range: [0, 10],
    default: 3,
    describe: 'retries of a metadata request that failed or timed out, with backoff',
  },
  metadataMaxBytes: {
    kind: 'integer',
    range: [1024, 16 * 1024 * 1024],
    default: 64 * 1024,
    describe: 'largest answer accepted for one metadata item, in bytes',
  },
  interval: {
    kind: 'integer',
    range: [1, 3600],
    default: 5,
    option: 'interval',
    describe: '`run`: seconds between metadata polls',
  },
  metricsPort: {
    kind: 'integer',
    range: [1, 65535],
    describe: '`run`: serve the metrics at http://127.0.0.1:PORT/metrics (loopback only)',
  },
  ignoreNics: {
    kind: 'macs',
    describe: 'MACs of secondary NICs to leave alone (the primary NIC cannot be ignored)',
  },
  metricsTextfile: {
    kind: 'textfile',
    describe: "`run`: node_exporter's textfile collector file, rewritten after each apply, rollback or error",
  },
} as const satisfies Record<string, Setting>;

export type SettingKey = keyof typeof SETTINGS;

type Choices<K> = K extends { kind: 'choice'; choices: readonly (infer C)[] } ? C : never;
type Bounds<K> = K extends { kind: 'integer'; range: infer R } ? R : never;

/** The words each enumerated setting accepts, by its config-file key. */
export const CHOICES = Object.fromEntries(
  Object.entries(SETTINGS).flatMap(([key, s]) => (s.kind === 'choice' ? [[key, s.choices]] : [])),
) as {
  [K in SettingKey as Choices<(typeof SETTINGS)[K]> extends never ? never : K]: (typeof SETTINGS)[K] extends {
    choices: infer C;
  }
    ? C
    : never;
};

/** The bounds (inclusive) of each integer setting, by its config-file key. */
export const RANGES = Object.fromEntries(
  Object.entries(SETTINGS).flatMap(([key, s]) => (s.kind === 'integer' ? [[key, s.range]] : [])),
) as { [K in SettingKey as Bounds<(typeof SETTINGS)[K]> extends never ? never : K]: Bounds<(typeof SETTINGS)[K]> };

/** The value a setting holds once checked: one of its words, an integer, a URL or path, or a list of MACs. */
export type SettingValue<K extends SettingKey> = (typeof SETTINGS)[K] extends { kind: 'choice' }
  ? Choices<(typeof SETTINGS)[K]>
  : (typeof SETTINGS)[K] extends { kind: 'integer' }
    ? number
    : (typeof SETTINGS)[K] extends { kind: 'macs' }
      ? string[]
      : string;

/** The guest operating systems the agent can configure. */
export type TargetName = SettingValue<'target'>;
/** How secondary NICs route their replies. */
export type RoutingMode = SettingValue<'routing'>;
/** What runs after the files are written: nothing (the live state is changed in place), the network service, or nmcli. */
export type ReloadMode = SettingValue<'reload'>;
export type CloudInitMode = SettingValue<'cloudInit'>;
export type WindowsFlavor = SettingValue<'windowsFlavor'>;
