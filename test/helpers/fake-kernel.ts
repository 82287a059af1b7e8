// An in-memory model of the parts of a Linux guest the agent touches through processes: `ip -j` reads,
// `ip [-force] -batch -` changes, `sysctl -q -w` and `ping`. Every process is recorded (argv + stdin).
// Sysctls live in the memfs volume under /proc/sys, because the agent reads them through host.fs.
import type { LiveRoute, LiveRule } from '../../src/targets/linux/live-state.js';
import type { RunOptions, RunResult } from '../../src/host/host.js';
import { vol } from './host.js';

/** A link as `ip -j address` shows it; `mac` lower-case. */
export interface FakeLink {
  ifname: string;
  mac: string;
  up: boolean;
  addresses: { ip: string; prefixLength: number }[];
  /** Parent link of a VLAN or macvlan (`eth1.100@eth1`), as `ip -j` reports it in `link`. */
  parent?: string;
}

/** A policy rule, as the agent reads it; `from` is `all` or `a.b.c.d/len`. */
export type FakeRule = LiveRule;

/** A route someone added (the connected and local routes of addresses are derived, not stored). */
export type FakeRoute = LiveRoute;

/** The kernel state the fake answers from and mutates. */
export interface KernelState {
  links: FakeLink[];
  rules: FakeRule[];
  routes: FakeRoute[];
}

/** One process the agent started. */
export interface RecordedCall {
  argv: string[];
  input?: string;
}

/** Path of a sysctl under /proc/sys, as the kernel lays it out (the agent's keys have no dots in names). */
export function procSysPath(key: string): string {
  return `/proc/sys/${key.replaceAll('.', '/')}`;
}

/** memfs seed for sysctl values, e.g. `{ 'net.ipv4.conf.all.rp_filter': '1' }` -> `/proc/sys/.../rp_filter: "1\n"`. */
export function sysctlFiles(values: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [procSysPath(key), `${value}\n`]));
}

