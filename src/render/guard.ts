/**
 * Defence in depth for files that bash sources as root: besides the model's validation, every
 * non-comment line of a rendered ifcfg file must be KEY=value with a value made only of
 * characters that bash gives no meaning to. Comments may not carry characters that could end them.
 */
const ASSIGNMENT = /^[A-Z][A-Z0-9_]*=[A-Za-z0-9.:_/-]*$/;
const COMMENT = /^#[^\r\n\0`$\\]*$/;

const ARGUMENT_LINE = /^[A-Za-z0-9.:_/ -]*$/;

/** Throws on the first line that is neither a comment nor matches `allowed`. */
function assertLines(path: string, content: string, allowed: RegExp): void {
  const lines = content.endsWith('\n') ? content.slice(0, -1).split('\n') : content.split('\n');
  lines.forEach((line, i) => {
    if (!allowed.test(line) && !COMMENT.test(line)) {
      throw new Error(`render: ${path}:${i + 1}: refusing to write unsafe line ${JSON.stringify(line)}`);
    }
  });
}

/** Throws when a rendered shell-sourced file has a line that is neither a comment nor a plain assignment. */
export function assertShellAssignments(path: string, content: string): void {
  assertLines(path, content, ASSIGNMENT);
}

/** Same guard for route-/rule- files, whose lines become `ip route add <line>` arguments. */
export function assertIpArgumentLines(path: string, content: string): void {
  assertLines(path, content, ARGUMENT_LINE);
}

/** A NetworkManager keyfile line: a [group], or key=value of plain characters (GLib's keyfile escapes nothing here). */
const KEYFILE_LINE = /^(?:\[[a-z0-9-]+\]|[a-z0-9-]+=[A-Za-z0-9.:_/, -]*|)$/;

/**
 * Same guard for NetworkManager keyfiles, which NetworkManager (root) reads as its connection settings; a key that
 * appears twice in a group (a value that smuggled in a line of its own) is refused too.
 */
export function assertKeyfileLines(path: string, content: string): void {
  assertLines(path, content, KEYFILE_LINE);
  let group = '';
  const seen = new Set<string>();
  content.split('\n').forEach((line, i) => {
    if (line.startsWith('[')) group = line;
    const key = /^([a-z0-9-]+)=/.exec(line)?.[1];
    if (key === undefined) return;
    if (seen.has(`${group}${key}`))
      throw new Error(`render: ${path}:${i + 1}: refusing to write ${key} twice in ${group}`);
    seen.add(`${group}${key}`);
  });
}

/** A systemd-networkd drop-in line: a [Section], or Key=value of plain characters (no specifier, no quote, no escape). */
const NETWORKD_LINE = /^(?:\[[A-Za-z]+\]|[A-Za-z]+=[A-Za-z0-9.:/]+|)$/;

/** Same guard for the systemd-networkd drop-ins that networkd (root) reads as its configuration. */
export function assertNetworkdLines(path: string, content: string): void {
  assertLines(path, content, NETWORKD_LINE);
}
