import { ApplyError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { FileChange } from './plan.js';
import { underRoot } from './root.js';

/** What was done to one path, so that it can be undone. */
interface Written {
  path: string;
  previous: string | null;
  mode: number;
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
      else await host.fs.writeAtomic(target, w.previous, w.mode);
    }
  };
  let current = '';
  try {
    for (const change of changes) {
      if (change.action === 'unchanged') continue;
      if (change.backupPath !== undefined && change.previous !== null) {
        current = change.backupPath;
        await host.fs.writeAtomic(underRoot(root, change.backupPath), change.previous, change.mode);
        written.push({ path: change.backupPath, previous: null, mode: change.mode });
      }
      current = change.path;
      if (change.action === 'remove') await host.fs.remove(underRoot(root, change.path));
      else await host.fs.writeAtomic(underRoot(root, change.path), change.content, change.mode);
      written.push({ path: change.path, previous: change.previous, mode: change.mode });
    }
  } catch (error) {
    await restore();
    throw new ApplyError(`writing ${underRoot(root, current)} failed: ${(error as Error).message}; files left as they were`, { cause: error });
  }
  return { written, restore };
}
