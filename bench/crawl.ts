// 1. Metadata crawl: the agent's HTTP source against the emulator (a separate process, as the real service is), at
// 0, 1 and 5 ms of added latency, at the default concurrency (16) and sequentially (concurrency 1) in the same run.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNodeHost } from '../src/host/node.js';
import { httpMetadataSource } from '../src/metadata/index.js';
import { controlEmulator } from '../src/sandbox/emulator.js';
import type { MetaTree } from '../src/metadata/tree.js';
import { killQuietly, registerCleanup, tempDir } from './cleanup.js';
import { row, type Row, type SectionResult } from './report.js';
import { addressCount, fullCrawlRequests, nicSpecs, treeOf, type NicSpec } from './trees.js';
import { CLI, delay, exec, median, ms, now, progress, releaseBuild, times } from './util.js';

const SECTION = '1 crawl';
/** Round trips the walker needs whatever the size: top-level keys + `macs/`, then each NIC, then each address. */
const DEPTH = 3;
const CONCURRENCY = 16;
const LATENCIES = [0, 1, 5];

interface Emulator {
  url: string;
  socket: string;
  stop(): Promise<void>;
}

async function startEmulator(dir: string, tree: MetaTree): Promise<Emulator> {
  const fixture = join(dir, 'tree.json');
  const socket = join(dir, 'control.sock');
  writeFileSync(fixture, JSON.stringify(tree));
  const child = spawn(
    process.execPath,
    [CLI, 'metadata', 'serve', '--fixture', fixture, '--host', '127.0.0.1', '--port', '0', '--control-socket', socket],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const forget = registerCleanup(() => killQuietly(child.pid));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`metadata emulator did not start: ${output}`)), 15_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const found = /serving metadata at (\S+)/.exec(output);
      if (found?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(() => reject(new Error(`metadata emulator exited: ${output}`)));
  });
  return {
    url,
    socket,
    async stop() {
      killQuietly(child.pid, 'SIGTERM');
      await Promise.race([exited, delay(3000)]);
      forget();
    },
  };
}

interface Measure {
  ms: number[];
  requests: number;
}

async function crawlOnce(
  url: string,
  concurrency: number,
  expectIps: number,
): Promise<{ ms: number; requests: number }> {
  const source = httpMetadataSource(createNodeHost(), { baseUrl: url, concurrency });
  const started = now();
  const tree = await source.read();
  const elapsed = now() - started;
  // The same information every time: every NIC with every address.
  const macs = ((tree.network as MetaTree).interfaces as MetaTree).macs as MetaTree;
  const ips = Object.values(macs).reduce(
    (n, nic) => n + Object.keys((nic as MetaTree)['local-ipv4s'] as MetaTree).length,
    0,
  );
  if (ips !== expectIps) throw new Error(`crawl read ${ips} addresses, expected ${expectIps}`);
  return { ms: elapsed, requests: source.requestCount };
}

