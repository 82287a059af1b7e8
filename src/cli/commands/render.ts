import { underRoot } from '../../plan/root.js';
import { ConfigError } from '../../errors.js';
import { makePlan } from '../../pipeline.js';
import { COMMON_OPTIONS, EXIT, printWarnings, defineCommand } from '../command.js';
import { requireAbsolute, resolveOptions } from '../../config/options.js';

/** `eip-agent render --out DIR`: the rendered files under DIR, nothing else. */
export const renderCommand = defineCommand({
  command: 'render',
  describe: 'write the rendered files under --out DIR as if DIR were the root; nothing else',
  options: {
    ...COMMON_OPTIONS,
    out: { type: 'string', required: true, describe: 'output directory (absolute)' },
  },
  async run(host, io, args) {
    const out = args.out;
    requireAbsolute('--out', out);
    if ((await host.fs.meta(out)) !== null && (await host.fs.list(out)) === null)
      throw new ConfigError(`--out ${out}: not a directory`);
    const { plan } = await makePlan(host, { ...(await resolveOptions(host, args)), runtime: false, root: out });
    // The Windows target's warnings are about what `plan` shows (a script, not adapter changes): not render's business.
    if (plan.target !== 'windows') printWarnings(io, plan.warnings);
    const paths = plan.desired.files.map((f) => underRoot(out, f.path));
    for (const [i, file] of plan.desired.files.entries()) {
      try {
        await host.fs.writeAtomic(paths[i]!, file.content, file.mode);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === 'ENOTDIR' || code === 'EEXIST')
          throw new ConfigError(`--out ${out}: not a directory (or a file is in the way of ${paths[i]})`);
        throw error;
      }
    }
    io.out(args.json ? `${JSON.stringify({ files: paths }, null, 2)}\n` : paths.map((p) => `${p}\n`).join(''));
    return EXIT.ok;
  },
});
