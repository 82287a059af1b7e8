import pLimit from 'p-limit';
import type { LinuxLiveState } from './live-state.js';
import { readLinuxState } from './live-state.js';
import { runTool } from '../../host/run-tool.js';
import { liveRuleFinder } from './rules.js';
import type { Host } from '../../host/host.js';
import type { LinuxDesiredRuntime } from '../../render/types.js';
import type { Check, VerifyReport } from '../../plan/verify-report.js';
import { expectedComments, liveComments, marksPlace, readMarks, type LiveMarks } from './marks.js';
import { report } from '../../plan/verify-report.js';

const PING_ATTEMPTS = 3;
const PING_CONCURRENCY = 8;

/** Where an address missing from its link is instead: only looked for when it is missing. */
function missingAddress(live: LinuxLiveState, ip: string, ifname: string): string {
  const elsewhere = live.links
    .filter((l) => l.ifname !== ifname && l.addresses.some((x) => x.ip === ip))
    .map((l) => l.ifname);
  return elsewhere.length > 0 ? `missing; found on ${elsewhere.join(', ')}` : `missing from ${ifname}`;
}

/** Checks the live state against the desired one: structure first (pure), then reachability (ping). */
export function checkState(want: LinuxDesiredRuntime, live: LinuxLiveState): Check[] {
  const checks: Check[] = [];
  const links = new Map(live.links.map((l) => [l.ifname, l]));
  for (const { ifname, mac } of want.links) {
    const link = links.get(ifname);
    const ok = link !== undefined && link.mac === mac && link.up;
    const detail =
      link === undefined
        ? 'interface not found'
        : link.mac !== mac
          ? `MAC is ${link.mac}, expected ${mac}`
          : link.up
            ? `up, MAC ${mac}`
            : 'interface is down';
    checks.push({ kind: 'link', subject: ifname, ok, detail });
  }
  for (const a of want.addresses) {
    const found = links.get(a.ifname)?.addresses.find((x) => x.ip === a.ip);
    const ok = found !== undefined && found.prefixLength === a.prefixLength;
    const detail = ok
      ? `on ${a.ifname}`
      : found
        ? `on ${a.ifname} as /${found.prefixLength}`
        : missingAddress(live, a.ip, a.ifname);
    checks.push({ kind: 'address', subject: `${a.ip}/${a.prefixLength} ${a.ifname}`, ok, detail });
  }
  const isLive = liveRuleFinder(live.rules);
  for (const r of want.rules) {
    const ok = isLive(r);
    const subject =
      r.suppressPrefixLength !== undefined
        ? `from all lookup main suppress_prefixlength ${r.suppressPrefixLength} priority ${r.priority}`
        : `from ${r.from}${r.to !== undefined ? ` to ${r.to}` : ''}${r.fwmark !== undefined ? ` fwmark ${r.fwmark}` : ''} table ${r.table}`;
    checks.push({ kind: 'rule', subject, ok, detail: ok ? 'present' : 'missing' });
  }
  for (const r of want.routes) {
    const table = String(r.table);
    const ok = live.routes.some(
      (x) => x.table === table && x.dst === r.dst && x.dev === r.dev && x.gateway === r.gateway,
    );
    checks.push({
      kind: 'route',
      subject: `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev} table ${r.table}`,
      ok,
      detail: ok ? 'present' : 'missing',
    });
  }
  const main = want.mainDefault;
  if (main.dev !== '') {
    // The one the kernel uses is the lowest metric; a NIC's ifup at boot can put another NIC's gateway there.
    const defaults = live.routes
      .filter((x) => x.table === 'main' && x.dst === 'default')
      .sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
    const used = defaults[0];
    const ok = used !== undefined && used.gateway === main.gateway && used.dev === main.dev;
    const detail =
      used === undefined
        ? 'the main table has no default route'
        : ok
          ? 'present'
          : `the main table's default route is via ${used.gateway ?? '(none)'} dev ${used.dev ?? '(none)'}`;
    checks.push({ kind: 'route', subject: `default via ${main.gateway} dev ${main.dev} (main table)`, ok, detail });
  }
  const all = Number(live.sysctls.get('net.ipv4.conf.all.rp_filter') ?? 0);
  for (const rp of want.rpFilter) {
    const own = live.sysctls.get(`net.ipv4.conf.${rp.ifname}.rp_filter`);
    // The kernel applies the larger of the `all` and per-interface values.
    const effective = own == null ? NaN : Math.max(all, Number(own));
    const ok = effective === rp.effective;
    checks.push({
      kind: 'rp_filter',
      subject: rp.ifname,
      ok,
      detail: `effective ${effective} (all ${all}, ${rp.ifname} ${own ?? 'absent'}), expected ${rp.effective}`,
    });
  }
  return checks;
}

/**
 * Per NIC with connection marks: its rules are in the agent's nftables table (or iptables chains). Where neither tool is there is no check
 * (plan says so); where the table cannot be read, the check is unknown.
 */
export function checkMarks(want: LinuxDesiredRuntime, live: LiveMarks): Check[] {
  if (live.tool === 'none') return [];
  const devices = [...new Set(want.marks.map((m) => m.dev))];
  return devices.map((dev) => {
    const entries = want.marks.filter((m) => m.dev === dev);
    const subject = `connection marks ${dev} (${entries.map((e) => e.ip).join(', ')})`;
    if (live.tool === 'unreadable')
      return {
        kind: 'marks',
        subject,
        ok: false,
        unknown: true,
        detail: `the connection marks could not be read: ${live.reason}`,
      };
    const have = new Set(live.listing === null ? [] : liveComments(live.listing));
    const missing = expectedComments(entries, live.tool).filter((c) => !have.has(c));
    const detail =
      live.listing === null
        ? `${marksPlace(live.tool)}: missing`
        : missing.length === 0
          ? 'present'
          : `missing: ${missing.join('; ')}`;
    return { kind: 'marks', subject, ok: missing.length === 0 && live.listing !== null, detail };
  });
}

async function ping(host: Host, source: string, target: string): Promise<{ ok: boolean; detail: string }> {
  let last = '';
  for (let attempt = 1; attempt <= PING_ATTEMPTS; attempt++) {
    const result = await runTool(host, ['ping', '-n', '-q', '-c', '1', '-W', '1', '-I', source, target], {
      timeoutMs: 5000,
    });
    if (result.exitCode === 0) return { ok: true, detail: `reply (attempt ${attempt})` };
    last = (result.stderr.trim() || result.stdout.trim().split('\n').at(-1)) ?? '';
  }
  return { ok: false, detail: `no reply after ${PING_ATTEMPTS} attempts${last ? `: ${last}` : ''}` };
}

/** Reads the live state and checks it, then pings each gateway from each source address. */
export async function verifyLinux(host: Host, want: LinuxDesiredRuntime): Promise<VerifyReport> {
  const keys = ['net.ipv4.conf.all.rp_filter', ...want.rpFilter.map((r) => `net.ipv4.conf.${r.ifname}.rp_filter`)];
  const live = await readLinuxState(host, keys);
  const checks = checkState(want, live);
  if (want.marks.length > 0) checks.push(...checkMarks(want, await readMarks(host)));
  const limit = pLimit(PING_CONCURRENCY);
  const pings = await Promise.all(
    want.pings.map((p) =>
      limit(async () => {
        const { ok, detail } = await ping(host, p.source, p.target);
        return { kind: 'ping' as const, subject: `${p.target} from ${p.source} (${p.ifname})`, ok, detail };
      }),
    ),
  );
  return report([...checks, ...pings]);
}
