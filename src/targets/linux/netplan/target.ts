import { parse } from 'yaml';
import { isManaged } from '../../../plan/plan.js';
import { underRoot } from '../../../plan/root.js';
import { firstLine, runTool } from '../../../host/run-tool.js';
import { ApplyError } from '../../../errors.js';
import type { Host } from '../../../host/host.js';
import { describeNetworkStack, detectNetworkStack } from '../boot-stack.js';
import type { NetplanDefinition } from './render.js';
import { isNetplanPath, NETPLAN_DIRS, NETPLAN_FILE, renderNetplan, SAFE_ID } from './render.js';
import { linuxTarget } from '../target.js';

/** The guest's own netplan configuration, as the agent reads it. */
interface NetplanGuest {
  /** The ethernets definitions of every file but the agent's, merged by id in netplan's order. */
  definitions: NetplanDefinition[];
  /** Why the agent cannot write beside these files (a file netplan cannot read either, NetworkManager as renderer). */
  problem?: string;
}

const NETPLAN_BINARIES = ['/usr/sbin/netplan', '/usr/bin/netplan', '/sbin/netplan'];
const OWN_NAME = NETPLAN_FILE.split('/').at(-1)!;

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** netplan's files by name, a later directory's file replacing an earlier one's, in the order netplan reads them. */
async function netplanFiles(host: Host, root: string): Promise<string[]> {
  const byName = new Map<string, string>();
  for (const dir of NETPLAN_DIRS) {
    for (const name of (await host.fs.list(underRoot(root, dir))) ?? [])
      if (name.endsWith('.yaml')) byName.set(name, `${dir}/${name}`);
  }
  return [...byName.keys()]
    .sort()
    .filter((name) => name !== OWN_NAME)
    .map((name) => byName.get(name)!);
}

/** Reads the guest's netplan files (read-only): each ethernets definition, merged by id as netplan merges them. */
async function readNetplan(host: Host, root: string): Promise<NetplanGuest> {
  const merged = new Map<string, NetplanDefinition>();
  for (const path of await netplanFiles(host, root)) {
    const text = await host.fs.readText(underRoot(root, path), { follow: true }).catch(() => null);
    if (text === null) continue;
    let doc: unknown;
    try {
      doc = parse(text);
    } catch (error) {
      return {
        definitions: [],
        problem: `${path} is not valid YAML (${firstLine((error as Error).message)}): netplan cannot read it either; fix it`,
      };
    }
    const network = record(record(doc)?.network);
    if (network?.renderer === 'NetworkManager')
      return {
        definitions: [],
        problem: `${path} hands the NICs to NetworkManager (renderer: NetworkManager): use --target networkmanager`,
      };
    for (const [id, value] of Object.entries(record(network?.ethernets) ?? {})) {
      const def = record(value) ?? {};
      if (def.renderer === 'NetworkManager')
        return {
          definitions: [],
          problem: `${path} hands ${id} to NetworkManager (renderer: NetworkManager): use --target networkmanager`,
        };
      if (!SAFE_ID.test(id))
        return {
          definitions: [],
          problem: `${path} defines ${JSON.stringify(id)}, a netplan id the agent does not write into a drop-in's path; rename it`,
        };
      const before = merged.get(id);
      const match = record(def.match);
      const mac = typeof match?.macaddress === 'string' ? match.macaddress.toLowerCase() : before?.mac;
      const name =
        match !== undefined
          ? typeof match.name === 'string'
            ? match.name
            : undefined
          : before !== undefined
            ? before.name
            : id;
      const dhcp4 =
        def.dhcp4 !== undefined
          ? def.dhcp4 === true || def.dhcp4 === 'yes' || def.dhcp4 === 'true'
          : (before?.dhcp4 ?? false);
      merged.set(id, {
        id,
        file: before?.file ?? path,
        ...(mac !== undefined ? { mac } : {}),
        ...(name !== undefined ? { name } : {}),
        dhcp4,
      });
    }
  }
  return { definitions: [...merged.values()] };
}

async function netplanInstalled(host: Host, root: string): Promise<boolean> {
  for (const path of NETPLAN_BINARIES) if ((await host.fs.meta(underRoot(root, path))) !== null) return true;
  return false;
}

/**
 * After the agent's netplan files changed: `netplan generate` writes networkd's files from them (in /run, as at every
 * boot), so that networkd configures what the agent set live whenever it starts (a boot, a restart, `netplan apply`).
 * Not `networkctl reload`: it has networkd reconfigure the changed NICs at once, and measured against a real networkd
 * that took the agent's live addresses and rules away for a moment, long enough for a verification to fail.
 */
async function generate(host: Host, root: string, paths: readonly string[]): Promise<string[]> {
  if (!paths.some(isNetplanPath)) return [];
  const argv = ['netplan', 'generate', ...(root !== '/' ? ['--root-dir', root] : [])];
  const generated = await runTool(host, argv, { timeoutMs: 60_000 });
  if (generated.exitCode !== 0) {
    throw new ApplyError(
      `\`${argv.join(' ')}\` exited ${generated.exitCode}: ${firstLine(generated.stderr || generated.stdout)}: ` +
        `systemd-networkd would not use the new files at boot; changes undone`,
    );
  }
  return [];
}

/**
 * Ubuntu and Debian guests whose network netplan configures (cloud-init's /etc/netplan/50-cloud-init.yaml) and
 * systemd-networkd runs: one netplan file, /etc/netplan/90-eip-agent.yaml, that netplan merges with the guest's own
 * (eth0 keeps cloud-init's DHCP and gains its secondary addresses), and the policy rules as networkd drop-ins. The
 * live state is changed with `ip` as on every Linux target.
 */
export const netplanTarget = linuxTarget<NetplanGuest>({
  name: 'netplan',
  readGuest: readNetplan,
  render: (model, options, guest) => renderNetplan(model, { ...options, definitions: guest.definitions }),
  async bootCheck(host, root, known, guest) {
    const stack = known ?? (await detectNetworkStack(host, root));
    const description = describeNetworkStack(stack);
    const refuse = (why: string) => ({
      description,
      stack,
      refusal: `target netplan writes ${NETPLAN_FILE}, and ${why}; nothing was written`,
    });
    if (!(await netplanInstalled(host, root)))
      return refuse(
        'netplan is not installed (/usr/sbin/netplan): nothing would read it at boot; on Debian: apt-get ' +
          'install netplan.io, or use the target of the stack that configures the NICs',
      );
    if (guest.problem !== undefined) return refuse(guest.problem);
    return { description, stack };
  },
  async ownTables(host, root) {
    const text = await host.fs.readText(underRoot(root, NETPLAN_FILE)).catch(() => null);
    if (!isManaged(text)) return [];
    return [...(text ?? '').matchAll(/^\s+table: (\d+)$/gm)].map((m) => Number(m[1]));
  },
  afterWrite: generate,
});
