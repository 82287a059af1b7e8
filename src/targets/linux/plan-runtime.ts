// The Linux half of planning: the runtime changes (addresses, routes, rules, sysctls, marks) that bring the live
// kernel state to what a Linux target's files describe, each with its undo.
import type { RuntimeChange } from '../../plan/plan.js';
import type { LinuxDesiredState } from '../../render/types.js';
import type { LinuxLiveState, LiveLink } from './live-state.js';
import { ROUTE_PROTO } from './paths.js';
import { ruleSource, ruleSpec } from './rule-spec.js';
import { liveRuleFinder, wantedRuleFinder } from './rules.js';
import { isOwnRulePriority } from './tables-in-use.js';

/** `ip route` arguments for a route in a numbered table. */
export function routeSpec(table: number | string, dst: string, dev: string, gateway?: string, src?: string): string {
  return [
    dst,
    ...(gateway ? ['via', gateway] : []),
    'dev',
    dev,
    ...(src ? ['src', src] : []),
    'table',
    String(table),
  ].join(' ');
}

/** The links that hold each live address, in link order: one pass over them, not one per address wanted (250 x 250). */
function addressHolders(links: readonly LiveLink[]): Map<string, LiveLink[]> {
  const holders = new Map<string, LiveLink[]>();
  for (const link of links)
    for (const { ip } of link.addresses) {
      const list = holders.get(ip);
      if (list === undefined) holders.set(ip, [link]);
      // An address twice on one link (two prefix lengths) names the link once.
      else if (list.at(-1) !== link) list.push(link);
    }
  return holders;
}

/**
 * Says so when someone else's rule sits among the agent's (between its subnet rules and its last `from` rule): it
 * takes effect before some of them, so the agent's routing may not be what the guest gets.
 */
function warnForeignRules(runtime: LinuxDesiredState['runtime'], live: LinuxLiveState, warnings: string[]): void {
  if (runtime.rules.length === 0) return;
  const first = Math.min(...runtime.rules.map((r) => r.priority));
  const last = Math.max(...runtime.rules.map((r) => r.priority));
  // A rule into one of the agent's own tables is the agent's (an earlier model's, on its way out by the two-read rule).
  const own = new Set(runtime.rules.filter((r) => r.suppressPrefixLength === undefined).map((r) => String(r.table)));
  const wanted = wantedRuleFinder(runtime.rules);
  for (const rule of live.rules) {
    if (rule.priority <= first || rule.priority >= last || own.has(rule.table) || wanted(rule)) continue;
    const selectors =
      `from ${rule.from}${rule.to !== undefined ? ` to ${rule.to}` : ''}` +
      `${rule.fwmark !== undefined ? ` fwmark ${rule.fwmark}` : ''}${rule.other === true ? ' with other selectors' : ''}`;
    warnings.push(
      `rule ${rule.priority} (${selectors} lookup ${rule.table}) ` +
        `is not the agent's and sits among its rules (${first}-${last}): it is consulted before some of them`,
    );
  }
}

/**
 * Compares the desired runtime with the live state and lists what is missing, in the order it
 * must be applied: links up, addresses, table routes, rules (last, so no traffic is steered into
 * an unfinished table), then sysctls. Adds only; nothing is removed. Pure.
 */
