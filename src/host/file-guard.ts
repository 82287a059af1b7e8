// What the agent refuses to read, in the words every host (real or test) uses: a link it would follow, a file
// that is not a regular file (a FIFO would hang, a device never ends), a file too large for any config it reads.
import { HostError } from '../errors.js';

/** No file the agent reads (ifcfg, drop-in, state, config, metadata file) is anywhere near this. */
export const MAX_FILE_BYTES = 1024 * 1024;

export function symlinkRefusal(path: string): HostError {
  return new HostError(
    `${path} is a symbolic link: the agent never follows a link for a file it reads, backs up or replaces; replace it with a regular file or remove it`,
  );
}

export function notRegularRefusal(path: string, kind: string): HostError {
  return new HostError(
    `${path} is ${kind}, not a regular file: refusing to read it; remove it or give the path of a file`,
  );
}

export function tooLargeRefusal(path: string): HostError {
  return new HostError(`${path} is larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB: refusing to read it`);
}

/** How a refusal names a file type, from a Stats-like object. */
export function kindOf(stat: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
  isSymbolicLink(): boolean;
}): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  if (stat.isSocket()) return 'a socket';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  return 'a special file';
}
