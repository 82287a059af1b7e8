// 7. Memory under churn: `eip-agent run --interval 1` while the metadata changes every second (an address added and
// dropped, a NIC's primary swapped) and the endpoint answers 503, hangs or cuts an answer short every third second.
// The development CLI and the release executable run side by side, each in a guest of its own; RSS is read when the
// first pass is done and at the end of each minute, and the slope is fitted over those readings.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DAEMON_EXECUTABLE_ENV, DAEMON_NODE_FLAGS } from '../src/daemon/unit.js';
import { controlEmulator, type MetadataFaults } from '../src/sandbox/emulator.js';
import type { MetaTree } from '../src/metadata/tree.js';
import { seedCentos7Boot } from '../src/sandbox/guest-root.js';
import { tempDir } from './cleanup.js';
import { execedPid, startEmulator, startProc, statusKb } from './daemon.js';
import { createGuest, inNs, liveAddressCount } from './lab.js';
import { row, type SectionResult } from './report.js';
import { nicSpecs, treeOf, type NicSpec } from './trees.js';
import { AGENT_CLI, delay, now, progress, releaseBuild } from './util.js';

const SECTION = '7 churn memory';
const FAULTS: MetadataFaults[] = [
  { status: { code: 503, count: 2 } },
  { hang: { count: 1 } },
  { truncate: { count: 2 } },
];

/** The other tree: NIC 1 loses its last address, gains 10.20.1.50, and its second address becomes its primary. */
function churnedNics(nics: readonly NicSpec[]): NicSpec[] {
  return nics.map((nic) =>
    nic.index !== 1 ? nic : { ...nic, ips: [nic.ips[1]!, nic.ips[0]!, ...nic.ips.slice(2, -1), '10.20.1.50'] },
  );
}

/** Least-squares slope of y over x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0) / sxx;
}

interface Churned {
  label: string;
  /** RSS in MB after the first pass (minute 0), then at the end of each minute. */
  rssMb: number[];
  slopeMbPerMin: number;
  /** The slope from minute 1 on: what is left once the runtime has warmed up to the churn. */
  steadySlopeMbPerMin: number;
}

export async function churnSection(opts: { minutes: number }): Promise<SectionResult> {
  const nics = nicSpecs(2, 4);
  const trees: MetaTree[] = [treeOf(nics), treeOf(churnedNics(nics))];
  const build = releaseBuild();
  const agents = [
    { key: 'dev', label: 'development CLI', argv: [process.execPath, ...DAEMON_NODE_FLAGS, AGENT_CLI], env: {} },
    ...(build !== undefined
      ? [{ key: 'release', label: 'release executable', argv: [build.executable], env: DAEMON_EXECUTABLE_ENV }]
      : []),
  ];
  const dir = tempDir('churn');
  const runs = await Promise.all(
    agents.map(async (agent) => {
      const guest = await createGuest(nics, { dhcp: true });
      const home = join(dir.path, agent.key);
      mkdirSync(join(home, 'root'), { recursive: true });
      seedCentos7Boot(join(home, 'root'));
      const emulator = await startEmulator(guest.router, nics[0]!.gateway, home, trees[0]!);
      const daemon = startProc(
        inNs(guest.ns, [
          ...agent.argv,
          'run',
          '--interval',
          '1',
          '--metadata-url',
          emulator.url,
          '--root',
          join(home, 'root'),
        ]),
        { ...process.env, ...agent.env },
      );
      return { agent, guest, emulator, daemon };
    }),
  );
  try {
    const pids = await Promise.all(runs.map(async (r) => execedPid(r.daemon)));
    const total = nics.reduce((n, nic) => n + nic.ips.length, 0);
    for (const r of runs) {
      const deadline = now() + 120_000;
      while ((await liveAddressCount(r.guest.ns, nics)) < total) {
        if (now() > deadline || !r.daemon.alive())
          throw new Error(`${r.agent.label} did not converge: ${r.daemon.output().slice(-2000)}`);
        await delay(200);
      }
    }
    await delay(3000); // the first pass's verification and state write
    const rss = runs.map((_, i) => [statusKb(pids[i]!, 'VmRSS') / 1024]);
    progress(`churn: both daemons in sync; ${opts.minutes} min of churn, RSS at each minute`);
    const started = now();
    let second = 0;
    for (let minute = 1; minute <= opts.minutes; minute++) {
      while (now() - started < minute * 60_000) {
        await Promise.all(
          runs.map(async (r) => {
            await controlEmulator(r.emulator.socket, 'PUT', '/tree', trees[second % 2]);
            if (second % 3 === 0)
              await controlEmulator(r.emulator.socket, 'PUT', '/faults', FAULTS[(second / 3) % FAULTS.length]);
          }),
        );
        second += 1;
        await delay(1000);
      }
      runs.forEach((r, i) => {
        if (!r.daemon.alive())
          throw new Error(`${r.agent.label} exited during the churn: ${r.daemon.output().slice(-2000)}`);
        rss[i]!.push(statusKb(pids[i]!, 'VmRSS') / 1024);
      });
      progress(
        `churn: minute ${minute}: ${runs.map((r, i) => `${r.agent.label} ${rss[i]!.at(-1)!.toFixed(1)} MB`).join(', ')}`,
      );
    }
    const fit = (values: number[], from: number) => slope(values.slice(from).map((y, x) => ({ x, y })));
    const results: Churned[] = runs.map((r, i) => ({
      label: r.agent.label,
      rssMb: rss[i]!,
      slopeMbPerMin: fit(rss[i]!, 0),
      steadySlopeMbPerMin: fit(rss[i]!, 1),
    }));
    const rows = results.flatMap((c) => [
      row(SECTION, `${c.label}: RSS at minutes 0..${opts.minutes} (MB)`, {
        value: c.rssMb.map((v) => v.toFixed(1)).join(', '),
      }),
      row(SECTION, `${c.label}: RSS slope`, {
        value: `${c.slopeMbPerMin.toFixed(2)} MB/min`,
        baseline: `${c.rssMb[0]!.toFixed(1)} MB at minute 0`,
        ratio: `${(c.rssMb.at(-1)! / c.rssMb[0]!).toFixed(2)}x at the end`,
      }),
      row(SECTION, `${c.label}: RSS slope from minute 1`, {
        value: `${c.steadySlopeMbPerMin.toFixed(2)} MB/min`,
        baseline: `${c.rssMb[1]?.toFixed(1) ?? '-'} MB at minute 1`,
      }),
    ]);
    return { name: SECTION, rows, data: { minutes: opts.minutes, metadataChanges: second, agents: results } };
  } finally {
    await Promise.all(runs.map(async (r) => Promise.all([r.daemon.stop(), r.emulator.proc.stop()])));
    for (const r of runs) r.guest.destroy();
    dir.remove();
  }
}
