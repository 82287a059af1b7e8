import { ROUTE_PROTO } from './paths.js';
import type { LinuxDesiredState } from '../../render/types.js';
import { addressIndex, type LinuxLiveState } from './live-state.js';
import type { FileChange, OwnedRef, OwnershipPlan, RuntimeChange } from '../../plan/plan.js';
import { emptyOwnership, isManaged } from '../../plan/plan.js';
import { routeSpec } from './plan-runtime.js';
import type { AgentState } from '../../plan/record.js';
import { ownedKey } from '../../plan/record.js';
import { isLiveRule } from './rules.js';
import { ruleSpec } from './rule-spec.js';

/** What the removal planner needs besides the desired and live state. */
export interface RemovalInputs {
  state: AgentState;
  /** Lower-case MACs of the NICs the metadata lists. */
  metadataMacs: ReadonlySet<string>;
  /** Interface of the primary NIC; its first address is never removed. */
  primaryIfname?: string;
}

/**
 * Plans the removal of what the agent owns and the metadata no longer asks for. An item is removed
 * only when the previous successful read also lacked it (it is in `state.absentOnce`); the first
 * time it is only recorded as pending. Never touched: anything the agent does not own, the first
 * (primary) address of the primary NIC, addresses on interfaces the metadata does not list. Pure.
 */
export function planRemovals(
  desired: LinuxDesiredState,
  live: LinuxLiveState,
  inputs: RemovalInputs,
  warnings: string[],
): { changes: RuntimeChange[]; ownership: OwnershipPlan } {
  const { state, metadataMacs } = inputs;
  const confirmed = new Set(state.absentOnce);
  const changes: RuntimeChange[] = [];
  const ownership: OwnershipPlan = emptyOwnership();
  const { runtime } = desired;
  const macOf = new Map(runtime.links.map((l) => [l.ifname, l.mac]));
  const wantAddresses = new Set(runtime.addresses.map((a) => `${a.ip}/${a.prefixLength} ${macOf.get(a.ifname)}`));
  const wantRules = new Set(runtime.rules.map((r) => ownedKey.rule(r)));
  const wantRoutes = new Set(runtime.routes.map((r) => routeSpec(r.table, r.dst, r.dev, r.gateway, r.src)));
  const liveByMac = new Map(live.links.map((l) => [l.mac, l]));

  const absent = (key: string, description: string, change: () => RuntimeChange): void => {
    if (confirmed.has(key)) {
      changes.push(change());
    } else {
      ownership.absentNow.push(key);
      ownership.pending.push(description);
    }
  };
  // An item on a NIC the metadata stopped listing is left in place; ownership is given up only when a
  // second read agrees, so one read that misses a NIC does not make the agent forget what it added there.
  const disown = (key: string, ref: OwnedRef, warning: string): void => {
    warnings.push(warning);
    if (confirmed.has(key)) {
      ownership.forget.push(ref);
    } else {
      ownership.absentNow.push(key);
      ownership.pending.push(`stop owning ${key} (left in place)`);
    }
  };

  for (const item of state.owned.addresses) {
    if (wantAddresses.has(`${item.cidr} ${item.mac}`)) continue;
    const ref: OwnedRef = { kind: 'address', item };
    const link = liveByMac.get(item.mac);
    const ip = item.cidr.split('/')[0];
    if (link === undefined || addressIndex(link, item.cidr) < 0) {
      ownership.forget.push(ref); // the interface or the address is already gone
      continue;
    }
    if (!metadataMacs.has(item.mac)) {
      disown(
        ownedKey.address(item),
        ref,
        `${item.cidr} on ${link.ifname}: the metadata no longer lists this NIC; the address is left as it is`,
      );
      continue;
    }
    if (link.ifname === inputs.primaryIfname && link.addresses[0]?.ip === ip) {
      warnings.push(`${item.cidr} is the primary address of ${link.ifname}: never removed`);
      ownership.forget.push(ref);
      continue;
    }
    absent(ownedKey.address(item), `remove ${item.cidr} from ${link.ifname}`, () => ({
      kind: 'address',
      summary: `remove ${item.cidr} from ${link.ifname} (no longer in the metadata)`,
      batch: `address del ${item.cidr} dev ${link.ifname}`,
      undo: `address add ${item.cidr} dev ${link.ifname}`,
      releases: ref,
    }));
  }

  for (const item of state.owned.routes) {
    if (wantRoutes.has(item.spec)) continue;
    const ref: OwnedRef = { kind: 'route', item };
    const table = String(item.table);
    const present = live.routes.some(
      (r) => r.table === table && routeSpec(item.table, r.dst, r.dev ?? '', r.gateway, r.prefsrc) === item.spec,
    );
    if (!present) {
      ownership.forget.push(ref);
      continue;
    }
    const dev = live.links.find((l) => l.ifname === item.dev);
    if (dev !== undefined && !metadataMacs.has(dev.mac)) {
      disown(
        ownedKey.route(item),
        ref,
        `route ${item.spec}: the metadata no longer lists ${item.dev}'s NIC; the route is left as it is`,
      );
      continue;
    }
    absent(ownedKey.route(item), `remove route ${item.spec}`, () => ({
      kind: 'route',
      summary: `remove route ${item.spec} (no longer in the metadata)`,
      batch: `route del ${item.spec}`,
      undo: `route add ${item.spec} proto ${ROUTE_PROTO}`,
      releases: ref,
    }));
  }

  for (const item of state.owned.rules) {
    if (wantRules.has(ownedKey.rule(item))) continue;
    const ref: OwnedRef = { kind: 'rule', item };
    const spec = ruleSpec(item);
    if (!live.rules.some((r) => isLiveRule(r, item))) {
      ownership.forget.push(ref);
      continue;
    }
    const holder =
      item.from === 'all' ? undefined : live.links.find((l) => l.addresses.some((a) => a.ip === item.from));
    if (holder !== undefined && !metadataMacs.has(holder.mac)) {
      disown(
        ownedKey.rule(item),
        ref,
        `rule ${spec}: ${item.from} is on ${holder.ifname}, whose NIC the metadata no longer lists; the rule is left as it is`,
      );
      continue;
    }
    absent(ownedKey.rule(item), `remove rule ${spec}`, () => ({
      kind: 'rule',
      summary: `remove rule ${spec} (no longer in the metadata)`,
      batch: `rule del ${spec}`,
      undo: `rule add ${spec}`,
      releases: ref,
    }));
    // The same rule more than once: a copy a network service added from the agent's own file (systemd-networkd adds
    // the drop-in's rules with `proto static` beside the agent's live ones when it starts). It is the agent's rule in
    // the agent's table at the agent's priority, so it goes with it, or the table keeps steering the address.
    if (confirmed.has(ownedKey.rule(item))) {
      const copies = live.rules.filter((r) => isLiveRule(r, item) && r.priority === item.priority).length;
      for (let i = 1; i < copies; i++)
        changes.push({
          kind: 'rule',
          summary: `remove rule ${spec} (a copy added from the agent's file)`,
          batch: `rule del ${spec}`,
          undo: `rule add ${spec}`,
        });
    }
  }

  // Runtime removals run before any addition, and rules first so no traffic is steered into a table being emptied.
  // Addresses go in reverse of the kernel's order, so a subnet's primary goes after its secondaries.
  const order = { rule: 0, route: 1, address: 2, link: 3, sysctl: 4, marks: 5 } as const;
  const position = (c: RuntimeChange): number => {
    if (c.releases?.kind !== 'address') return 0;
    const { mac, cidr } = c.releases.item;
    return -addressIndex(liveByMac.get(mac), cidr);
  };
  changes.sort((a, b) => order[a.kind] - order[b.kind] || position(a) - position(b));
  return { changes, ownership };
}

