// The part every Linux target shares: the live state (read with `ip`, changed with `ip -batch`, watched with `ip
// monitor`), ownership and removals, the plan of files. A target brings its renderer (which boot files) and its boot
// check (would anything read them at boot).
import { writeFiles } from '../../plan/files.js';
import type { LinuxLiveState } from './live-state.js';
import { readLinuxState, readSysctls } from './live-state.js';
import type { FileSnapshot, Plan, RuntimeChange } from '../../plan/plan.js';
import { emptyOwnership, planFiles } from '../../plan/plan.js';
import { planRuntime } from './plan-runtime.js';
import { planFileRemovals, planRemovals } from './removals.js';
import { emptyState } from '../../plan/record.js';
import { insideRoot, underRoot } from '../../plan/root.js';
import { requirePrivileges } from '../../plan/privileges.js';
import { applyRuntime } from './runtime.js';
import { promoteSecondariesKey } from './batch.js';
import { driftFilterOf, watchLinux } from './monitor.js';
import { foreignTables } from './tables-in-use.js';
import { planMarks, readMarks } from './marks.js';
import { MAX_MARKED_INDEX } from './rule-spec.js';
import { AgentError, ApplyError, HostError, MissingNicError } from '../../errors.js';
import type { Host } from '../../host/host.js';
import type { NetworkStack } from './boot-stack.js';
import { CLOUD_INIT_DROPIN, cloudInitDropIn } from './cloud-init.js';
import { resolveInterfaceNames } from '../../model/names.js';
import type { InstanceModel } from '../../model/types.js';
import { arpAnnounceKey, arpIgnoreKey, type LinuxRenderOptions } from './desired-runtime.js';
import type { LinuxDesiredRuntime, LinuxDesiredState } from '../../render/types.js';
import { allocateTables } from './tables.js';
import { verifyLinux } from './verify.js';
import { rollbackLast, rollbackOriginal } from './rollback.js';
import { statusReport } from './status.js';
import { liveLinuxNics } from './live-nics.js';
import { reloadNetwork } from './reload.js';
import type { ApplyOutcome, Target, TargetName } from '../target.js';

const RT_TABLES = ['/etc/iproute2/rt_tables', '/usr/share/iproute2/rt_tables'];
const RT_TABLES_DIRS = ['/etc/iproute2/rt_tables.d', '/usr/share/iproute2/rt_tables.d'];

async function readRtTables(host: Host, root: string): Promise<string[]> {
  const texts: string[] = [];
  for (const path of RT_TABLES) {
    const text = await host.fs.readText(underRoot(root, path), { follow: true });
    if (text !== null) texts.push(text);
  }
  for (const dir of RT_TABLES_DIRS) {
    for (const name of (await host.fs.list(underRoot(root, dir))) ?? []) {
      if (!name.endsWith('.conf')) continue;
      const text = await host.fs.readText(underRoot(root, `${dir}/${name}`), { follow: true });
      if (text !== null) texts.push(text);
    }
  }
  return texts;
}

async function snapshotFiles(host: Host, root: string, paths: readonly string[]): Promise<Map<string, FileSnapshot>> {
  const entries = await Promise.all(
    paths.map(async (path): Promise<[string, FileSnapshot]> => {
      const full = await insideRoot(host, root, path);
      const [current, meta, bak, agentBak] = await Promise.all([
        host.fs.readText(full),
        host.fs.meta(full),
        host.fs.readText(`${full}.bak`),
        host.fs.readText(`${full}.eip-agent.bak`),
      ]);
      return [path, { current, meta, bak, agentBakExists: agentBak !== null }];
    }),
  );
  return new Map(entries);
}

/** Reads the live state for a preview, which still works (naming NICs offline) without `ip`. */
async function tryReadLinuxState(host: Host): Promise<LinuxLiveState | null> {
  try {
    return await readLinuxState(host);
  } catch (error) {
    if (error instanceof HostError) return null;
    throw error;
  }
}

function sysctlKeysFor(names: Iterable<string>): string[] {
  const keys = ['net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.default.rp_filter'];
  for (const name of names)
    keys.push(`net.ipv4.conf.${name}.rp_filter`, promoteSecondariesKey(name), arpIgnoreKey(name), arpAnnounceKey(name));
  return keys;
}

/**
 * One gratuitous ARP per address: `arping` takes one address and waits a second, so a shell started per NIC runs that
 * NIC's at once and waits for them. The NIC and the addresses are the shell's arguments, never part of its script.
 */
export const ANNOUNCE_SCRIPT = 'ifname=$1; shift; for ip in "$@"; do arping -q -U -c 1 -I "$ifname" "$ip" & done; wait';

/**
 * Gratuitous ARP for each address just added, as initscripts' ifup does: an address that moved here
 * from another server (an EIP failover) is reachable as soon as the neighbours' caches follow. One detached process
 * per NIC, not per address: the agent holds 8 children for the 240 addresses of a full guest, not 240.
 */
