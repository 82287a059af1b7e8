// NetworkManager keyfile profiles among the files a change wrote or put back: NetworkManager reads them again only when
// told (`nmcli connection load`), which updates what it activates at the next boot and leaves the live devices alone.
import { ApplyError } from '../../../errors.js';
import type { Host } from '../../../host/host.js';
import { SYSTEM_CONNECTIONS_DIR } from './render.js';
import { underRoot } from '../../../plan/root.js';
import { firstLine, runTool } from '../../../host/run-tool.js';

/** Whether a guest path is a NetworkManager keyfile profile. */
export function isProfile(path: string): boolean {
  return path.startsWith(`${SYSTEM_CONNECTIONS_DIR}/`) && path.endsWith('.nmconnection');
}

/** The files of the profiles NetworkManager has active now. */
async function activeProfileFiles(host: Host): Promise<Set<string>> {
  const result = await runTool(host, ['nmcli', '-t', '-f', 'FILENAME', 'connection', 'show', '--active'], {
    timeoutMs: 30_000,
  });
  return new Set(
    result.exitCode === 0
      ? result.stdout
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
      : [],
  );
}

/**
 * `nmcli connection load` of the profiles among `paths`: a changed one is read again, one that is gone is dropped.
 * Except a gone profile that is active: dropping it would take its device down at once, addresses and all (eth0's
 * primary too), so NetworkManager keeps it until the next boot; the returned notes say so. Throws when `load` fails.
 */
export async function loadProfiles(host: Host, root: string, paths: readonly string[]): Promise<string[]> {
  const profiles = paths.filter(isProfile).map((p) => underRoot(root, p));
  if (profiles.length === 0) return [];
  const gone: string[] = [];
  for (const p of profiles) if ((await host.fs.meta(p)) === null) gone.push(p);
  const active = gone.length > 0 ? await activeProfileFiles(host) : new Set<string>();
  const kept = gone.filter((p) => active.has(p));
  const load = profiles.filter((p) => !kept.includes(p));
  if (load.length > 0) {
    const argv = ['nmcli', 'connection', 'load', ...load];
    const result = await runTool(host, argv, { timeoutMs: 30_000 });
    if (result.exitCode !== 0) {
      const said = result.stderr.trim() || result.stdout.trim();
      throw new ApplyError(`\`${argv.join(' ')}\` exited ${result.exitCode}${said ? `: ${firstLine(said)}` : ''}`);
    }
  }
  return kept.map(
    (p) =>
      `${p} removed; NetworkManager keeps it active on its device until the next boot (dropping it now would take the device down)`,
  );
}
