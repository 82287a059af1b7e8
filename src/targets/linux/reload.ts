import { ApplyError } from '../../errors.js';
import type { Host } from '../../host/host.js';
import { firstLine, runTool } from '../../host/run-tool.js';
import type { ReloadMode } from '../../settings.js';

export type { ReloadMode } from '../../settings.js';

const COMMANDS: Record<Exclude<ReloadMode, 'none'>, string[]> = {
  // What the manual does by hand; it drops sessions on the restarted interfaces.
  network: ['systemctl', 'restart', 'network.service'],
  nmcli: ['nmcli', 'connection', 'reload'],
};

/** Asks the OS to reread the written configuration, when the user chose to. */
export async function reloadNetwork(host: Host, mode: ReloadMode): Promise<void> {
  if (mode === 'none') return;
  const argv = COMMANDS[mode];
  const result = await runTool(host, argv, { timeoutMs: 120_000 });
  if (result.exitCode !== 0)
    throw new ApplyError(
      `\`${argv.join(' ')}\` failed (exit ${result.exitCode}): ${firstLine(result.stderr)}; changes undone`,
    );
}