export function planRuntime(desired: LinuxDesiredState, live: LinuxLiveState, warnings: string[]): RuntimeChange[] {
  const changes: RuntimeChange[] = [];
  const { runtime } = desired;
  const linkByName = new Map(live.links.map((l) => [l.ifname, l]));

  for (const want of runtime.links) {
    const link = linkByName.get(want.ifname);
    if (link === undefined) continue;
    if (!link.up) {
      changes.push({
        kind: 'link',
        summary: `bring ${want.ifname} up`,
        batch: `link set dev ${want.ifname} up`,
        undo: `link set dev ${want.ifname} down`,
      });
    }
  }

  const holdersOf = addressHolders(live.links);
  for (const want of runtime.addresses) {
    if (!linkByName.has(want.ifname)) continue;
    const holders = holdersOf.get(want.ip) ?? [];
    const here = holders.find((l) => l.ifname === want.ifname);
    if (here !== undefined) {
      const existing = here.addresses.find((a) => a.ip === want.ip);
      if (existing !== undefined && existing.prefixLength !== want.prefixLength) {
        warnings.push(
          `${want.ip} is on ${want.ifname} as /${existing.prefixLength}, metadata says /${want.prefixLength}; left as it is`,
        );
      }
      continue;
    }
    for (const other of holders)
      warnings.push(`${want.ip} is also on ${other.ifname}, which the metadata does not assign it to`);
    const cidr = `${want.ip}/${want.prefixLength}`;
    if (want.lease === true) {
      warnings.push(
        `${cidr} is not on ${want.ifname}: it comes from the DHCP lease, which the guest's DHCP client puts back; the agent does not add it`,
      );
      continue;
    }
    changes.push({
      kind: 'address',
      summary: `add ${cidr} to ${want.ifname}`,
      batch: `address add ${cidr} dev ${want.ifname}${want.noPrefixRoute === true ? ' noprefixroute' : ''}`,
      undo: `address del ${cidr} dev ${want.ifname}`,
      owns: { kind: 'address', item: { ifname: want.ifname, mac: linkByName.get(want.ifname)?.mac ?? '', cidr } },
    });
  }

  const main = runtime.mainDefault;
  const hasMainDefault = live.routes.some((r) => r.table === 'main' && r.dst === 'default');
  if (!hasMainDefault && main.dev !== '' && main.lease !== true && linkByName.has(main.dev)) {
    changes.push({
      kind: 'route',
      summary: `add default route via ${main.gateway} dev ${main.dev} (main table has none)`,
      batch: `route add default via ${main.gateway} dev ${main.dev}`,
      undo: `route del default via ${main.gateway} dev ${main.dev}`,
    });
  }

  for (const want of runtime.routes) {
    if (!linkByName.has(want.dev)) continue;
    const table = String(want.table);
    const present = live.routes.some(
      (r) =>
        r.table === table &&
        r.dst === want.dst &&
        r.dev === want.dev &&
        r.gateway === want.gateway &&
        (want.src === undefined || r.prefsrc === want.src),
    );
    if (present) continue;
    const spec = routeSpec(want.table, want.dst, want.dev, want.gateway, want.src);
    const old = live.routes.find((r) => r.table === table && r.dst === want.dst);
    // The table is the agent's own (never one in use by others), so replace is safe and idempotent;
    // undoing it puts back the route it replaced, if there was one.
    const undo =
      old?.dev !== undefined
        ? `route replace ${routeSpec(want.table, old.dst, old.dev, old.gateway, old.prefsrc)} proto ${old.protocol ?? ROUTE_PROTO}`
        : `route del ${spec}`;
    changes.push({
      kind: 'route',
      summary: `route ${spec}`,
      batch: `route replace ${spec} proto ${ROUTE_PROTO}`,
      undo,
      owns: { kind: 'route', item: { table: want.table, spec, dev: want.dev } },
    });
  }

  const isLive = liveRuleFinder(live.rules);
  for (const want of runtime.rules) {
    if (!linkByName.has(want.dev)) continue;
    if (isLive(want)) continue;
    const from = ruleSource(want);
    const stale =
      want.to === undefined && want.from !== 'all'
        ? live.rules.find(
            (r) =>
              r.from === from &&
              r.to === undefined &&
              r.fwmark === undefined &&
              r.other !== true &&
              isOwnRulePriority(r.priority),
          )
        : undefined;
    if (stale !== undefined) warnings.push(`rule from ${from} points at table ${stale.table}, expected ${want.table}`);
    const spec = ruleSpec(want);
    const { dev: _dev, ...item } = want;
    changes.push({
      kind: 'rule',
      summary: `rule ${spec}`,
      batch: `rule add ${spec}`,
      undo: `rule del ${spec}`,
      owns: { kind: 'rule', item },
    });
  }
  warnForeignRules(runtime, live, warnings);

  for (const want of runtime.sysctls) {
    if (!live.sysctls.has(want.key)) continue;
    const current = live.sysctls.get(want.key) ?? null;
    if (current === null) continue;
    if (current !== want.value) {
      changes.push({
        kind: 'sysctl',
        summary: `sysctl ${want.key} ${current} -> ${want.value}`,
        sysctl: { key: want.key, value: want.value, previous: current },
      });
    }
  }
  return changes;
}
