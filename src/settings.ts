// The agent's settings that take one of a few words or a number in a range: the one place their choices and bounds
// are written. The command-line options, the config file's check and the types all take them from here.

/** The words each enumerated setting accepts, by its config-file key. */
export const CHOICES = {
  routing: ['policy', 'rp-filter'],
  connectionMarks: ['on', 'off'],
  cloudInit: ['keep', 'disable'],
  target: ['auto', 'centos', 'networkmanager', 'netplan', 'windows'],
  reload: ['none', 'network', 'nmcli'],
  windowsFlavor: ['powershell', 'netsh'],
} as const;

/** The bounds (inclusive) of each integer setting, by its config-file key. */
export const RANGES = {
  metadataTimeoutMs: [100, 60_000],
  metadataConcurrency: [1, 256],
  metadataRetries: [0, 10],
  metadataMaxBytes: [1024, 16 * 1024 * 1024],
  interval: [1, 3600],
  metricsPort: [1, 65535],
} as const;

/** The guest operating systems the agent can configure. */
export type TargetName = (typeof CHOICES.target)[number];
/** How secondary NICs route their replies. */
export type RoutingMode = (typeof CHOICES.routing)[number];
/** What runs after the files are written: nothing (the live state is changed in place), the network service, or nmcli. */
export type ReloadMode = (typeof CHOICES.reload)[number];
export type CloudInitMode = (typeof CHOICES.cloudInit)[number];
export type WindowsFlavor = (typeof CHOICES.windowsFlavor)[number];