export function announceAddresses(host: Host, applied: readonly RuntimeChange[]): void {
  const byNic = new Map<string, string[]>();
  for (const change of applied) {
    if (change.owns?.kind !== 'address' || change.releases !== undefined) continue;
    const { ifname, cidr } = change.owns.item;
    const [ip, prefix] = cidr.split('/');
    if (ip === undefined || prefix === '32') continue; // a /32 (direct EIP) is routed to the NIC, not resolved by ARP
    const ips = byNic.get(ifname) ?? [];
    ips.push(ip);
    byNic.set(ifname, ips);
  }
  for (const [ifname, ips] of byNic)
    host.runDetached(['sh', '-c', ANNOUNCE_SCRIPT, 'eip-agent-announce', ifname, ...ips]);
}

/** What makes one Linux target: its name, its files, and whether what it writes would be read at boot. */
export interface LinuxTargetSpec<G = undefined> {
  name: TargetName;
  /** `guest`: what readGuest read (undefined without it). */
  render(model: InstanceModel, options: LinuxRenderOptions, guest: G): LinuxDesiredState;
  /** Reads what the renderer needs from the guest's own configuration besides the live state (netplan: its other files). */
  readGuest?(host: Host, root: string): Promise<G>;
  /** Reads the guest's boot stack: a description for plan and status, and a refusal when nothing would read the files. */
  bootCheck(
    host: Host,
    root: string,
    known: NetworkStack | undefined,
    guest: G,
  ): Promise<{ description: Plan['bootStack']; refusal?: string; stack: NetworkStack }>;
  /** Routing tables the target's own files on the guest use (NetworkManager fills them at boot, with its own protocol). */
  ownTables?(host: Host, root: string): Promise<Iterable<number>>;
  /** After the files are written (and after they are put back): tell the stack that reads them. */
  afterWrite?(host: Host, root: string, paths: readonly string[]): Promise<string[]>;
}

