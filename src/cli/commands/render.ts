import { underRoot } from '../../apply/root.js';
import { makePlan } from '../../pipeline.js';
import { commonOptions, EXIT, printWarnings, type CliCommand } from '../command.js';
import { requireAbsolute, resolveOptions } from '../options.js';

/** `eip-agent render --out DIR`: the rendered files under DIR, nothing else. */
export const renderCommand: CliCommand = {
  command: 'render',
  describe: 'write the rendered files under --out DIR as if DIR were the root; nothing else',
  builder: (y) => commonOptions(y).option('out', { type: 'string', demandOption: true, describe: 'output directory (absolute)' }),
  async run(host, io, args) {
    const out = String(args.out ?? '');
    requireAbsolute('--out', out);
    const { plan } = await makePlan(host, { ...(await resolveOptions(host, args)), runtime: false, root: out });
    printWarnings(io, plan.warnings);
    const paths = plan.desired.files.map((f) => underRoot(out, f.path));
    for (const [i, file] of plan.desired.files.entries()) await host.fs.writeAtomic(paths[i]!, file.content, file.mode);
    io.out(args.json ? `${JSON.stringify({ files: paths }, null, 2)}\n` : paths.map((p) => `${p}\n`).join(''));
    return EXIT.ok;
  },
};
