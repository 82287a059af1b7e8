import yargs from 'yargs';
import type { Argv } from 'yargs';
import { AgentError, ConfigError } from '../errors.js';
import type { Host } from '../host/host.js';
import { createNodeHost } from '../host/node.js';
import { applyAndVerify, makePlan, planIsEmpty, verifyOnly } from '../pipeline.js';
import { formatPlan, formatReport, planJson } from './format.js';
import type { CommonArgs } from './options.js';
import { resolveOptions } from './options.js';
import { serveMetadata } from './serve.js';
import { underRoot } from '../apply/root.js';

/** Exit codes, the same for every command. */
export const EXIT = { ok: 0, error: 1, pending: 2, notVerified: 3 } as const;

interface Io {
  out(text: string): void;
  err(text: string): void;
}

type Args = CommonArgs & { json: boolean; out?: string; fixture?: string; host?: string; port?: number; controlSocket?: string };

function printWarnings(io: Io, warnings: readonly string[]): void {
  for (const w of warnings) io.err(`eip-agent: warning: ${w}\n`);
}

async function planCommand(host: Host, io: Io, args: Args): Promise<number> {
  const { plan } = await makePlan(host, await resolveOptions(host, args));
  if (args.json) io.out(`${JSON.stringify(planJson(plan), null, 2)}\n`);
  else io.out(formatPlan(plan));
  return planIsEmpty(plan) ? EXIT.ok : EXIT.pending;
}

async function applyCommand(host: Host, io: Io, args: Args): Promise<number> {
  const result = await applyAndVerify(host, await resolveOptions(host, args));
  const { plan, outcome, report, rolledBack } = result;
  if (args.json) {
    io.out(`${JSON.stringify({ applied: !rolledBack, rolledBack, filesWritten: outcome.filesWritten, runtimeApplied: outcome.runtimeApplied, warnings: plan.warnings, verification: report ?? null }, null, 2)}\n`);
  } else {
    printWarnings(io, plan.warnings);
    if (outcome.filesWritten.length === 0 && outcome.runtimeApplied.length === 0) io.out('Already in sync: nothing written, nothing changed.\n');
    for (const f of outcome.filesWritten) io.out(`wrote ${f}\n`);
    for (const r of outcome.runtimeApplied) io.out(`applied: ${r}\n`);
    if (report) io.out(formatReport(report));
  }
  if (rolledBack) {
    io.err('eip-agent: verify: verification failed after apply; every change of this run was rolled back (see the failed checks above)\n');
    return EXIT.notVerified;
  }
  return EXIT.ok;
}

async function verifyCommand(host: Host, io: Io, args: Args): Promise<number> {
  const { plan, report } = await verifyOnly(host, await resolveOptions(host, args));
  if (args.json) io.out(`${JSON.stringify({ ...report, warnings: plan.warnings }, null, 2)}\n`);
  else {
    printWarnings(io, plan.warnings);
    io.out(formatReport(report));
  }
  return report.ok ? EXIT.ok : EXIT.notVerified;
}

async function renderCommand(host: Host, io: Io, args: Args): Promise<number> {
  const out = args.out ?? '';
  if (!out.startsWith('/')) throw new ConfigError(`--out ${JSON.stringify(out)} must be an absolute path`);
  const { plan } = await makePlan(host, { ...(await resolveOptions(host, args)), runtime: false, root: out });
  printWarnings(io, plan.warnings);
  for (const file of plan.desired.files) {
    const path = underRoot(out, file.path);
    await host.fs.writeAtomic(path, file.content, file.mode);
    if (!args.json) io.out(`${path}\n`);
  }
  if (args.json) io.out(`${JSON.stringify({ files: plan.desired.files.map((f) => underRoot(out, f.path)) }, null, 2)}\n`);
  return EXIT.ok;
}