/**
 * Owned files the rendered set no longer contains: restored to the original the agent replaced,
 * or removed when there was none, once two successful reads agree. Pure.
 */
export function planFileRemovals(
  owned: readonly string[],
  rendered: ReadonlySet<string>,
  current: ReadonlyMap<string, string | null>,
  state: AgentState,
  ownership: OwnershipPlan,
): FileChange[] {
  const confirmed = new Set(state.absentOnce);
  const changes: FileChange[] = [];
  for (const path of owned) {
    if (rendered.has(path)) continue;
    const previous = current.get(path) ?? null;
    if (previous === null) continue; // already gone
    if (!isManaged(previous)) {
      // Someone replaced the agent's file with their own: it is theirs now.
      ownership.forgetFiles.push(path);
      continue;
    }
    const key = ownedKey.file(path);
    if (!confirmed.has(key)) {
      ownership.absentNow.push(key);
      ownership.pending.push(`remove ${path}`);
      continue;
    }
    const original = state.originalFiles[path] ?? null;
    const meta = state.originalMeta?.[path];
    changes.push(
      original === null
        ? { path, mode: 0o644, content: '', action: 'remove', previous, previousOwned: true }
        : {
            path,
            mode: meta?.mode ?? 0o644,
            content: original,
            action: 'update',
            previous,
            previousOwned: true,
            ...(meta !== undefined ? { owner: meta } : {}),
          },
    );
  }
  return changes;
}
