import { fstatSync } from 'node:fs';
import { loadState } from '../../plan/record.js';
import { DaemonControl } from '../../daemon/control.js';
import { withLock } from '../../plan/lock.js';
import { createLogger, type LogFormat, type Logger } from '../../daemon/log.js';
import { runDaemon } from '../../daemon/loop.js';
import { collectMetrics, formatMetrics } from '../../daemon/metrics.js';
import { startMetricsServer, type MetricsServer } from '../../daemon/metrics-server.js';
import { resolveRunSettings, type RunArgs, type RunSettings } from '../../config/run.js';
import { HostError } from '../../errors.js';
import type { Host } from '../../host/host.js';
import { garbageCollector, reluctantJit } from '../../host/node.js';
import type { InstanceModel } from '../../model/types.js';
import { COMMON_OPTIONS, defineCommand, EXIT, settingOption, type CliCommand } from '../command.js';

/** What `run` needs from the process it runs in, beyond the Host: signals and where stderr goes. */
export interface ProcessEdge {
  /** Subscribes to a signal; returns the unsubscribe function. */
  onSignal(signal: NodeJS.Signals, handler: () => void): () => void;
  /** Whether stderr is a terminal (then the log is for a person). */
  stderrIsTTY: boolean;
  /** Whether stderr is the journal's stream (systemd sets JOURNAL_STREAM to its device:inode). */
  stderrIsJournal: boolean;
}

function stderrIsJournal(env: NodeJS.ProcessEnv): boolean {
  const stream = env.JOURNAL_STREAM;
  if (stream === undefined) return false;
  try {
    const stat = fstatSync(2);
    return stream === `${stat.dev}:${stat.ino}`;
  } catch {
    return false;
  }
}

/** The real process: node's signal events and file descriptor 2. */
export function processEdge(): ProcessEdge {
  return {
    onSignal(signal, handler) {
      process.on(signal, handler);
      return () => process.off(signal, handler);
    },
    stderrIsTTY: process.stderr.isTTY === true,
    stderrIsJournal: stderrIsJournal(process.env),
  };
}

async function startServer(port: number, render: () => Promise<string>): Promise<MetricsServer> {
  try {
    return await startMetricsServer(port, render);
  } catch (error) {
    throw new HostError(`metricsPort ${port}: cannot listen on 127.0.0.1:${port}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Runs the daemon under the agent lock until SIGTERM or SIGINT; SIGHUP re-reads the config file. */
export async function runAgent(given: Host, log: Logger, edge: ProcessEdge, args: RunArgs): Promise<number> {
  // A daemon lives on after each pass: it collects between stages (see Host.collectGarbage), a one-shot command does not.
  const collect = given.collectGarbage ?? garbageCollector();
  const host: Host = collect === undefined ? given : { ...given, collectGarbage: collect };
  // And it runs little code, and most of it rarely: on Bun it is interpreted rather than compiled (see reluctantJit).
  reluctantJit();
  let settings: RunSettings = await resolveRunSettings(host, args);
  if (!host.isPrivileged()) {
    throw new HostError(
      'run changes addresses, rules and sysctls and needs root (CAP_NET_ADMIN): run it as root, e.g. as the systemd service (`eip-agent install --systemd`)',
    );
  }
  const root = settings.daemon.pipeline.root;
  let model: InstanceModel | undefined;
  const render = async () =>
    formatMetrics(await collectMetrics(host, settings.daemon.pipeline.target, model, await loadState(host, root)));
  let server: MetricsServer | undefined;

  const control = new DaemonControl();
  const unsubscribe = [
    edge.onSignal('SIGTERM', () => control.stop('SIGTERM')),
    edge.onSignal('SIGINT', () => control.stop('SIGINT')),
    edge.onSignal('SIGHUP', () => control.requestReload()),
  ];
  const reload = async () => {
    const next = await resolveRunSettings(host, args);
    if (next.daemon.pipeline.root !== root) throw new HostError('the root cannot change on reload');
    if (next.metricsPort !== settings.metricsPort) {
      await server?.close();
      server = undefined;
      // If the new port cannot be had, the reload fails and the endpoint stays off until the next one.
      settings = { ...settings, metricsPort: undefined };
      if (next.metricsPort !== undefined) server = await startServer(next.metricsPort, render);
    }
    settings = next;
    return next.daemon;
  };
  try {
    await withLock(
      host,
      root,
      async () => {
        if (settings.metricsPort !== undefined) server = await startServer(settings.metricsPort, render);
        await runDaemon(host, settings.daemon, { control, onEvent: log, reload, onModel: (m) => void (model = m) });
      },
      { onTakeover: (msg) => log({ level: 'warn', event: 'lock', msg }) },
    );
  } finally {
    for (const off of unsubscribe) off();
    await server?.close();
  }
  return EXIT.ok;
}

/** `eip-agent run`, with the process edge injectable for tests. */
export function createRunCommand(edge: () => ProcessEdge = processEdge): CliCommand {
  return defineCommand({
    command: 'run',
    describe:
      'the daemon: poll the metadata, apply and verify when it changes; SIGHUP reloads the config, SIGTERM stops',
    options: {
      ...COMMON_OPTIONS,
      interval: settingOption('interval'),
      reload: settingOption('reload'),
      'log-format': {
        choices: ['auto', 'json', 'text'],
        default: 'auto',
        describe: 'json lines (journald) or short text lines; auto: text on a terminal',
      },
    },
    async run(host, io, args) {
      const proc = edge();
      const choice = args.logFormat;
      const format: LogFormat = choice === 'json' || choice === 'text' ? choice : proc.stderrIsTTY ? 'text' : 'json';
      const log = createLogger({
        write: io.err,
        format,
        now: host.now,
        level: host.env.EIP_AGENT_DEBUG ? 'debug' : 'info',
        syslogPriority: proc.stderrIsJournal,
      });
      return runAgent(host, log, proc, args);
    },
  });
}

/** `eip-agent run`. */
export const runCommand: CliCommand = createRunCommand();