/** The value the fake (and so the agent) sees for a sysctl, or null when it does not exist. */
export function readSysctl(key: string): string | null {
  const path = procSysPath(key);
  return vol.existsSync(path) ? String(vol.readFileSync(path, 'utf8')).trim() : null;
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

function networkOf(ip: string, prefixLength: number): string {
  const size = 2 ** (32 - prefixLength);
  return `${intToIp(Math.floor(ipToInt(ip) / size) * size)}/${prefixLength}`;
}

function contains(cidr: string, ip: string): boolean {
  const [net = '', len = '32'] = cidr.split('/');
  return networkOf(ip, Number(len)) === `${net}/${len}`;
}

class BatchError extends Error {}

/** A fake `host.run` over a KernelState; every knob is a public field a test sets. */
export class FakeKernel {
  readonly calls: RecordedCall[] = [];
  /** Batch lines (exact text) that fail with `Error: injected failure.`. */
  readonly failLines = new Set<string>();
  /** Programs that are not installed: starting them rejects with code ENOENT. */
  readonly missing = new Set<string>();
  /** Whether gateways answer pings. */
  pingOk = true;
  /** When set, `sysctl -w` fails with this message (after writing nothing). */
  sysctlFailure: string | undefined;
  /** The agent's nftables table as `nft list table inet eip-agent` prints it (null: absent). */
  nftTable: string | null = null;
  /** When set, `nft -f` fails with this message (changing nothing, as nft's transactions do). */
  nftFailure: string | undefined;

  constructor(public state: KernelState) {}

  /** The processes whose argv starts with `prefix`. */
  callsOf(...prefix: string[]): RecordedCall[] {
    return this.calls.filter((c) => prefix.every((p, i) => c.argv[i] === p));
  }

  /** The argv of every process, space-joined, in order. */
  commandLines(): string[] {
    return this.calls.map((c) => c.argv.join(' '));
  }

  readonly run = async (argv: readonly string[], options?: RunOptions): Promise<RunResult> => {
    this.calls.push({ argv: [...argv], ...(options?.input !== undefined ? { input: options.input } : {}) });
    const [program = '', ...args] = argv;
    if (this.missing.has(program)) throw Object.assign(new Error(`spawn ${program} ENOENT`), { code: 'ENOENT' });
    const line = args.join(' ');
    if (program === 'ip') {
      if (line === '-j -d -batch -') return this.reads(options?.input ?? '');
      if (line === '-batch -') return this.batch(options?.input ?? '', false);
      if (line === '-force -batch -') return this.batch(options?.input ?? '', true);
    }
    if (program === 'sysctl' && args[0] === '-q' && args[1] === '-w') return this.sysctl(args.slice(2));
    if (program === 'ping') return this.ping(args);
    if (program === 'nft') return this.nft(line, options?.input ?? '');
    throw new Error(`FakeKernel: unexpected process ${JSON.stringify(argv)}`);
  };

  /** Read-only commands in one `ip -j -d -batch -`: one JSON array per line, as ip prints them. */
  private reads(input: string): RunResult {
    const answers: Record<string, () => unknown[]> = {
      'address show': () => this.addressJson(),
      'rule show': () => this.ruleJson(),
      'route show table all': () => this.routeJson(),
    };
    const lines = input.split('\n').filter((l) => l !== '');
    const unknown = lines.find((l) => answers[l] === undefined);
    if (unknown !== undefined) throw new Error(`FakeKernel: unexpected read ${JSON.stringify(unknown)}`);
    return ok(lines.map((l) => JSON.stringify(answers[l]!())).join('\n'));
  }

  private link(name: string | undefined): FakeLink {
    const link = this.state.links.find((l) => l.ifname === name);
    if (link === undefined) throw new BatchError(`Cannot find device "${name}"`);
    return link;
  }

  private addressJson(): unknown[] {
    return this.state.links.map((l, i) => ({
      ifindex: i + 1,
      ifname: l.ifname,
      ...(l.parent !== undefined ? { link: l.parent, linkinfo: { info_kind: 'vlan' } } : {}),
      flags:
        l.ifname === 'lo'
          ? ['LOOPBACK', ...(l.up ? ['UP', 'LOWER_UP'] : [])]
          : ['BROADCAST', 'MULTICAST', ...(l.up ? ['UP', 'LOWER_UP'] : [])],
      mtu: l.ifname === 'lo' ? 65536 : 1500,
      operstate: l.ifname === 'lo' ? 'UNKNOWN' : l.up ? 'UP' : 'DOWN',
      link_type: l.ifname === 'lo' ? 'loopback' : 'ether',
      address: l.mac,
      broadcast: l.ifname === 'lo' ? '00:00:00:00:00:00' : 'ff:ff:ff:ff:ff:ff',
      addr_info: l.addresses.map((a) => ({
        family: 'inet',
        local: a.ip,
        prefixlen: a.prefixLength,
        scope: l.ifname === 'lo' ? 'host' : 'global',
        label: l.ifname,
        valid_life_time: 4294967295,
        preferred_life_time: 4294967295,
      })),
    }));
  }

  private ruleJson(): unknown[] {
    return [...this.state.rules]
      .sort((a, b) => a.priority - b.priority)
      .map((r) => {
        const [dst, dstlen] = (r.to ?? '').split('/');
        const [fwmark, fwmask] = (r.fwmark ?? '').split('/');
        const rest = {
          ...(r.to !== undefined ? { dst, ...(dstlen !== '32' ? { dstlen: Number(dstlen) } : {}) } : {}),
          ...(r.fwmark !== undefined ? { fwmark, ...(fwmask !== undefined ? { fwmask } : {}) } : {}),
          table: r.table,
          ...(r.suppressPrefixLength !== undefined ? { suppress_prefixlen: r.suppressPrefixLength } : {}),
        };
        if (r.from === 'all') return { priority: r.priority, src: 'all', ...rest };
        const [src, len] = r.from.split('/');
        return { priority: r.priority, src, ...(len !== '32' ? { srclen: Number(len) } : {}), ...rest };
      });
  }

  /** Connected routes of up links (main table) and local routes of every address, as the kernel adds them. */
  private derivedRoutes(): FakeRoute[] {
    const routes: FakeRoute[] = [];
    for (const link of this.state.links) {
      if (!link.up) continue;
      const seen = new Set<string>();
      for (const a of link.addresses) {
        const net = networkOf(a.ip, a.prefixLength);
        if (link.ifname !== 'lo' && !seen.has(net))
          routes.push({ table: 'main', dst: net, dev: link.ifname, protocol: 'kernel', prefsrc: a.ip });
        seen.add(net);
        routes.push({ table: 'local', dst: a.ip, dev: link.ifname, protocol: 'kernel', prefsrc: a.ip });
      }
    }
    return routes;
  }

  private routeJson(): unknown[] {
    return [...this.state.routes, ...this.derivedRoutes()].map((r) => ({
      ...(r.table === 'local' ? { type: 'local' } : {}),
      dst: r.dst,
      ...(r.gateway !== undefined ? { gateway: r.gateway } : {}),
      ...(r.dev !== undefined ? { dev: r.dev } : {}),
      ...(r.table !== 'main' ? { table: r.table } : {}),
      ...(r.protocol !== undefined ? { protocol: r.protocol } : {}),
      scope: r.gateway !== undefined ? 'global' : r.table === 'local' ? 'host' : 'link',
      ...(r.prefsrc !== undefined ? { prefsrc: r.prefsrc } : {}),
      ...(r.metric !== undefined ? { metric: r.metric } : {}),
      flags: [],
    }));
  }

  private batch(script: string, force: boolean): RunResult {
    const lines = script.split('\n');
    if (lines.at(-1) === '') lines.pop();
    let stderr = '';
    lines.forEach((text, i) => {
      if (stderr !== '' && !force) return;
      try {
        if (this.failLines.has(text)) throw new BatchError('Error: injected failure.');
        this.execute(text.trim().split(/\s+/));
      } catch (error) {
        if (!(error instanceof BatchError)) throw error;
        stderr += `${error.message}\nCommand failed -:${i + 1}\n`;
      }
    });
    return { exitCode: stderr === '' ? 0 : 1, stdout: '', stderr };
  }

  private execute(words: string[]): void {
    const [object, verb, ...rest] = words;
    const opts = new Map<string, string>();
    const positional: string[] = [];
    for (let i = 0; i < rest.length; i++) {
      const word = rest[i] ?? '';
      if (
        ['dev', 'via', 'src', 'table', 'proto', 'from', 'to', 'priority', 'suppress_prefixlength', 'fwmark'].includes(
          word,
        )
      )
        opts.set(word, rest[++i] ?? '');
      else positional.push(word);
    }
    if (object === 'link' && verb === 'set') {
      const link = this.link(opts.get('dev'));
      if (positional[0] !== 'up' && positional[0] !== 'down')
        throw new BatchError(`Error: unsupported "${words.join(' ')}"`);
      link.up = positional[0] === 'up';
      return;
    }
    if (object === 'address' && (verb === 'add' || verb === 'del')) {
      const link = this.link(opts.get('dev'));
      const [ip = '', len = '32'] = (positional[0] ?? '').split('/');
      const index = link.addresses.findIndex((a) => a.ip === ip && a.prefixLength === Number(len));
      if (verb === 'add') {
        if (index >= 0) throw new BatchError('Error: ipv4: Address already assigned.');
        link.addresses.push({ ip, prefixLength: Number(len) });
      } else {
        if (index < 0) throw new BatchError('Error: ipv4: Address not found.');
        this.deleteAddress(link, index);
      }
      return;
    }
    if (object === 'route' && (verb === 'add' || verb === 'replace' || verb === 'del')) {
      this.route(verb, positional[0] ?? '', opts);
      return;
    }
    if (object === 'rule' && (verb === 'add' || verb === 'del')) {
      const table = opts.get('table') ?? 'main';
      const to = opts.get('to');
      const suppress = opts.get('suppress_prefixlength');
      const fwmark = opts.get('fwmark');
      const rule: FakeRule = {
        priority: Number(opts.get('priority') ?? 0),
        from: opts.get('from') ?? 'all',
        ...(to !== undefined ? { to } : {}),
        // As the kernel reports it: table 254 is main.
        table: table === '254' ? 'main' : table,
        ...(suppress !== undefined ? { suppressPrefixLength: Number(suppress) } : {}),
        ...(fwmark !== undefined ? { fwmark } : {}),
      };
      const index = this.state.rules.findIndex(
        (r) =>
          r.priority === rule.priority &&
          r.from === rule.from &&
          r.to === rule.to &&
          r.table === rule.table &&
          r.suppressPrefixLength === rule.suppressPrefixLength &&
          r.fwmark === rule.fwmark,
      );
      if (verb === 'add') {
        if (index >= 0) throw new BatchError('RTNETLINK answers: File exists');
        // As the kernel keeps them: by priority, a new rule after those of the same priority.
        const after = this.state.rules.findIndex((r) => r.priority > rule.priority);
        this.state.rules.splice(after < 0 ? this.state.rules.length : after, 0, rule);
      } else {
        if (index < 0) throw new BatchError('RTNETLINK answers: No such file or directory');
        this.state.rules.splice(index, 1);
      }
      return;
    }
    throw new BatchError(`Object "${object}" is unknown, try "ip help".`);
  }

  /**
   * As the kernel does: deleting the first address of a subnet on a link deletes every other address of that
   * subnet with it, unless net.ipv4.conf.<link>.promote_secondaries is 1 (then the next one becomes primary).
   */
  private deleteAddress(link: FakeLink, index: number): void {
    const [gone] = link.addresses.splice(index, 1);
    if (gone === undefined) return;
    const net = networkOf(gone.ip, gone.prefixLength);
    const sameSubnet = (a: { ip: string; prefixLength: number }) =>
      networkOf(a.ip, gone.prefixLength) === net && a.prefixLength === gone.prefixLength;
    const wasPrimary = link.addresses.slice(0, index).every((a) => !sameSubnet(a));
    if (!wasPrimary || readSysctl(`net.ipv4.conf.${link.ifname}.promote_secondaries`) === '1') return;
    link.addresses = link.addresses.filter((a) => !sameSubnet(a));
  }

  private route(verb: string, dst: string, opts: Map<string, string>): void {
    const table = opts.get('table') ?? 'main';
    const dev = opts.get('dev');
    const gateway = opts.get('via');
    const prefsrc = opts.get('src');
    const matches = (r: FakeRoute) =>
      r.table === table &&
      r.dst === dst &&
      (dev === undefined || r.dev === dev) &&
      (gateway === undefined || r.gateway === gateway) &&
      (prefsrc === undefined || r.prefsrc === prefsrc);
    const index = this.state.routes.findIndex(matches);
    if (verb === 'del') {
      if (index < 0) throw new BatchError('RTNETLINK answers: No such process');
      this.state.routes.splice(index, 1);
      return;
    }
    const link = this.link(dev);
    if (prefsrc !== undefined && !this.state.links.some((l) => l.addresses.some((a) => a.ip === prefsrc)))
      throw new BatchError('Error: Invalid prefsrc address.');
    // A gateway must be on a connected subnet of the (up) device, or the kernel refuses the nexthop.
    if (
      gateway !== undefined &&
      !(link.up && link.addresses.some((a) => contains(networkOf(a.ip, a.prefixLength), gateway)))
    ) {
      throw new BatchError('Error: Nexthop has invalid gateway.');
    }
    const route: FakeRoute = {
      table,
      dst,
      dev: link.ifname,
      ...(gateway !== undefined ? { gateway } : {}),
      ...(opts.has('proto') ? { protocol: opts.get('proto') } : { protocol: 'boot' }),
      ...(prefsrc !== undefined ? { prefsrc } : {}),
    };
    const sameKey = this.state.routes.findIndex((r) => r.table === table && r.dst === dst);
    if (verb === 'add') {
      if (sameKey >= 0) throw new BatchError('RTNETLINK answers: File exists');
      this.state.routes.push(route);
    } else if (sameKey >= 0) this.state.routes[sameKey] = route;
    else this.state.routes.push(route);
  }

  /**
   * `nft list table inet eip-agent` and `nft -f -` of the agent's scripts: the table is whatever the last `table inet
   * eip-agent { ... }` block of a script says, or absent when the script ends by deleting it.
   */
  private nft(line: string, input: string): RunResult {
    if (line === 'list table inet eip-agent') {
      if (this.nftTable === null)
        return { exitCode: 1, stdout: '', stderr: 'Error: No such file or directory\nlist table inet eip-agent\n' };
      return { exitCode: 0, stdout: this.nftTable, stderr: '' };
    }
    if (line === '-f -') {
      if (this.nftFailure !== undefined) return { exitCode: 1, stdout: '', stderr: `${this.nftFailure}\n` };
      const start = input.lastIndexOf('table inet eip-agent {');
      this.nftTable = start < 0 ? null : input.slice(start);
      return ok('');
    }
    throw new Error(`FakeKernel: unexpected nft ${JSON.stringify(line)}`);
  }

  private sysctl(pairs: string[]): RunResult {
    if (this.sysctlFailure !== undefined) return { exitCode: 255, stdout: '', stderr: `${this.sysctlFailure}\n` };
    let stderr = '';
    for (const pair of pairs) {
      const eq = pair.indexOf('=');
      const path = procSysPath(pair.slice(0, eq));
      if (eq < 0 || !vol.existsSync(path)) {
        stderr += `sysctl: cannot stat ${path}: No such file or directory\n`;
        continue;
      }
      vol.writeFileSync(path, `${pair.slice(eq + 1)}\n`);
    }
    return { exitCode: stderr === '' ? 0 : 255, stdout: '', stderr };
  }

  private ping(args: string[]): RunResult {
    const source = args[args.indexOf('-I') + 1] ?? '';
    const target = args.at(-1) ?? '';
    const link = this.state.links.find((l) => l.addresses.some((a) => a.ip === source));
    if (link === undefined) return { exitCode: 2, stdout: '', stderr: 'ping: bind: Cannot assign requested address\n' };
    const reachable =
      this.pingOk && link.up && link.addresses.some((a) => contains(networkOf(a.ip, a.prefixLength), target));
    const summary = reachable
      ? '1 packets transmitted, 1 received, 0% packet loss, time 0ms'
      : '1 packets transmitted, 0 received, 100% packet loss, time 0ms';
    return {
      exitCode: reachable ? 0 : 1,
      stdout: `PING ${target} (${target}) from ${source} : 56(84) bytes of data.\n\n--- ${target} ping statistics ---\n${summary}\n`,
      stderr: '',
    };
  }
}

function ok(stdout: string): RunResult {
  return { exitCode: 0, stdout: `${stdout}\n`, stderr: '' };
}