function commonOptions(y: Argv): Argv<Args> {
  return y
    .option('metadata-url', { type: 'string', describe: 'metadata base URL (env EIP_AGENT_METADATA_URL)', defaultDescription: 'http://169.254.0.23/latest/meta-data/' })
    .option('metadata-file', { type: 'string', describe: 'read the metadata tree from a JSON file instead (offline preview)' })
    .option('root', { type: 'string', default: '/', describe: 'prefix for every file path read or written' })
    .option('target', { choices: ['centos', 'windows'], describe: 'guest OS to configure', defaultDescription: 'the running OS' })
    .option('routing', { choices: ['policy', 'rp-filter'], describe: 'how secondary NICs route their replies', defaultDescription: 'policy' })
    .option('config', { type: 'string', describe: 'config file (env EIP_AGENT_CONFIG)', defaultDescription: '/etc/eip-agent/config.json if present' })
    .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of text' }) as unknown as Argv<Args>;
}

/** Runs the CLI with the given arguments and host; returns the exit code. */
export async function main(argv: readonly string[], host: Host = createNodeHost(), io: Io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }): Promise<number> {
  let code: number = EXIT.ok;
  // yargs' handler types do not follow the builders' option types; the builders above define Args.
  const guard = (fn: (host: Host, io: Io, args: Args) => Promise<number>) => async (args: unknown) => {
    code = await fn(host, io, args as Args);
  };
  const parser = yargs([...argv])
    .scriptName('eip-agent')
    .usage('$0 <command> [options]\n\nConfigures ENIs, secondary private IPs and EIPs on this guest from the instance metadata.')
    .command('plan', 'show what apply would change (unified diffs + runtime changes); writes nothing. Exit 0 in sync, 2 changes pending, 1 error', (y: Argv) =>
      commonOptions(y).option('runtime', { type: 'boolean', default: true, describe: 'compare the live addresses/rules/routes/sysctls (--no-runtime: files only)' }), guard(planCommand))
    .command('apply', 'write the files, reconcile the runtime, verify; roll back if verification fails. Exit 0 applied and verified, 1 error (nothing changed), 3 verification failed (rolled back)', (y: Argv) =>
      commonOptions(y)
        .option('runtime', { type: 'boolean', default: true, describe: 'change the live state too (--no-runtime: write files only)' })
        .option('reload', { choices: ['none', 'network', 'nmcli'], describe: 'after writing files: none, `systemctl restart network.service` (drops sessions), or `nmcli connection reload`', defaultDescription: 'none' }), guard(applyCommand))
    .command('render', 'write the rendered files under --out DIR as if DIR were the root; nothing else', (y: Argv) =>
      commonOptions(y).option('out', { type: 'string', demandOption: true, describe: 'output directory (absolute)' }), guard(renderCommand))
    .command('verify', 'check the live system and files against the metadata; ping each gateway from each address. Exit 0 verified, 3 not as desired, 1 error', (y: Argv) => commonOptions(y), guard(verifyCommand))
    .command('metadata', 'metadata tools', (y: Argv) =>
      y
        .command('serve', 'serve a metadata JSON fixture over HTTP like the instance metadata endpoint (for tests and previews)', (s) =>
          s
            .option('fixture', { type: 'string', demandOption: true, describe: 'JSON tree to serve' })
            .option('host', { type: 'string', default: '127.0.0.1' })
            .option('port', { type: 'number', default: 8080 })
            .option('control-socket', { type: 'string', describe: 'unix socket for the control API (PUT /tree, PUT /faults, GET /stats)' }), async (a) => {
          code = await serveMetadata(host, io, a as unknown as { fixture: string; host: string; port: number; controlSocket?: string });
        })
        .demandCommand(1, 'name a metadata subcommand: serve'))
    .demandCommand(1, 'name a command: plan, apply, render, verify or metadata serve')
    .strict()
    .help()
    .version(false)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new ConfigError(message);
    });
  try {
    await parser.parseAsync();
    return code;
  } catch (error) {
    if (error instanceof AgentError) {
      io.err(`eip-agent: ${error.line}\n`);
      return EXIT.error;
    }
    io.err(`eip-agent: internal error: ${(error as Error).message}${host.env.EIP_AGENT_DEBUG ? `\n${(error as Error).stack}` : ' (set EIP_AGENT_DEBUG=1 for a stack trace)'}\n`);
    return EXIT.error;
  }
}
