// Noticing, without polling, that someone changed the live state the agent manages (a network restart, an NM
// reapply, a DHCP renewal, an `ip addr flush`): one long-lived `ip monitor` whose lines are matched against it.
import type { Host, WatchHandle } from '../../host/host.js';
import type { LinuxDesiredRuntime } from '../../render/types.js';
import { tableName } from './rule-spec.js';

/** Which monitor lines concern the desired state: its interfaces and its routing tables. */
export interface DriftFilter {
  ifnames: string[];
  tables: number[];
}

/** What a desired Linux runtime makes relevant. Pure. */
export function driftFilterOf(runtime: LinuxDesiredRuntime): DriftFilter {
  // The main rule's table is main: its own changes show as `lookup main`, which only rule events print.
  return {
    ifnames: runtime.links.map((l) => l.ifname),
    tables: [...new Set([...runtime.routes, ...runtime.rules].map((r) => r.table))],
  };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Whether one line of `ip monitor address route rule link` may concern the filter: an IPv4 event naming a managed
 * interface (`3: eth1    inet ...`, `... dev eth1 ...`, `3: eth1@if9: <...>`) or one of its tables
 * (`... table 10001`, `from 10.0.0.7 lookup 10001`). Continuation lines and IPv6 events never do. Pure.
 */
export function concernsDrift(line: string, filter: DriftFilter): boolean {
  if (line === '' || /^\s/.test(line) || /\binet6\b/.test(line) || / fe80:/.test(line)) return false;
  if (filter.ifnames.length > 0) {
    const names = new RegExp(`(?:^|[\\s:])(?:${filter.ifnames.map(escape).join('|')})(?=[\\s:@]|$)`);
    if (names.test(line)) return true;
  }
  if (filter.tables.length > 0) {
    const tables = new RegExp(`\\b(?:table|lookup) (?:${filter.tables.map(tableName).join('|')})\\b`);
    if (tables.test(line)) return true;
  }
  return false;
}

/** A running watch: `update` changes what is relevant (after each apply), `stop` ends it. */
export interface DriftWatch extends WatchHandle {
  update(filter: DriftFilter): void;
}

/** Starts `ip monitor address route rule link`, calling onDrift with each line that concerns the filter. */
export function watchLinux(host: Host, filter: DriftFilter, onDrift: (line: string) => void): DriftWatch {
  let current = filter;
  const handle = host.watch(['ip', 'monitor', 'address', 'route', 'rule', 'link'], (line) => {
    if (concernsDrift(line, current)) onDrift(line);
  });
  return {
    stop: handle.stop,
    exited: handle.exited,
    update: (next) => {
      current = next;
    },
  };
}
