// The live NICs for the metrics: their addresses from one `ip` read, their traffic counters from /sys.
import type { Host } from '../../host/host.js';
import type { LiveNic, NicCounters } from '../target.js';
import { readLinuxState } from './live-state.js';

const STATISTICS: Record<keyof NicCounters, string> = {
  rxBytes: 'rx_bytes',
  txBytes: 'tx_bytes',
  rxPackets: 'rx_packets',
  txPackets: 'tx_packets',
};

/** A NIC's counters, read through host.fs from the live /sys (never under --root); undefined if unreadable. */
export async function readNicCounters(host: Host, ifname: string): Promise<NicCounters | undefined> {
  const entries = await Promise.all(
    Object.entries(STATISTICS).map(
      async ([key, file]) =>
        [key, (await host.fs.readText(`/sys/class/net/${ifname}/statistics/${file}`))?.trim()] as const,
    ),
  );
  if (entries.some(([, v]) => v === undefined || !/^\d+$/.test(v))) return undefined;
  return Object.fromEntries(entries) as unknown as NicCounters;
}

/** The links with these MACs (one `ip -j address` etc.), each with its counters where readable. */
export async function liveLinuxNics(host: Host, macs: readonly string[]): Promise<LiveNic[]> {
  const wanted = new Set(macs);
  const links = (await readLinuxState(host)).links.filter((l) => wanted.has(l.mac));
  return Promise.all(
    links.map(async ({ ifname, mac, addresses }) => {
      const counters = await readNicCounters(host, ifname);
      return { ifname, mac, addresses, ...(counters !== undefined ? { counters } : {}) };
    }),
  );
}
