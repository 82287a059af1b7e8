import type { HttpResponse } from './http-get.js';
/** Result of one process run through the host; never a shell, always an argv array. */
export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Options for one process run. */
export interface RunOptions {
  /** Text fed to the process's standard input (e.g. an `ip -batch -` script). */
  input?: string;
  timeoutMs?: number;
  /** Most bytes read from stdout, and from stderr, before the process is killed and the run fails (default MAX_TOOL_OUTPUT_BYTES). */
  maxOutputBytes?: number;
}

/** Permission bits and owner of a file, kept when the agent backs it up or puts it back. */
export interface FileMeta {
  mode: number;
  uid: number;
  gid: number;
}

/** The file system as the agent sees it; every path is absolute and already root-prefixed by the caller. */
export interface HostFs {
  /**
   * The file's text, or null when it does not exist. Refuses (HostError) a symbolic link unless `follow`, anything
   * that is not a regular file, and a file over MAX_FILE_BYTES.
   */
  readText(path: string, options?: { follow?: boolean }): Promise<string | null>;
  /** Mode bits and owner of the file itself (not a link's target), or null when nothing is there. */
  meta(path: string): Promise<FileMeta | null>;
  /** The path with every symbolic link resolved, as far as it exists (the rest appended as it is). */
  realpath(path: string): Promise<string>;
  /** Names in a directory, or null when it does not exist. */
  list(path: string): Promise<string[] | null>;
  /** Temp file in the same directory, fsync, rename over, fsync the directory. Creates parent directories. */
  writeAtomic(path: string, content: string, mode: number, owner?: { uid: number; gid: number }): Promise<void>;
  /** Removes a file; a missing file is not an error. */
  remove(path: string): Promise<void>;
  /** Removes a directory if it is empty; a missing or non-empty directory is not an error. */
  removeEmptyDir(path: string): Promise<void>;
  /** Creates a file only if nothing exists at path (O_EXCL), creating parent directories; false when it already exists. */
  createExclusive(path: string, content: string): Promise<boolean>;
}

/**
 * The agent's own directory on Windows: %ProgramData%\eip-agent, whose ACL `install --windows-task` limits to SYSTEM
 * and Administrators. Every default path on Windows (config, lock, state, scripts, log) is in it, never on the
 * drive root, where any user can create folders.
 */
export function windowsAgentDir(host: Pick<Host, 'env'>): string {
  return `${host.env.ProgramData ?? 'C:\\ProgramData'}\\eip-agent`;
}

/** A long-lived process whose output is read line by line (`ip monitor`). */
export interface WatchHandle {
  /** Ends the process; idempotent. */
  stop(): void;
  /** Resolves when the process has ended, for whatever reason. */
  readonly exited: Promise<void>;
}

/** Every side effect the agent may have, built once at the edge and passed down. */
export interface Host {
  fs: HostFs;
  /** Runs argv[0] with the rest as arguments. Rejects only when the program cannot be started (code ENOENT...). */
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Starts a process and does not wait for it or its result (best-effort announcements such as gratuitous ARP). */
  runDetached(argv: readonly string[]): void;
  /** Starts a long-lived process and calls onLine with each line of its standard output. */
  watch(argv: readonly string[], onLine: (line: string) => void): WatchHandle;
  /** One plain-HTTP GET (the metadata service); rejects with HttpGetError below the status line. */
  httpGet(url: string, options: { timeoutMs: number; signal?: AbortSignal; maxBytes?: number }): Promise<HttpResponse>;
  now(): number;
  /** Resolves after ms, or as soon as signal aborts; never rejects. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** This process's id (the agent lock records it). */
  pid: number;
  /** Whether a process with this pid exists (signal 0); used where there is no /proc (Windows). */
  isRunning(pid: number): boolean;
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  /** Effective uid 0: the only way apply can change addresses, rules and sysctls. */
  isPrivileged(): boolean;
  /** Human messages (warnings, progress) for stderr. */
  log(message: string): void;
  /**
   * A full garbage collection, now. The pipeline calls it after each stage of a pass (the read, the change, the
   * verification), so that what one stage left behind is gone before the next allocates: a long-lived process's peak
   * is then the largest stage, not their sum. Only the daemon sets it (see garbageCollector); a short run exits instead.
   */
  collectGarbage?(): void;
}
