import { beforeEach, describe, expect, it } from 'vitest';
import { STATE_PATH, emptyState } from '../../src/plan/record.js';
import { EXIT, main } from '../../src/cli/main.js';
import type { Host } from '../../src/host/host.js';
import type { MetaTree } from '../../src/metadata/tree.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { createTestHost, vol } from '../helpers/host.js';
import {
  CLOUD_INIT_ETH0,
  MANUAL_HASH,
  NOW,
  NOW_ISO,
  POLICY_FILES,
  RULE_UNDO,
  SCRIPTS,
  freshKernel,
  guestFiles,
  treeWithout8,
} from '../helpers/manual-guest.js';
import { manualTree } from '../lab/fixtures.js';

const META = ['--metadata-file', '/meta.json'];
const ETH0 = `${SCRIPTS}/ifcfg-eth0`;

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs the CLI against the guest in memfs and the given kernel (none: every process fails to start), as root unless `privileged` is false. */
async function cli(argv: string[], kernel?: FakeKernel, privileged = true): Promise<Run> {
  const host: Host = createTestHost({
    now: () => NOW,
    ...(kernel ? { run: kernel.run, isPrivileged: () => privileged } : {}),
  });
  let out = '';
  let err = '';
  const code = await main(argv, host, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

/** A copy of `tree` with the item at `path` (slash-separated) set. */
function edit(tree: MetaTree, path: string, value: MetaTree | string): MetaTree {
  const copy = structuredClone(tree);
  const names = path.split('/');
  const last = names.pop() as string;
  let node = copy;
  for (const name of names) node = node[name] as MetaTree;
  node[last] = value;
  return copy;
}

/** A copy of `tree` with the directory entry `from` (under `dir`) renamed to `to`, keeping listing order. */
function rename(tree: MetaTree, dir: string, from: string, to: string): MetaTree {
  const copy = structuredClone(tree);
  let node = copy;
  for (const name of dir.split('/')) node = node[name] as MetaTree;
  const entries = Object.entries(node).map(([k, v]): [string, MetaTree | string] => [k === from ? to : k, v]);
  for (const key of Object.keys(node)) delete node[key];
  Object.assign(node, Object.fromEntries(entries));
  return copy;
}

function seedTree(tree: unknown): void {
  vol.writeFileSync('/meta.json', JSON.stringify(tree));
}

/** Asserts a failed run: exit 1, nothing on stdout, exactly one `eip-agent: ` line on stderr (no stack). */
function expectOneLineFailure(run: Run): void {
  expect(run.code).toBe(EXIT.error);
  expect(run.out).toBe('');
  expect(run.err).toMatch(/^eip-agent: [^\n]*\n$/u);
  expect(run.err).not.toMatch(/internal error|\n\s+at /u);
}

beforeEach(() => {
  vol.reset();
  vol.fromJSON(guestFiles());
  // The lock's directory, as systemd's RuntimeDirectory= or the first agent run leaves it; the lock file itself comes and goes.
  vol.mkdirSync('/run/eip-agent', { recursive: true });
});

describe('plan', () => {
  it('exits 2 with the diffs and runtime changes while changes are pending, 0 once apply made them', async () => {
    const kernel = new FakeKernel(freshKernel());
    const pending = await cli(['plan', ...META], kernel);
    expect(pending.code).toBe(EXIT.pending);
    expect(pending.err).toBe('');
    const lines = pending.out.split('\n');
    expect(lines.slice(0, 9)).toEqual([
      'Plan for target centos, root /',
      'Network at boot: legacy network service enabled; NetworkManager not running',
      '',
      'Files:',
      `  update    ${ETH0} (original saved as ${ETH0}.bak)`,
      `  create    ${SCRIPTS}/ifcfg-eth1`,
      `  create    ${SCRIPTS}/route-eth1`,
      `  create    ${SCRIPTS}/rule-eth1`,
      '  create    /etc/sysctl.d/99-zz-eip-agent.conf',
    ]);
    expect(lines).toEqual(
      expect.arrayContaining([
        `--- a${ETH0}`,
        `+++ b${ETH0}`,
        '-BOOTPROTO=dhcp',
        '+BOOTPROTO=static',
        '+IPADDR1=10.0.0.3',
        '--- /dev/null',
        `+++ b${SCRIPTS}/rule-eth1`,
        '+from 10.0.0.8/32 table 10001 priority 30001',
        '+from all table 254 suppress_prefixlength 0 priority 30000',
        '  + bring eth1 up',
        '  + rule from all table 254 suppress_prefixlength 0 priority 30000',
        '  + rule from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
        '  + rule from 10.0.0.8/32 table 10001 priority 30001',
        '  + rule from all fwmark 0x1000000/0xf000000 table 10001 priority 30001',
        '  + nftables table inet eip-agent: mark 0x1000000/0xf000000 on connections to 10.0.0.7, 10.0.0.8',
        '  + sysctl net.ipv4.conf.eth1.rp_filter 1 -> 2',
      ]),
    );
    expect(lines.at(-2)).toBe('23 change(s) pending; `eip-agent apply` makes them.');
    expect(kernel.callsOf('ip', '-batch', '-')).toEqual([]);

    const apply = await cli(['apply', ...META], kernel);
    expect(apply.err).toBe('');
    expect(apply.code).toBe(EXIT.ok);
    expect(apply.out).toContain(`wrote ${ETH0}\n`);
    expect(apply.out).toContain('Verified: all 22 checks passed.\n');

    const synced = await cli(['plan', ...META], kernel);
    expect(synced.code).toBe(EXIT.ok);
    expect(synced.out).toContain('\nRuntime:\n  in sync\n');
    expect(synced.out.endsWith('\nIn sync: nothing to do.\n')).toBe(true);
  });

  it('prints the plan as JSON with inSync', async () => {
    const kernel = new FakeKernel(freshKernel());
    const pending = await cli(['plan', '--json', ...META], kernel);
    expect(pending.code).toBe(EXIT.pending);
    const plan = JSON.parse(pending.out) as {
      inSync: boolean;
      runtimePlanned: boolean;
      files: { path: string; action: string; backupPath?: string }[];
      runtime: unknown[];
    };
    expect(plan.inSync).toBe(false);
    expect(plan.runtimePlanned).toBe(true);
    expect(plan.files.map((f) => [f.path, f.action, f.backupPath])).toEqual([
      [ETH0, 'update', `${ETH0}.bak`],
      [`${SCRIPTS}/ifcfg-eth1`, 'create', undefined],
      [`${SCRIPTS}/route-eth1`, 'create', undefined],
      [`${SCRIPTS}/rule-eth1`, 'create', undefined],
      ['/etc/sysctl.d/99-zz-eip-agent.conf', 'create', undefined],
    ]);
    expect(plan.runtime).toHaveLength(18);

    expect((await cli(['apply', ...META], kernel)).code).toBe(EXIT.ok);
    const synced = await cli(['plan', '--json', ...META], kernel);
    expect(synced.code).toBe(EXIT.ok);
    expect(JSON.parse(synced.out)).toMatchObject({ inSync: true, runtime: [], warnings: [] });
  });

  it('exits 3 and says so when verification fails after apply (everything rolled back)', async () => {
    const kernel = new FakeKernel(freshKernel());
    kernel.pingOk = false;
    const before = vol.toJSON();
    const run = await cli(['apply', ...META], kernel);
    expect(run.code).toBe(EXIT.notVerified);
    expect(run.err).toBe(
      'eip-agent: verify: verification failed after apply; every change of this run was rolled back (see the failed checks above)\n',
    );
    const { [STATE_PATH]: stateText, ...others } = vol.toJSON();
    expect(others).toEqual(before);
    // Only the state file is new: it owns nothing and remembers when to try this model again.
    expect(JSON.parse(stateText ?? 'null')).toEqual({
      ...emptyState(),
      failedModelHash: MANUAL_HASH,
      failedAttempts: 1,
      retryAfter: new Date(NOW + 30_000).toISOString(),
      lastApply: { at: NOW_ISO, modelHash: MANUAL_HASH, ok: false },
      lastError: {
        at: NOW_ISO,
        message:
          'verification failed (ping 10.0.0.1 from 10.0.0.2 (eth0); ping 10.0.0.1 from 10.0.0.3 (eth0); ping 10.0.0.1 from 10.0.0.7 (eth1); ping 10.0.0.1 from 10.0.0.8 (eth1)); rolled back',
      },
      counters: { applies: 0, verifyFailures: 1, rollbacks: 1, metadataErrors: 0 },
    });
  });
});

describe('plan with pending removals', () => {
  it('lists what the metadata no longer asks for as pending, in text and JSON', async () => {
    const kernel = new FakeKernel(freshKernel());
    expect((await cli(['apply', ...META], kernel)).code).toBe(EXIT.ok);
    seedTree(treeWithout8());

    const text = await cli(['plan', ...META], kernel);
    expect(text.err).toBe('');
    expect(text.out).toContain(
      [
        '',
        'Runtime:',
        '  in sync',
        '',
        'Pending removal (no longer in the metadata; removed when the next successful read agrees):',
        '  - remove 10.0.0.8/24 from eth1',
        '  - remove rule from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
        '  - remove rule from 10.0.0.8/32 table 10001 priority 30001',
        '  - stop marking connections to 10.0.0.8',
        '',
        '2 change(s) pending; `eip-agent apply` makes them.',
        '',
      ].join('\n'),
    );
    const json = await cli(['plan', '--json', ...META], kernel);
    expect(JSON.parse(json.out)).toMatchObject({
      runtime: [],
      pendingRemovals: [
        'remove 10.0.0.8/24 from eth1',
        'remove rule from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
        'remove rule from 10.0.0.8/32 table 10001 priority 30001',
        'stop marking connections to 10.0.0.8',
      ],
    });
  });

  it('marks removals with "-" once the second read confirms them', async () => {
    const kernel = new FakeKernel(freshKernel());
    expect((await cli(['apply', ...META], kernel)).code).toBe(EXIT.ok);
    seedTree(treeWithout8());
    expect((await cli(['apply', ...META], kernel)).code).toBe(EXIT.ok);
    const run = await cli(['plan', ...META], kernel);
    expect(run.code).toBe(EXIT.pending);
    expect(run.out).toContain(
      '\nRuntime:\n  - remove rule from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001 (no longer in the metadata)\n  - remove rule from 10.0.0.8/32 table 10001 priority 30001 (no longer in the metadata)\n  - remove 10.0.0.8/24 from eth1 (no longer in the metadata)\n  + nftables table inet eip-agent: mark 0x1000000/0xf000000 on connections to 10.0.0.7\n\n',
    );
    expect(run.out).not.toContain('Pending removal');
  });
});

describe('rollback', () => {
  const UNDO_LAST = [
    'nftables table inet eip-agent put back',
    'rule del from all fwmark 0x1000000/0xf000000 table 10001 priority 30001',
    'rule del from 10.0.0.8/32 table 10001 priority 30001',
    'rule del from 10.0.0.7/32 table 10001 priority 30001',
    'rule del from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001 priority 29001',
    'rule del from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
    'rule del from 10.0.0.7/32 to 10.0.0.0/24 table 10001 priority 29001',
    'rule del from all table 254 suppress_prefixlength 0 priority 30000',
    'route del default via 10.0.0.1 dev eth1 table 10001',
    'route del 10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001',
    'address del 10.0.0.8/24 dev eth1',
    'address del 10.0.0.7/24 dev eth1',
    'address del 10.0.0.3/24 dev eth0',
    'link set dev eth1 down',
  ];
  const UNDO_ORIGINAL = [
    'nftables table inet eip-agent deleted',
    ...RULE_UNDO,
    'route del 10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001 proto 234',
    'route del default via 10.0.0.1 dev eth1 table 10001 proto 234',
    'address del 10.0.0.3/24 dev eth0',
    'address del 10.0.0.8/24 dev eth1',
    'address del 10.0.0.7/24 dev eth1',
  ];
  const SYSCTLS = [
    'sysctl net.ipv4.conf.default.rp_filter=1',
    'sysctl net.ipv4.conf.eth1.rp_filter=1',
    'sysctl net.ipv4.conf.eth0.promote_secondaries=0',
    'sysctl net.ipv4.conf.eth1.promote_secondaries=0',
  ];
  const FILES = [
    `restored ${ETH0}`,
    `removed ${ETH0}.bak`,
    `removed ${SCRIPTS}/ifcfg-eth1`,
    `removed ${SCRIPTS}/route-eth1`,
    `removed ${SCRIPTS}/rule-eth1`,
    'removed /etc/sysctl.d/99-zz-eip-agent.conf',
  ];

  it.each<[string, string[], string[], string]>([
    ['rollback', [], [...UNDO_LAST, ...SYSCTLS], 'Rolled back the last apply.'],
    [
      'rollback --original',
      ['--original'],
      [...UNDO_ORIGINAL, ...SYSCTLS],
      'Restored the state from before eip-agent first changed this guest.',
    ],
  ])(
    '%s after the first apply: exit 0, prints every undo, the guest files and kernel as before',
    async (_name, extra, runtime, verdict) => {
      const kernel = new FakeKernel(freshKernel());
      const before = vol.toJSON();
      expect((await cli(['apply', ...META], kernel)).code).toBe(EXIT.ok);

      const run = await cli(['rollback', ...extra], kernel);

      expect(run).toEqual({ code: EXIT.ok, err: '', out: [...runtime, ...FILES, verdict, ''].join('\n') });
      // Only the state file remains of the apply: the backup it made is gone with the rest.
      const { [STATE_PATH]: _state, ...after } = vol.toJSON();
      expect(after).toEqual(before);
      const fresh = freshKernel();
      // `rollback` brings eth1 back down; `--original` only removes what the agent owns.
      if (extra.length > 0) fresh.links = fresh.links.map((l) => (l.ifname === 'eth1' ? { ...l, up: true } : l));
      expect(kernel.state).toEqual(fresh);
    },
  );

  it('prints the result as JSON', async () => {
    const kernel = new FakeKernel(freshKernel());
    await cli(['apply', '--no-runtime', ...META], kernel);
    const run = await cli(['rollback', '--json'], kernel);
    expect(run.code).toBe(EXIT.ok);
    expect(JSON.parse(run.out)).toEqual({ files: FILES, runtime: [], warnings: [], complete: true });
  });

  it('after a removal made in two reads, puts back the file and the live state together; plan then is not in sync', async () => {
    const kernel = new FakeKernel(freshKernel());
    expect((await cli(['apply', ...META], kernel)).code).toBe(EXIT.ok);
    const withEight = String(vol.readFileSync(`${SCRIPTS}/ifcfg-eth1`, 'utf8'));
    seedTree(treeWithout8());
    expect((await cli(['apply', ...META], kernel)).code).toBe(EXIT.ok); // rewrites ifcfg-eth1, 10.0.0.8 pending
    expect(String(vol.readFileSync(`${SCRIPTS}/ifcfg-eth1`, 'utf8'))).not.toContain('10.0.0.8');
    expect((await cli(['apply', ...META], kernel)).code).toBe(EXIT.ok); // the second read removes it live
    const eth1 = () => kernel.state.links.find((l) => l.ifname === 'eth1')?.addresses.map((a) => a.ip);
    expect(eth1()).toEqual(['10.0.0.7']);

    const run = await cli(['rollback'], kernel);

    expect(run.code).toBe(EXIT.ok);
    expect(run.out).toContain(`restored ${SCRIPTS}/ifcfg-eth1\n`);
    expect(eth1()).toEqual(['10.0.0.7', '10.0.0.8']);
    // What a reboot reads says the same as the live state.
    expect(String(vol.readFileSync(`${SCRIPTS}/ifcfg-eth1`, 'utf8'))).toBe(withEight);
    const plan = await cli(['plan', ...META], kernel);
    expect(plan.code).toBe(EXIT.pending);
    expect(plan.out).not.toContain('In sync');
    expect(plan.out).toContain('  - remove 10.0.0.8/24 from eth1\n');
  });

  it.each<[string, string, number, string]>([
    ['a valid config file', '{"routing": "policy", "ignoreNics": []}', EXIT.ok, ''],
    [
      'a config file with an unknown key',
      '{"rooting": "policy"}',
      EXIT.error,
      'eip-agent: config: /etc/eip-agent/custom.json: unknown setting "rooting"',
    ],
  ])('takes --config like every command: %s', async (_name, content, code, err) => {
    const kernel = new FakeKernel(freshKernel());
    expect((await cli(['apply', ...META], kernel)).code).toBe(EXIT.ok);
    vol.mkdirSync('/etc/eip-agent', { recursive: true });
    vol.writeFileSync('/etc/eip-agent/custom.json', content);
    const state = structuredClone(kernel.state);
    const run = await cli(['rollback', '--config', '/etc/eip-agent/custom.json'], kernel);
    expect(run.code).toBe(code);
    if (code !== EXIT.ok) {
      expect(run.err.split('\n')[0]).toContain(err);
      expect(kernel.state).toEqual(state);
    } else expect(run.out).toContain('Rolled back the last apply.');
  });

  it.each<[string, string[], boolean, boolean, string]>([
    [
      'without privileges when there is runtime to undo',
      ['rollback'],
      true,
      false,
      'eip-agent: host: rolling back addresses, rules and sysctls needs root (CAP_NET_ADMIN)\n',
    ],
    [
      '--original without privileges',
      ['rollback', '--original'],
      true,
      false,
      'eip-agent: host: rolling back addresses, rules and sysctls needs root (CAP_NET_ADMIN)\n',
    ],
    [
      'with nothing applied',
      ['rollback'],
      false,
      true,
      'eip-agent: apply: nothing to roll back: /var/lib/eip-agent/state.json records no apply\n',
    ],
    [
      'with a relative --root',
      ['rollback', '--root', 'srv/guest'],
      true,
      true,
      'eip-agent: config: --root "srv/guest" must be an absolute path\n',
    ],
  ])('fails %s: exit 1, one line, nothing changed', async (_name, argv, applyFirst, privileged, message) => {
    const kernel = new FakeKernel(freshKernel());
    if (applyFirst) expect((await cli(['apply', ...META], kernel)).code).toBe(EXIT.ok);
    const before = vol.toJSON();
    const state = structuredClone(kernel.state);
    kernel.calls.length = 0;

    const run = await cli(argv, kernel, privileged);

    expectOneLineFailure(run);
    expect(run.err).toBe(message);
    expect(vol.toJSON()).toEqual(before);
    expect(kernel.state).toEqual(state);
    expect(kernel.callsOf('ip', '-force', '-batch', '-')).toEqual([]);
  });
});

describe('render', () => {
  it('writes the rendered files under --out and nothing else', async () => {
    const before = vol.toJSON();
    const run = await cli(['render', ...META, '--out', '/out']);
    expect(run.code).toBe(EXIT.ok);
    const rendered = Object.fromEntries(
      Object.entries(POLICY_FILES).map(([path, content]) => [`/out${path}`, content]),
    );
    expect(run.out).toBe(
      Object.keys(rendered)
        .map((p) => `${p}\n`)
        .join(''),
    );
    expect(vol.toJSON()).toEqual({ ...before, ...rendered });
    expect(run.err).toBe(
      [
        'eip-agent: warning: `ip` is not available (install iproute2): interface names are previewed and the runtime is not compared',
        'eip-agent: warning: NIC 52:54:00:8A:7A:64 is not present on this system; previewing it as eth0 (the OS may name it differently; its runtime changes are not listed)',
        'eip-agent: warning: NIC 20:90:6F:F7:93:2E is not present on this system; previewing it as eth1 (the OS may name it differently; its runtime changes are not listed)',
        '',
      ].join('\n'),
    );
  });

  it('renders the same files when the NICs are read from the system, and starts no change', async () => {
    const kernel = new FakeKernel(freshKernel());
    const before = vol.toJSON();
    const run = await cli(['render', ...META, '--out', '/out'], kernel);
    expect(run.code).toBe(EXIT.ok);
    expect(run.err).toBe('');
    expect(vol.toJSON()).toEqual({
      ...before,
      ...Object.fromEntries(Object.entries(POLICY_FILES).map(([p, c]) => [`/out${p}`, c])),
    });
    expect(vol.readFileSync(ETH0, 'utf8')).toBe(CLOUD_INIT_ETH0);
    // Reads only: the live state, and (no legacy network service under /out) whether NetworkManager runs, to pick the target.
    expect(kernel.commandLines()).toEqual(['nmcli -t -f RUNNING general', 'ip -j -d -batch -']);
  });
});

const NIC0 = 'network/interfaces/macs/52:54:00:8A:7A:64';
const NIC1 = 'network/interfaces/macs/20:90:6F:F7:93:2E';
const IP8 = `${NIC1}/local-ipv4s/10.0.0.8`;

/** Every leaf the agent reads, with a valid value to build payloads from. */
const FIELDS: [string, string][] = [
  ['instance-id', 'ins-lab00001'],
  ['mac', '52:54:00:8A:7A:64'],
  ['local-ipv4', '10.0.0.2'],
  ['placement/region', 'ap-example-1'],
  [`${NIC1}/primary-local-ipv4`, '10.0.0.7'],
  [`${NIC1}/vpc-id`, 'vpc-lab00001'],
  [`${NIC0}/subnet-id`, 'subnet-lab0001'],
  [`${IP8}/gateway`, '10.0.0.1'],
  [`${IP8}/subnet-mask`, '255.255.255.0'],
  [`${IP8}/public-ipv4`, '203.0.113.13'],
  [`${IP8}/public-ipv4-mode`, 'NAT'],
];

/** Shell payloads, each appended to a valid value. */
const PAYLOADS = ['$(reboot)', '\nreboot', '`reboot`', '"; reboot; "', "' ; reboot #", '\r\nDEVICE=lo', ' $IFS'];

const INJECTIONS = FIELDS.flatMap(([path, valid]) =>
  PAYLOADS.map((payload): [string, string, string] => [path, JSON.stringify(payload), `${valid}${payload}`]),
);

describe('bad input', () => {
  const COMMANDS: string[][] = [['plan'], ['apply'], ['verify'], ['render', '--out', '/out']];
  const CASES: [string, string[], (() => void) | undefined][] = [
    ['a missing metadata file', ['--metadata-file', '/missing.json'], undefined],
    ['metadata that is not JSON', META, () => vol.writeFileSync('/meta.json', '{"mac": ')],
    [
      'a metadata value with $(reboot)',
      META,
      () => seedTree(edit(manualTree(), `${IP8}/gateway`, '10.0.0.1$(reboot)')),
    ],
    [
      'a metadata value with a newline',
      META,
      () => seedTree(edit(manualTree(), `${NIC0}/subnet-id`, 'subnet-lab0001\nDEVICE=lo')),
    ],
    ['a metadata value with a backtick', META, () => seedTree(edit(manualTree(), 'instance-id', 'ins-`reboot`'))],
    ['a metadata value with quotes', META, () => seedTree(edit(manualTree(), 'placement/region', 'ap"example\'1'))],
    [
      'a NIC listed under a MAC with $(reboot)',
      META,
      () =>
        seedTree(rename(manualTree(), 'network/interfaces/macs', '20:90:6F:F7:93:2E', '20:90:6F:F7:93:2E$(reboot)')),
    ],
    [
      'a NIC listed under a MAC with a newline',
      META,
      () =>
        seedTree(rename(manualTree(), 'network/interfaces/macs', '20:90:6F:F7:93:2E', '20:90:6F:F7:93:2E\nDEVICE=lo')),
    ],
    [
      'an address listed under a name with a backtick',
      META,
      () => seedTree(rename(manualTree(), `${NIC1}/local-ipv4s`, '10.0.0.8', '10.0.0.8`reboot`')),
    ],
    ['an unknown --routing', [...META, '--routing', 'loose'], undefined],
    ['an unknown --connection-marks', [...META, '--connection-marks', 'maybe'], undefined],
    [
      'an unknown connectionMarks in the config',
      [...META, '--config', '/cfg.json'],
      () => vol.writeFileSync('/cfg.json', '{"connectionMarks": "yes"}'),
    ],
    ['an unknown --target', [...META, '--target', 'freebsd'], undefined],
    ['a relative --root', [...META, '--root', 'srv/guest'], undefined],
    [
      'an unknown config key',
      [...META, '--config', '/cfg.json'],
      () => vol.writeFileSync('/cfg.json', '{"routing": "policy", "colour": "red"}'),
    ],
    [
      'a config file that is not JSON',
      [...META, '--config', '/cfg.json'],
      () => vol.writeFileSync('/cfg.json', '{routing: policy}'),
    ],
    ['a missing config file', [...META, '--config', '/cfg.json'], undefined],
    [
      'a config value out of range',
      [...META, '--config', '/cfg.json'],
      () => vol.writeFileSync('/cfg.json', '{"metadataRetries": 11}'),
    ],
    ['a non-http metadata URL', ['--metadata-url', 'file:///etc/passwd'], undefined],
    ['a metadata URL with a newline', ['--metadata-url', 'http://169.254.0.23/\nx'], undefined],
    ['an unknown option', [...META, '--dry-run'], undefined],
  ];
  const TABLE = COMMANDS.flatMap((command) =>
    CASES.map(([name, args, setup]): [string, string, string[], (() => void) | undefined] => [
      command.join(' '),
      name,
      [...command, ...args],
      setup,
    ]),
  );

  it.each(TABLE)('%s with %s: exit 1, one line, nothing written', async (_command, _name, argv, setup) => {
    setup?.();
    const before = vol.toJSON();
    const kernel = new FakeKernel(freshKernel());
    const run = await cli(argv, kernel);
    expectOneLineFailure(run);
    expect(vol.toJSON()).toEqual(before);
    expect(kernel.callsOf('ip', '-batch', '-')).toEqual([]);
    expect(kernel.callsOf('nft', '-f', '-')).toEqual([]);
  });

  it.each([
    ['--connection-marks off', ['--connection-marks', 'off'], undefined],
    [
      '"connectionMarks": "off" in the config',
      ['--config', '/cfg.json'],
      () => vol.writeFileSync('/cfg.json', '{"connectionMarks": "off"}'),
    ],
  ])('apply with %s: no mark rule, no nftables table, verified', async (_name, args, setup) => {
    setup?.();
    const kernel = new FakeKernel(freshKernel());
    const run = await cli(['apply', ...META, ...args], kernel);
    expect(run.code, run.err).toBe(EXIT.ok);
    expect(run.out).not.toContain('fwmark');
    expect(kernel.state.rules.filter((r) => r.fwmark !== undefined)).toEqual([]);
    expect(kernel.callsOf('nft')).toEqual([]);
    expect(kernel.nftTable).toBeNull();
    expect(String(vol.readFileSync(`${SCRIPTS}/rule-eth1`, 'utf8'))).not.toContain('fwmark');
  });

  // Product bug: the JSON shape check prints key names raw (src/metadata/shape.ts), so a key with a newline splits the message.
  it('keeps a bad metadata key on one line', async () => {
    seedTree({ ...manualTree(), 'x\nDEVICE=lo': 1 });
    const before = vol.toJSON();
    const run = await cli(['plan', ...META], new FakeKernel(freshKernel()));
    expectOneLineFailure(run);
    expect(run.err).toContain('expected a string or an object, got number (in /meta.json)');
    expect(vol.toJSON()).toEqual(before);
  });

  it.each([
    [
      'a missing metadata file',
      ['plan', '--metadata-file', '/missing.json'],
      'eip-agent: metadata: metadata file /missing.json: not found\n',
    ],
    [
      'a relative --root',
      ['plan', ...META, '--root', 'srv/guest'],
      'eip-agent: config: --root "srv/guest" must be an absolute path\n',
    ],
    [
      'a relative --out',
      ['render', ...META, '--out', 'out'],
      'eip-agent: config: --out "out" must be an absolute path\n',
    ],
    [
      'a non-http metadata URL',
      ['plan', '--metadata-url', 'file:///etc/passwd'],
      'eip-agent: config: --metadata-url: "file:///etc/passwd": only http:// is supported (the metadata service is plain HTTP)\n',
    ],
    [
      'an unknown --routing',
      ['plan', ...META, '--routing', 'loose'],
      'eip-agent: config: --routing "loose": expected one of policy, rp-filter\n',
    ],
    [
      'an unknown option',
      ['plan', ...META, '--dry-run'],
      'eip-agent: config: unknown option --dry-run for plan (see eip-agent plan --help)\n',
    ],
    [
      'an unknown command',
      ['frobnicate'],
      'eip-agent: config: unknown command "frobnicate": name a command (see --help): plan, apply, render, verify, rollback, status, run, install, uninstall, metadata serve|dump, sandbox up|run|change|status|down\n',
    ],
    [
      'no command',
      [],
      'eip-agent: config: name a command (see --help): plan, apply, render, verify, rollback, status, run, install, uninstall, metadata serve|dump, sandbox up|run|change|status|down\n',
    ],
    [
      'render without --out',
      ['render', ...META],
      'eip-agent: config: render needs --out: output directory (absolute)\n',
    ],
    [
      'a missing fixture for metadata serve',
      ['metadata', 'serve', '--fixture', '/nope.json'],
      'eip-agent: config: fixture /nope.json not found\n',
    ],
    [
      'metadata serve with a fixture that is not an object',
      ['metadata', 'serve', '--fixture', '/meta.json'],
      'eip-agent: config: fixture /meta.json: expected a JSON object\n',
    ],
  ])('says exactly what is wrong for %s', async (name, argv, message) => {
    if (name.startsWith('metadata serve with')) vol.writeFileSync('/meta.json', '[]');
    const before = vol.toJSON();
    const run = await cli(argv);
    expectOneLineFailure(run);
    expect(run.err).toBe(message);
    expect(vol.toJSON()).toEqual(before);
  });

  it('refuses an unknown metadata subcommand instead of serving', async () => {
    const run = await cli(['metadata', 'bogus', '--fixture', '/nope.json']);
    expectOneLineFailure(run);
    expect(run.err).toMatch(/^eip-agent: config: .*bogus/u);
  });

  it('names the config file and the unknown key', async () => {
    vol.writeFileSync('/cfg.json', '{"routing": "policy", "colour": "red"}');
    const run = await cli(['plan', ...META, '--config', '/cfg.json']);
    expect(run.err).toBe(
      'eip-agent: config: /cfg.json: unknown setting "colour" (known: metadataUrl, routing, connectionMarks, cloudInit, target, reload, windowsFlavor, metadataTimeoutMs, metadataConcurrency, metadataRetries, metadataMaxBytes, interval, metricsPort, ignoreNics, metricsTextfile)\n',
    );
  });
});

describe('injection end to end', () => {
  it.each(INJECTIONS)('render refuses %s with %s and writes nothing', async (path, _payload, value) => {
    seedTree(edit(manualTree(), path, value));
    const before = vol.toJSON();
    const run = await cli(['render', ...META, '--out', '/out']);
    expectOneLineFailure(run);
    expect(run.err.startsWith(`eip-agent: validation: ${path}: ${JSON.stringify(value)} `)).toBe(true);
    expect(vol.toJSON()).toEqual(before);
  });
});

describe('options across targets', () => {
  it('refuses --reload with the Windows target, in one line', async () => {
    const run = await cli(['apply', ...META, '--target', 'windows', '--reload', 'network']);
    expect(run).toMatchObject({
      code: EXIT.error,
      err: 'eip-agent: config: reload network restarts a Linux network service: it does not apply to target windows\n',
    });
  });

  it('takes the Windows flavor from the config file', async () => {
    vol.writeFileSync('/cfg.json', '{"windowsFlavor": "netsh"}');
    const run = await cli(['render', ...META, '--target', 'windows', '--config', '/cfg.json', '--out', '/out']);
    expect(run.code, run.err).toBe(EXIT.ok);
    expect(Object.keys(vol.toJSON()).filter((p) => p.startsWith('/out/'))).toEqual(['/out/eip-agent.netsh.ps1']);
  });
});