export async function crawlSection(opts: { runs: number }): Promise<SectionResult> {
  const sizes: { name: string; nics: NicSpec[] }[] = [
    { name: 'small (2 NICs x 2 IPs)', nics: nicSpecs(2, 2) },
    { name: 'large (8 NICs x 30 IPs)', nics: nicSpecs(8, 30) },
  ];
  const dir = tempDir('crawl');
  const emulator = await startEmulator(dir.path, treeOf(sizes[0]!.nics));
  const rows: Row[] = [];
  const data: Record<string, unknown>[] = [];
  try {
    for (const size of sizes) {
      const tree = treeOf(size.nics);
      const ips = addressCount(size.nics);
      await controlEmulator(emulator.socket, 'PUT', '/tree', tree);
      const short = size.name.split(' ')[0] as string;
      for (const latency of LATENCIES) {
        await controlEmulator(emulator.socket, 'PUT', '/faults', latency > 0 ? { latencyMs: latency } : {});
        // Warm-up: JIT, connection pool.
        await crawlOnce(emulator.url, CONCURRENCY, ips);
        await crawlOnce(emulator.url, 1, ips);
        const par: Measure = { ms: [], requests: 0 };
        const seq: Measure = { ms: [], requests: 0 };
        for (let i = 0; i < opts.runs; i++) {
          for (const [m, c] of i % 2 === 0
            ? ([
                [par, CONCURRENCY],
                [seq, 1],
              ] as const)
            : ([
                [seq, 1],
                [par, CONCURRENCY],
              ] as const)) {
            const r = await crawlOnce(emulator.url, c, ips);
            m.ms.push(r.ms);
            m.requests = r.requests;
          }
        }
        const p = median(par.ms);
        const s = median(seq.ms);
        const speedup = s / p;
        const floor = DEPTH * latency;
        const bound = Math.ceil(par.requests / CONCURRENCY) * latency;
        progress(
          `crawl ${short} @${latency} ms: c=${CONCURRENCY} ${ms(p)}, sequential ${ms(s)}, ${par.requests} requests`,
        );
        const isTarget = short === 'large' && latency === 5;
        rows.push(
          row(SECTION, `${size.name} @${latency} ms: wall, concurrency ${CONCURRENCY}`, {
            value: ms(p),
            baseline: `sequential ${ms(s)}`,
            ratio: `${times(speedup)} faster`,
            ...(isTarget ? { target: '>= 10x faster', met: speedup >= 10 } : {}),
          }),
        );
        if (latency > 0) {
          rows.push(
            row(SECTION, `${size.name} @${latency} ms: vs floor (depth ${DEPTH} x latency)`, {
              value: ms(p),
              baseline: `floor ${ms(floor)}`,
              ratio: times(p / floor),
            }),
          );
        }
        if (isTarget) {
          rows.push(
            row(SECTION, `${size.name} @${latency} ms: vs concurrency bound`, {
              value: ms(p),
              baseline: `ceil(${par.requests}/${CONCURRENCY}) x ${latency} ms = ${ms(bound)}`,
              ratio: times(p / bound),
              target: '<= 1.5x bound',
              met: p / bound <= 1.5,
            }),
          );
        }
        data.push({
          size: short,
          nics: size.nics.length,
          ips,
          latencyMs: latency,
          concurrency: CONCURRENCY,
          parallelMs: par.ms,
          sequentialMs: seq.ms,
          requests: par.requests,
          sequentialRequests: seq.requests,
          medianParallelMs: p,
          medianSequentialMs: s,
          speedup,
          floorMs: floor,
          boundMs: bound,
        });
      }
      const requests = (data.at(-1)?.requests as number) ?? NaN;
      const full = fullCrawlRequests(tree);
      rows.push(
        row(SECTION, `${size.name}: requests per read`, {
          value: `${requests} (${(requests / ips).toFixed(2)}/IP)`,
          baseline: `full-tree crawl ${full} (${(full / ips).toFixed(2)}/IP)`,
          ratio: requests <= full ? `${times(full / requests)} fewer` : `${times(requests / full)} more`,
        }),
      );
    }
    rows.push(...(await wholeProcess(emulator, dir.path, sizes[1]!.nics, opts.runs, data)));
  } finally {
    await emulator.stop();
    dir.remove();
  }
  return { name: SECTION, rows, data };
}

/**
 * The crawl as a user meets it: one `eip-agent plan` process (start, crawl, render) of the large tree at 5 ms, at the
 * default concurrency and with `metadataConcurrency: 1` in a config file, for the development CLI and what ships.
 */
async function wholeProcess(
  emulator: Emulator,
  dir: string,
  nics: NicSpec[],
  runs: number,
  data: Record<string, unknown>[],
): Promise<Row[]> {
  const latency = 5;
  await controlEmulator(emulator.socket, 'PUT', '/tree', treeOf(nics));
  await controlEmulator(emulator.socket, 'PUT', '/faults', { latencyMs: latency });
  const root = join(dir, 'root');
  mkdirSync(root, { recursive: true });
  const sequential = join(dir, 'sequential.json');
  const parallel = join(dir, 'parallel.json');
  writeFileSync(sequential, JSON.stringify({ metadataConcurrency: 1 }));
  writeFileSync(parallel, '{}');
  const build = releaseBuild();
  const agents: [string, string[]][] = [
    ['development CLI', [process.execPath, CLI]],
    ...(build ? ([['release executable', [build.executable]]] as [string, string[]][]) : []),
  ];
  const rows: Row[] = [];
  for (const [name, agent] of agents) {
    const argv = (config: string) => [
      ...agent,
      'plan',
      '--target',
      'centos',
      '--no-runtime',
      '--metadata-url',
      emulator.url,
      '--root',
      root,
      '--config',
      config,
    ];
    const time = async (config: string): Promise<number> => {
      const started = now();
      const run = await exec(argv(config));
      if (run.exitCode !== 0 && run.exitCode !== 2)
        throw new Error(`${argv(config).join(' ')}: exit ${run.exitCode}: ${run.stderr.trim()}`);
      return now() - started;
    };
    await time(parallel);
    const par: number[] = [];
    const seq: number[] = [];
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) {
        par.push(await time(parallel));
        seq.push(await time(sequential));
      } else {
        seq.push(await time(sequential));
        par.push(await time(parallel));
      }
    }
    const p = median(par);
    const s = median(seq);
    progress(`crawl, whole process, ${name}: ${ms(p)}, sequential ${ms(s)}`);
    rows.push(
      row(SECTION, `large @${latency} ms, whole \`plan\` process, ${name}`, {
        value: ms(p),
        baseline: `metadataConcurrency 1: ${ms(s)}`,
        ratio: `${times(s / p)} faster`,
        target: '>= 12x faster',
        met: s / p >= 12,
      }),
    );
    data.push({ wholeProcess: name, latencyMs: latency, parallelMs: par, sequentialMs: seq, speedup: s / p });
  }
  return rows;
}