/** A Linux target from its spec: plan, apply, verify and watch as every Linux target does them. */
export function linuxTarget<G = undefined>(spec: LinuxTargetSpec<G>): Target {
  return {
    name: spec.name,

    async plan(host, model, options) {
      const warnings: string[] = [];
      // A preview may run where `ip` is missing; apply and verify may not.
      const live = options.requireNics ? await readLinuxState(host) : await tryReadLinuxState(host);
      const links = live?.links ?? null;
      const onThisSystem = links !== null && model.nics.some((n) => links.some((l) => l.mac === n.macLower));
      if (links === null)
        warnings.push(
          '`ip` is not available (install iproute2): interface names are previewed and the runtime is not compared',
        );
      else if (!onThisSystem && !options.requireNics)
        warnings.push("none of the metadata's NICs is on this system: previewing files only, runtime not compared");
      // On the system the metadata describes, a plan of the runtime needs every NIC, as apply does; a preview elsewhere
      // (or of files only) names a missing one as a fresh guest would.
      const offline = options.previewMissingNics ?? (!options.requireNics && !(options.runtime && onThisSystem));
      const resolution = resolveInterfaceNames(model, onThisSystem ? links : null, offline);
      if (resolution.missing.length > 0) {
        throw new MissingNicError(
          `NIC ${resolution.missing.join(', ')} from the metadata is not present on this system (ip link): ` +
            `wait until the ENI is attached, or run with --no-runtime to write files only`,
        );
      }
      warnings.push(...resolution.warnings);
      const compareRuntime = options.runtime && onThisSystem && live !== null;
      if (compareRuntime) live.sysctls = await readSysctls(host, sysctlKeysFor(resolution.names.values()));
      const secondary = model.nics.filter((n) => !n.isPrimaryNic).map((n) => n.index);
      const taken = foreignTables(live, await readRtTables(host, options.root));
      // Tables the target's own boot files name are its own, whoever (NetworkManager at boot) filled them.
      for (const table of (await spec.ownTables?.(host, options.root)) ?? []) taken.delete(table);
      const tables = allocateTables(secondary, taken);
      const guest = (spec.readGuest !== undefined ? await spec.readGuest(host, options.root) : undefined) as G;
      const { warnings: renderWarnings = [], ...desired } = spec.render(
        model,
        {
          routing: options.routing,
          names: resolution.names,
          tables,
          connectionMarks: options.connectionMarks !== false,
        },
        guest,
      );
      warnings.push(...renderWarnings);
      for (const dev of desired.runtime.unmarked)
        warnings.push(
          `${dev}: only NICs 1 to ${MAX_MARKED_INDEX} get a connection mark; ` +
            `replies of forwarded or NATed connections to its addresses leave by the primary NIC`,
        );
      const boot = await spec.bootCheck(host, options.root, options.knownStack, guest);
      const ci = boot.stack.cloudInit;
      if (options.cloudInit === 'disable') desired.files.push(cloudInitDropIn());
      else if (ci.present && !ci.networkDisabled) {
        const when =
          ci.everyBoot === true
            ? 'with updates: network: when: [boot] it renders the network config again at every boot'
            : 'on a new instance (an image made of this guest) it renders the network config again';
        warnings.push(
          `cloud-init is installed and its network configuration is on: ${when}, over what eip-agent writes; ` +
            `--cloud-init disable writes ${CLOUD_INIT_DROPIN} (network: {config: disabled}) to stop it`,
        );
      }
      const state = options.state ?? emptyState();
      const rendered = new Set(desired.files.map((f) => f.path));
      const snapshots = await snapshotFiles(host, options.root, [
        ...rendered,
        ...state.owned.files.filter((p) => !rendered.has(p)),
      ]);
      let ownership = emptyOwnership();
      let removals: RuntimeChange[] = [];
      if (compareRuntime) {
        const primaryIfname = resolution.names.get(model.nics[0]?.macLower ?? '');
        const metadataMacs = new Set(model.nics.map((n) => n.macLower));
        ({ changes: removals, ownership } = planRemovals(
          desired,
          live,
          { state, metadataMacs, ...(primaryIfname ? { primaryIfname } : {}) },
          warnings,
        ));
        if (primaryIfname) ownership.primaryIfname = primaryIfname;
      }
      const current = new Map([...snapshots].map(([path, snap]) => [path, snap.current]));
      const files = [
        ...planFiles(desired.files, snapshots),
        ...planFileRemovals(state.owned.files, rendered, current, state, ownership),
      ];
      const runtime = compareRuntime ? [...removals, ...planRuntime(desired, live, warnings)] : [];
      if (compareRuntime) {
        const wantsMarks = desired.runtime.marks.length > 0 || (state.owned.marks?.length ?? 0) > 0;
        // nftables is read only as root; a preview without root says that the marks were not compared.
        if (wantsMarks && !host.isPrivileged())
          warnings.push('connection marks (nftables table inet eip-agent) are read only as root: not compared');
        const marks = planMarks(
          desired.runtime.marks,
          wantsMarks && host.isPrivileged() ? await readMarks(host) : undefined,
          state,
          warnings,
        );
        if (marks.change !== undefined) runtime.push(marks.change);
        ownership.absentNow.push(...marks.absentNow);
        ownership.pending.push(...marks.pending);
      }
      return {
        target: spec.name,
        root: options.root,
        files,
        runtime,
        warnings,
        runtimePlanned: compareRuntime,
        desired,
        ownership,
        bootStack: boot.description,
        ...(boot.refusal !== undefined ? { refusal: boot.refusal } : {}),
      };
    },

    async apply(host, plan, options): Promise<ApplyOutcome> {
      requirePrivileges(host, plan, options);
      const files = await writeFiles(host, options.root, plan.files);
      const paths = files.written.map((w) => w.path);
      const tell = async (): Promise<string[]> =>
        spec.afterWrite !== undefined && paths.length > 0 ? spec.afterWrite(host, options.root, paths) : [];
      let runtimeUndo = async (_options?: { keepRemovals?: boolean }): Promise<RuntimeChange[]> => [];
      let runtimeApplied: string[] = [];
      try {
        if (options.runtime) {
          const tx = await applyRuntime(host, plan.runtime);
          runtimeUndo = tx.undo;
          runtimeApplied = [...tx.applied.map((c) => c.summary), ...tx.notes];
          announceAddresses(host, tx.applied);
        }
        runtimeApplied.push(...(await tell()));
      } catch (error) {
        await runtimeUndo();
        await files.restore();
        await tell().catch(() => undefined);
        if (error instanceof AgentError) throw error;
        throw new ApplyError(`runtime changes failed: ${(error as Error).message}`, { cause: error });
      }
      const outcome: ApplyOutcome = {
        filesWritten: paths,
        runtimeApplied,
        undo: async (undoOptions) => {
          const kept = await runtimeUndo(undoOptions);
          await files.restore();
          await tell();
          return kept;
        },
      };
      // reloadNetwork does nothing for `none`.
      if (options.reload !== undefined && paths.length > 0) {
        try {
          await reloadNetwork(host, options.reload);
        } catch (error) {
          await outcome.undo();
          throw error;
        }
      }
      return outcome;
    },

    verify(host, plan) {
      // A Linux target produced this plan, so its runtime is the Linux one.
      return verifyLinux(host, plan.desired.runtime as LinuxDesiredRuntime);
    },

    async status(host, model, plan, state, options) {
      return statusReport({ model, plan, live: await readLinuxState(host), state, routing: options.routing });
    },

    liveNics: liveLinuxNics,

    rollback(host, root, { original }) {
      // Every Linux target owns the same kinds of things, recorded the same way: one rollback for all.
      return original ? rollbackOriginal(host, root) : rollbackLast(host, root);
    },

    watch(host, plan, onDrift) {
      const filterOf = (p: typeof plan) => driftFilterOf(p.desired.runtime as LinuxDesiredRuntime);
      const watch = watchLinux(host, filterOf(plan), onDrift);
      return { stop: watch.stop, exited: watch.exited, update: (next) => watch.update(filterOf(next)) };
    },
  };
}
