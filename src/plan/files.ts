import { ApplyError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { FileChange } from './plan.js';
import type { FileMeta } from '../host/host.js';
import { insideRoot, underRoot } from './root.js';

/** What was done to one path, so that it can be undone. */
interface Written {
  path: string;
  previous: string | null;
  /** Mode and owner to put the previous content back with. */
  meta: FileMeta | undefined;
}

/** Files written by one apply; `restore` puts every one back as it was. */
export interface FileTransaction {
  written: Written[];
  restore(): Promise<void>;
}

/**
 * Writes the changed files atomically, saving each original the agent did not write once
 * beforehand. If any write fails, the files already written are put back and the error says which
 * path failed: a failed apply leaves the files as they were.
 */
export async function writeFiles(host: Host, root: string, changes: readonly FileChange[]): Promise<FileTransaction> {
  const written: Written[] = [];
  const restore = async () => {
    for (const w of [...written].reverse()) {
      const target = underRoot(root, w.path);
      if (w.previous === null) await host.fs.remove(target);
      else await host.fs.writeAtomic(target, w.previous, w.meta?.mode ?? 0o644, w.meta);
    }
  };
  let current = '';
  try {
    for (const change of changes) {
      if (change.action === 'unchanged') continue;
      if (change.backupPath !== undefined && change.previous !== null) {
        current = change.backupPath;
        // The backup is the original as it was: same content, mode and owner.
        const meta = change.previousMeta;
        await host.fs.writeAtomic(
          await insideRoot(host, root, change.backupPath),
          change.previous,
          meta?.mode ?? change.mode,
          meta,
        );
        written.push({ path: change.backupPath, previous: null, meta: undefined });
      }
      current = change.path;
      const target = await insideRoot(host, root, change.path);
      if (change.action === 'remove') await host.fs.remove(target);
      else await host.fs.writeAtomic(target, change.content, change.mode, change.owner);
      written.push({ path: change.path, previous: change.previous, meta: change.previousMeta });
    }
  } catch (error) {
    await restore();
    throw new ApplyError(
      `writing ${underRoot(root, current)} failed: ${(error as Error).message}; files left as they were`,
      { cause: error },
    );
  }
  return { written, restore };
}
