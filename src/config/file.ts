import { SETTINGS, type Setting, type SettingKey, type SettingValue } from '../settings.js';
import { ConfigError, quoteShort } from '../errors.js';
import { windowsAgentDir, type Host } from '../host/host.js';
import { untrustedWriters } from '../host/windows-acl.js';

/** Settings a config file may hold (all optional; command-line options win, then env, then the file): see SETTINGS. */
export type FileConfig = { [K in SettingKey]?: SettingValue<K> };

/** The config file read when --config is not given; a missing default file is not an error. */
export const DEFAULT_CONFIG_PATH = '/etc/eip-agent/config.json';

/** The default config file of this host: on Windows in the agent's directory, never `C:\\etc\\...`. */
export function defaultConfigPath(host: Pick<Host, 'platform' | 'env'>): string {
  return host.platform === 'win32' ? `${windowsAgentDir(host)}\\config.json` : DEFAULT_CONFIG_PATH;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** ignoreNics: a list of distinct MACs, returned lower-case (the OS's spelling). */
function parseMacList(path: string, value: unknown): string[] {
  if (!Array.isArray(value))
    throw new ConfigError(`${path}: ignoreNics: ${JSON.stringify(value)} is not a list of MAC addresses`);
  const macs = value.map((mac) => {
    if (typeof mac !== 'string' || !MAC.test(mac))
      throw new ConfigError(`${path}: ignoreNics: ${JSON.stringify(mac)} is not a MAC address like 52:54:00:8a:7a:64`);
    return mac.toLowerCase();
  });
  const duplicate = macs.find((mac, i) => macs.indexOf(mac) !== i);
  if (duplicate !== undefined) throw new ConfigError(`${path}: ignoreNics: ${duplicate} is listed twice`);
  return macs;
}

/** metricsTextfile: node_exporter's textfile collector reads only absolute `*.prom` files. */
function parseTextfile(path: string, value: unknown): string {
  if (typeof value !== 'string' || !/^\/[^\s\0]*[^/\s\0]\.prom$/.test(value) || value.split('/').includes('..')) {
    throw new ConfigError(`${path}: metricsTextfile: ${JSON.stringify(value)} is not an absolute path ending in .prom`);
  }
  return value;
}

/**
 * What is wrong with a metadata URL, or undefined: plain http:// with a host and a valid port (the service is
 * plain HTTP on a link-local address; the HTTP client would refuse https:// only after every retry).
 */
export function metadataUrlProblem(value: unknown): string | undefined {
  const shown = typeof value === 'string' ? quoteShort(value) : JSON.stringify(value);
  if (typeof value !== 'string' || /\s/.test(value)) return `${shown} is not a URL`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${shown} is not a URL (a port must be from 1 to 65535)`;
  }
  if (url.protocol !== 'http:') return `${shown}: only http:// is supported (the metadata service is plain HTTP)`;
  if (url.hostname === '' || url.port === '0') return `${shown} has no host or port 0`;
  return undefined;
}

/** One value of the config file, checked as its setting's kind says; throws naming the file and the key. */
function parseSetting(path: string, key: SettingKey, value: unknown): unknown {
  const setting: Setting = SETTINGS[key];
  switch (setting.kind) {
    case 'macs':
      return parseMacList(path, value);
    case 'textfile':
      return parseTextfile(path, value);
    case 'url': {
      const problem = metadataUrlProblem(value);
      if (problem !== undefined) throw new ConfigError(`${path}: ${key}: ${problem}`);
      return value;
    }
    case 'choice':
      if (typeof value !== 'string' || !setting.choices.includes(value))
        throw new ConfigError(`${path}: ${key}: ${JSON.stringify(value)} is not one of ${setting.choices.join(', ')}`);
      return value;
    case 'integer': {
      const [min, max] = setting.range;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
        throw new ConfigError(`${path}: ${key}: ${JSON.stringify(value)} is not an integer from ${min} to ${max}`);
      return value;
    }
  }
}

/** Validates a parsed config object; every problem names the file and the key. */
export function parseConfig(path: string, data: unknown): FileConfig {
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new ConfigError(`${path}: expected a JSON object`);
  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    if (!Object.hasOwn(SETTINGS, key))
      throw new ConfigError(`${path}: unknown setting "${key}" (known: ${Object.keys(SETTINGS).join(', ')})`);
    config[key] = parseSetting(path, key as SettingKey, value);
  }
  return config as FileConfig;
}

/**
 * On Windows the agent runs as SYSTEM and applies what the config says (the metadata URL above all): a config that
 * other accounts can change, or in a folder they can write, is refused with the command that restricts it.
 */
async function requireAdminOnly(host: Host, path: string): Promise<void> {
  const folder = path.slice(0, Math.max(path.lastIndexOf('\\'), path.lastIndexOf('/'))) || path;
  let findings: string[][];
  try {
    findings = await untrustedWriters(host, [path, folder]);
  } catch (error) {
    throw new ConfigError(`${path}: not used: ${(error as Error).message}`, { cause: error });
  }
  const [file = [], dir = []] = findings;
  const problems = [...file, ...dir.map((d) => `${d} (its folder)`)];
  if (problems.length === 0) return;
  throw new ConfigError(
    `${path}: not used: ${problems.join(', ')}, and SYSTEM would apply what it says; ` +
      `let only SYSTEM and Administrators write it: icacls "${folder}" /inheritance:r ` +
      `/grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F *S-1-5-32-545:(OI)(CI)RX, ` +
      `then icacls "${path}" /reset (install --windows-task restricts %ProgramData%\\eip-agent this way)`,
  );
}

/** Reads the config file: the explicit one must exist, the default one may be absent. */
export async function loadConfig(host: Host, explicitPath: string | undefined): Promise<FileConfig> {
  const path = explicitPath ?? host.env.EIP_AGENT_CONFIG ?? defaultConfigPath(host);
  // A config file may be a link (configuration management often places one); it is read, never written.
  const text = await host.fs.readText(path, { follow: true });
  if (text === null) {
    if (explicitPath !== undefined || host.env.EIP_AGENT_CONFIG !== undefined)
      throw new ConfigError(`config file ${path} not found`);
    return {};
  }
  if (host.platform === 'win32') await requireAdminOnly(host, path);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path}: not valid JSON: ${(error as Error).message}`);
  }
  return parseConfig(path, data);
}
