import { requireAbsolute } from '../../config/options.js';
import { loadConfig } from '../../config/file.js';
import { defaultTargetName, getTarget } from '../../targets/index.js';
import { withLock } from '../../plan/lock.js';
import { EXIT, printWarnings, defineCommand } from '../command.js';

/** `eip-agent rollback [--original]`. */
export const rollbackCommand = defineCommand({
  command: 'rollback',
  describe:
    'undo the last apply (files, addresses, rules, routes, sysctls); --original: restore what the guest ' +
    'had before eip-agent first touched it. Exit 0 done, 3 done only in part (the warnings say what), 1 ' +
    'error',
  options: {
    original: {
      type: 'boolean',
      default: false,
      describe: 'restore the state from before the first apply, and own nothing',
    },
    root: { type: 'string', default: '/', describe: 'prefix for every file path read or written' },
    config: {
      type: 'string',
      describe:
        "config file (env EIP_AGENT_CONFIG); checked like every command's, though a rollback undoes only what the agent recorded, whatever it says",
      defaultDescription: '/etc/eip-agent/config.json if present',
    },
    json: { type: 'boolean', default: false, describe: 'print JSON instead of text' },
  },
  async run(host, io, args) {
    requireAbsolute('--root', args.root);
    // A config file with a mistake is refused here as by every other command, before anything changes.
    const config = await loadConfig(host, args.config);
    const root = args.root;
    const target = await getTarget(config.target ?? defaultTargetName(host.platform));
    const result = await withLock(host, root, () => target.rollback(host, root, { original: args.original === true }));
    if (args.json) io.out(`${JSON.stringify(result, null, 2)}\n`);
    else {
      printWarnings(io, result.warnings);
      for (const line of [...result.runtime, ...result.files]) io.out(`${line}\n`);
      if (!result.complete) io.out('Rolled back only in part: see the warnings above.\n');
      else
        io.out(
          args.original
            ? 'Restored the state from before eip-agent first changed this guest.\n'
            : 'Rolled back the last apply.\n',
        );
    }
    return result.complete ? EXIT.ok : EXIT.notVerified;
  },
});
