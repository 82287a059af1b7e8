import { beforeEach, describe, expect, it } from 'vitest';
import { planChanges } from '../../src/plan/plan.js';
import { marksScript } from '../../src/targets/linux/marks.js';
import type { AgentState } from '../../src/plan/record.js';
import { STATE_PATH, emptyState } from '../../src/plan/record.js';
import { AgentError, ApplyError, HostError } from '../../src/errors.js';
import type { Host, HostFs } from '../../src/host/host.js';
import { applyAndVerify, applyModel, applyUnlessFailed, makePlan, verifyOnly } from '../../src/pipeline.js';
import type { KernelState } from '../helpers/fake-kernel.js';
import { FakeKernel, readSysctl } from '../helpers/fake-kernel.js';
import { createTestHost, vol } from '../helpers/host.js';
import {
  MANUAL_MARKS,
  MANUAL_NFT_TABLE,
  CLOUD_INIT_ETH0,
  ETH0_META,
  FRESH_BATCH,
  FRESH_UNDO,
  MAC1,
  MANUAL_HASH,
  NOW,
  NOW_ISO,
  POLICY_FILES,
  SCRIPTS,
  freshKernel,
  freshOriginals,
  guestFiles,
  manualOwned,
  manualState,
  GUEST_OPTIONS,
} from '../helpers/manual-guest.js';

const OPTIONS = GUEST_OPTIONS;

const ETH0 = `${SCRIPTS}/ifcfg-eth0`;
const WRITTEN = Object.keys(POLICY_FILES);

/** The inverse of FRESH_BATCH's first `n` lines, last first, as `ip -force -batch -` input. */
function undoScript(n: number): string {
  return `${FRESH_UNDO.slice(0, n).reverse().join('\n')}\n`;
}

interface Guest {
  kernel: FakeKernel;
  host: Host;
  /** Paths passed to fs.writeAtomic, in order. */
  writes: string[];
}

function guest(state: KernelState = freshKernel(), privileged = true, unwritable?: string): Guest {
  const kernel = new FakeKernel(state);
  const base = createTestHost().fs;
  const writes: string[] = [];
  const fs: HostFs = {
    ...base,
    async writeAtomic(path, content, mode) {
      writes.push(path);
      if (path === unwritable)
        throw Object.assign(new Error(`EACCES: permission denied, open '${path}'`), { code: 'EACCES' });
      await base.writeAtomic(path, content, mode);
    },
  };
  return {
    kernel,
    writes,
    host: createTestHost({ fs, run: kernel.run, isPrivileged: () => privileged, now: () => NOW }),
  };
}

function batches(kernel: FakeKernel): string[] {
  return kernel.callsOf('ip', '-batch', '-').map((c) => c.input ?? '');
}

function sysctlWrites(kernel: FakeKernel): string[] {
  return kernel.callsOf('sysctl', '-q', '-w').map((c) => c.argv.slice(3).join(' '));
}

function files(): Record<string, string | null> {
  return vol.toJSON();
}

/** Every file except the state file, and the state file parsed (undefined when absent). */
function splitState(): { others: Record<string, string | null>; state: AgentState | undefined } {
  const { [STATE_PATH]: text, ...others } = files();
  return { others, state: typeof text === 'string' ? (JSON.parse(text) as AgentState) : undefined };
}

/** Permission bits of the state file. */
function stateMode(): number {
  return Number(vol.statSync(STATE_PATH).mode) & 0o777;
}

/** lastError of a fresh apply whose pings all failed. */
/** The first retry of a model that failed verification: 30 s after NOW. */
const RETRY_AT = new Date(Date.parse(NOW_ISO) + 30_000).toISOString();
const VERIFY_FAILED =
  'verification failed (ping 10.0.0.1 from 10.0.0.2 (eth0); ping 10.0.0.1 from 10.0.0.3 (eth0); ping 10.0.0.1 from 10.0.0.7 (eth1); ping 10.0.0.1 from 10.0.0.8 (eth1)); rolled back';

beforeEach(() => {
  vol.reset();
  vol.fromJSON(guestFiles());
});

describe('applyAndVerify on a fresh guest', () => {
  it('changes the runtime in one ip -batch and one sysctl -w, writes the files and backs up the cloud-init ifcfg-eth0', async () => {
    const { kernel, host, writes } = guest();
    const result = await applyAndVerify(host, OPTIONS);

    expect(result.rolledBack).toBe(false);
    expect(result.report?.ok).toBe(true);
    expect(batches(kernel)).toEqual([`${FRESH_BATCH.join('\n')}\n`]);
    expect(sysctlWrites(kernel)).toEqual([SYSCTLS_SET]);
    expect(kernel.commandLines().filter((l) => !l.startsWith('ping '))).toEqual([
      'ip -j -d -batch -',
      'nft list table inet eip-agent',
      'ip -batch -',
      'nft -f -',
      `sysctl -q -w ${SYSCTLS_SET}`,
      'ip -j -d -batch -',
      'nft list table inet eip-agent',
    ]);
    expect(kernel.callsOf('nft', '-f', '-').map((c) => c.input)).toEqual([marksScript(MANUAL_MARKS)]);
    expect(
      kernel
        .commandLines()
        .filter((l) => l.startsWith('ping '))
        .sort(),
    ).toEqual([
      'ping -n -q -c 1 -W 1 -I 10.0.0.2 10.0.0.1',
      'ping -n -q -c 1 -W 1 -I 10.0.0.3 10.0.0.1',
      'ping -n -q -c 1 -W 1 -I 10.0.0.7 10.0.0.1',
      'ping -n -q -c 1 -W 1 -I 10.0.0.8 10.0.0.1',
    ]);

    expect(result.outcome.filesWritten).toEqual([`${ETH0}.bak`, ...WRITTEN]);
    expect(result.outcome.runtimeApplied).toEqual([
      'bring eth1 up',
      'add 10.0.0.3/24 to eth0',
      'add 10.0.0.7/24 to eth1',
      'add 10.0.0.8/24 to eth1',
      'route 10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001',
      'route default via 10.0.0.1 dev eth1 table 10001',
      'rule from all table 254 suppress_prefixlength 0 priority 30000',
      'rule from 10.0.0.7/32 to 10.0.0.0/24 table 10001 priority 29001',
      'rule from 10.0.0.8/32 to 10.0.0.0/24 table 10001 priority 29001',
      'rule from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001 priority 29001',
      'rule from 10.0.0.7/32 table 10001 priority 30001',
      'rule from 10.0.0.8/32 table 10001 priority 30001',
      'rule from all fwmark 0x1000000/0xf000000 table 10001 priority 30001',
      'nftables table inet eip-agent: mark 0x1000000/0xf000000 on connections to 10.0.0.7, 10.0.0.8',
      'sysctl net.ipv4.conf.default.rp_filter 1 -> 2',
      'sysctl net.ipv4.conf.eth1.rp_filter 1 -> 2',
      'sysctl net.ipv4.conf.eth0.promote_secondaries 0 -> 1',
      'sysctl net.ipv4.conf.eth1.promote_secondaries 0 -> 1',
    ]);
    // The state file first records what the apply may add (in case the agent is killed half-way), then what it did.
    expect(writes).toEqual([STATE_PATH, `${ETH0}.bak`, ...WRITTEN, STATE_PATH]);
    const { others, state } = splitState();
    expect(others).toEqual({ ...guestFiles(), ...POLICY_FILES, [`${ETH0}.bak`]: CLOUD_INIT_ETH0, ...sysctlAfter() });
    expect(state).toEqual(manualState());
    expect(stateMode()).toBe(0o600);
  });

  it('leaves a kernel state in which every live check passes', async () => {
    const { kernel, host } = guest();
    await applyAndVerify(host, OPTIONS);
    const eth1 = kernel.state.links.find((l) => l.ifname === 'eth1');
    expect(eth1).toEqual({
      ifname: 'eth1',
      mac: MAC1,
      up: true,
      addresses: [
        { ip: '10.0.0.7', prefixLength: 24 },
        { ip: '10.0.0.8', prefixLength: 24 },
      ],
    });
    expect(kernel.state.rules.filter((r) => r.priority === 30001)).toEqual([
      { priority: 30001, from: '10.0.0.7/32', table: '10001' },
      { priority: 30001, from: '10.0.0.8/32', table: '10001' },
      { priority: 30001, from: 'all', fwmark: '0x1000000/0xf000000', table: '10001' },
    ]);
    expect(kernel.nftTable).toBe(MANUAL_NFT_TABLE);
    expect(kernel.state.routes.filter((r) => r.table === '10001')).toEqual([
      { table: '10001', dst: '10.0.0.0/24', dev: 'eth1', protocol: '234', prefsrc: '10.0.0.7' },
      { table: '10001', dst: 'default', dev: 'eth1', gateway: '10.0.0.1', protocol: '234' },
    ]);
    const { report } = await verifyOnly(host, OPTIONS);
    expect(report.checks.map((c) => `${c.ok ? 'ok' : 'FAIL'} ${c.kind} ${c.subject}`)).toEqual([
      ...WRITTEN.map((p) => `ok file ${p}`),
      'ok link eth0',
      'ok link eth1',
      'ok address 10.0.0.2/24 eth0',
      'ok address 10.0.0.3/24 eth0',
      'ok address 10.0.0.7/24 eth1',
      'ok address 10.0.0.8/24 eth1',
      'ok rule from all lookup main suppress_prefixlength 0 priority 30000',
      'ok rule from 10.0.0.7 to 10.0.0.0/24 table 10001',
      'ok rule from 10.0.0.8 to 10.0.0.0/24 table 10001',
      'ok rule from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001',
      'ok rule from 10.0.0.7 table 10001',
      'ok rule from 10.0.0.8 table 10001',
      'ok rule from all fwmark 0x1000000/0xf000000 table 10001',
      'ok route 10.0.0.0/24 dev eth1 table 10001',
      'ok route default via 10.0.0.1 dev eth1 table 10001',
      'ok route default via 10.0.0.1 dev eth0 (main table)',
      'ok rp_filter eth1',
      'ok marks connection marks eth1 (10.0.0.7, 10.0.0.8)',
      'ok ping 10.0.0.1 from 10.0.0.2 (eth0)',
      'ok ping 10.0.0.1 from 10.0.0.3 (eth0)',
      'ok ping 10.0.0.1 from 10.0.0.7 (eth1)',
      'ok ping 10.0.0.1 from 10.0.0.8 (eth1)',
    ]);
  });

  it('collects garbage after each stage where the host can: the read, the change, the verification', async () => {
    const { kernel, host } = guest();
    const steps: string[] = [];
    const watched: Host = {
      ...host,
      run: (argv, options) => {
        if (argv[0] !== 'ping') steps.push(argv.join(' '));
        return kernel.run(argv, options);
      },
      collectGarbage: () => void steps.push('collect'),
    };
    await applyAndVerify(watched, OPTIONS);
    expect(steps).toEqual([
      'collect',
      'ip -j -d -batch -',
      'nft list table inet eip-agent',
      'ip -batch -',
      'nft -f -',
      `sysctl -q -w ${SYSCTLS_SET}`,
      'collect',
      'ip -j -d -batch -',
      'nft list table inet eip-agent',
      'collect',
    ]);
  });

  it('does nothing the second time: no ip -batch, no sysctl -w, no file written', async () => {
    const { kernel, host, writes } = guest();
    await applyAndVerify(host, OPTIONS);
    const before = files();
    const state = structuredClone(kernel.state);
    kernel.calls.length = 0;
    writes.length = 0;

    expect(planChanges((await makePlan(host, OPTIONS)).plan)).toBe(false);
    const second = await applyAndVerify(host, OPTIONS);

    expect(second.rolledBack).toBe(false);
    expect(second.report?.ok).toBe(true);
    expect(second.outcome.filesWritten).toEqual([]);
    expect(second.outcome.runtimeApplied).toEqual([]);
    expect(batches(kernel)).toEqual([]);
    expect(kernel.callsOf('ip', '-force')).toEqual([]);
    expect(sysctlWrites(kernel)).toEqual([]);
    expect(writes).toEqual([]);
    expect(files()).toEqual(before);
    expect(kernel.state).toEqual(state);
  });

  it('verifies as not in sync before apply, naming what is missing', async () => {
    const { host } = guest();
    const { report } = await verifyOnly(host, OPTIONS);
    expect(report.ok).toBe(false);
    expect(
      report.checks.filter((c) => !c.ok && c.kind !== 'ping').map((c) => `${c.kind} ${c.subject}: ${c.detail}`),
    ).toEqual([
      `file ${ETH0}: differs from what the metadata asks for`,
      `file ${SCRIPTS}/ifcfg-eth1: missing`,
      `file ${SCRIPTS}/route-eth1: missing`,
      `file ${SCRIPTS}/rule-eth1: missing`,
      'file /etc/sysctl.d/99-zz-eip-agent.conf: missing',
      'link eth1: interface is down',
      'address 10.0.0.3/24 eth0: missing from eth0',
      'address 10.0.0.7/24 eth1: missing from eth1',
      'address 10.0.0.8/24 eth1: missing from eth1',
      'rule from all lookup main suppress_prefixlength 0 priority 30000: missing',
      'rule from 10.0.0.7 to 10.0.0.0/24 table 10001: missing',
      'rule from 10.0.0.8 to 10.0.0.0/24 table 10001: missing',
      'rule from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10001: missing',
      'rule from 10.0.0.7 table 10001: missing',
      'rule from 10.0.0.8 table 10001: missing',
      'rule from all fwmark 0x1000000/0xf000000 table 10001: missing',
      'route 10.0.0.0/24 dev eth1 table 10001: missing',
      'route default via 10.0.0.1 dev eth1 table 10001: missing',
      'rp_filter eth1: effective 1 (all 1, eth1 1), expected 2',
      'marks connection marks eth1 (10.0.0.7, 10.0.0.8): nftables table inet eip-agent: missing',
    ]);
  });
});

function sysctlAfter(): Record<string, string> {
  return {
    '/proc/sys/net/ipv4/conf/default/rp_filter': '2\n',
    '/proc/sys/net/ipv4/conf/eth1/rp_filter': '2\n',
    '/proc/sys/net/ipv4/conf/eth0/promote_secondaries': '1\n',
    '/proc/sys/net/ipv4/conf/eth1/promote_secondaries': '1\n',
  };
}

/** The one `sysctl -w` of the first apply, and the one that undoes it. */
const SYSCTLS_SET =
  'net.ipv4.conf.default.rp_filter=2 net.ipv4.conf.eth1.rp_filter=2 net.ipv4.conf.eth0.promote_secondaries=1 net.ipv4.conf.eth1.promote_secondaries=1';
const SYSCTLS_UNDO =
  'net.ipv4.conf.default.rp_filter=1 net.ipv4.conf.eth1.rp_filter=1 net.ipv4.conf.eth0.promote_secondaries=0 net.ipv4.conf.eth1.promote_secondaries=0';

describe('applyAndVerify when something fails', () => {
  it.each([1, 2, 5, 6, 8])('undoes lines 1..N-1 and every file when batch line %i fails', async (n) => {
    const { kernel, host } = guest();
    const failing = FRESH_BATCH[n - 1] ?? '';
    kernel.failLines.add(failing);
    const before = files();
    const state = structuredClone(kernel.state);

    await expect(applyAndVerify(host, OPTIONS)).rejects.toThrow(
      new ApplyError(`\`ip ${failing}\` failed: Error: injected failure.; runtime changes undone`),
    );

    const undo = kernel.callsOf('ip', '-force', '-batch', '-').map((c) => c.input);
    expect(undo).toEqual(n === 1 ? [] : [undoScript(n - 1)]);
    expect(batches(kernel)).toEqual([`${FRESH_BATCH.join('\n')}\n`]);
    // Undoing address additions sets promote_secondaries for the time of the deletions, then puts it back.
    const guard = [
      'net.ipv4.conf.eth1.promote_secondaries=1 net.ipv4.conf.eth0.promote_secondaries=1',
      'net.ipv4.conf.eth1.promote_secondaries=0 net.ipv4.conf.eth0.promote_secondaries=0',
    ];
    expect(sysctlWrites(kernel)).toEqual(n > 3 ? guard : []);
    expect(kernel.state).toEqual(state);
    expect(files()).toEqual(before);
  });

  it("reports the apply's own error when putting the state directory back fails too (a read-only StateDirectory)", async () => {
    const { kernel, host } = guest();
    kernel.failLines.add(FRESH_BATCH[2] ?? '');
    const rofs = {
      ...host,
      fs: {
        ...host.fs,
        removeEmptyDir: async (path: string) =>
          Promise.reject(Object.assign(new Error(`EROFS: read-only file system, rmdir '${path}'`), { code: 'EROFS' })),
      },
    };
    await expect(applyAndVerify(rofs, OPTIONS)).rejects.toThrow(
      new ApplyError(`\`ip ${FRESH_BATCH[2]}\` failed: Error: injected failure.; runtime changes undone`),
    );
  });

  it('undoes the batch and every file when sysctl -w fails', async () => {
    const { kernel, host } = guest();
    kernel.sysctlFailure = 'sysctl: permission denied on key "net.ipv4.conf.eth1.rp_filter"';
    const before = files();
    const state = structuredClone(kernel.state);

    await expect(applyAndVerify(host, OPTIONS)).rejects.toThrow(
      new ApplyError('sysctl failed (exit 255): sysctl: permission denied on key "net.ipv4.conf.eth1.rp_filter"'),
    );
    expect(kernel.callsOf('ip', '-force', '-batch', '-').map((c) => c.input)).toEqual([undoScript(FRESH_UNDO.length)]);
    expect(kernel.state).toEqual(state);
    expect(files()).toEqual(before);
  });

  it('with --reload network, restarts the service after the files are written; when that fails, undoes everything', async () => {
    for (const exitCode of [0, 1]) {
      vol.reset();
      vol.fromJSON(guestFiles());
      const { kernel, host } = guest();
      const restarts: string[] = [];
      const run = host.run;
      host.run = async (argv, options) => {
        if (argv[0] !== 'systemctl') return run(argv, options);
        restarts.push(
          `${argv.join(' ')} after ${batches(kernel).length} batch, ${WRITTEN.every((p) => vol.existsSync(p)) ? 'every file written' : 'files missing'}`,
        );
        return { exitCode, stdout: '', stderr: exitCode === 0 ? '' : 'Job for network.service failed.\n' };
      };
      const before = files();
      const state = structuredClone(kernel.state);
      const applying = applyAndVerify(host, { ...OPTIONS, reload: 'network' });
      if (exitCode === 0) {
        expect((await applying).rolledBack).toBe(false);
        expect(files()[WRITTEN[0]!]).toBeDefined();
      } else {
        await expect(applying).rejects.toThrow(
          new ApplyError(
            '`systemctl restart network.service` failed (exit 1): Job for network.service failed.; changes undone',
          ),
        );
        expect(kernel.state).toEqual(state);
        expect(files()).toEqual(before);
      }
      expect(restarts).toEqual(['systemctl restart network.service after 1 batch, every file written']);
    }
  });

  it('rolls back the runtime and the files when verification fails', async () => {
    const { kernel, host } = guest();
    kernel.pingOk = false;
    const before = files();
    const state = structuredClone(kernel.state);

    const result = await applyAndVerify(host, OPTIONS);

    expect(result.rolledBack).toBe(true);
    expect(result.report?.ok).toBe(false);
    expect(result.report?.checks.filter((c) => !c.ok).map((c) => `${c.kind} ${c.subject}: ${c.detail}`)).toEqual(
      ['10.0.0.2 (eth0)', '10.0.0.3 (eth0)', '10.0.0.7 (eth1)', '10.0.0.8 (eth1)'].map(
        (from) =>
          `ping 10.0.0.1 from ${from}: no reply after 3 attempts: 1 packets transmitted, 0 received, 100% packet loss, time 0ms`,
      ),
    );
    expect(sysctlWrites(kernel)).toEqual([SYSCTLS_SET, SYSCTLS_UNDO]);
    expect(kernel.callsOf('ip', '-force', '-batch', '-').map((c) => c.input)).toEqual([undoScript(FRESH_UNDO.length)]);
    expect(kernel.state).toEqual(state);
    const after = splitState();
    expect(after.others).toEqual(before);
    expect(after.state).toEqual<AgentState>({
      ...emptyState(),
      failedModelHash: MANUAL_HASH,
      failedAttempts: 1,
      retryAfter: RETRY_AT,
      lastApply: { at: NOW_ISO, modelHash: MANUAL_HASH, ok: false },
      lastError: { at: NOW_ISO, message: VERIFY_FAILED },
      counters: { applies: 0, verifyFailures: 1, rollbacks: 1, metadataErrors: 0 },
    });
    expect(stateMode()).toBe(0o600);
    expect(readSysctl('net.ipv4.conf.eth1.rp_filter')).toBe('1');
  });

  // A verification that cannot run (ping not installed) found nothing wrong: no rollback, the change is kept and owned.
  it('keeps the change, owned, when verification cannot run (ping not installed), and says it is unverified', async () => {
    const { kernel, host } = guest();
    kernel.missing.add('ping');

    const result = await applyAndVerify(host, OPTIONS);

    expect(result.rolledBack).toBe(false);
    expect(result.unverified?.map((c) => `${c.kind} ${c.subject}: ${c.detail}`)).toEqual([
      'script verification: could not run: host: `ping` was not found on PATH: install iputils-ping',
    ]);
    expect(kernel.callsOf('ip', '-force', '-batch', '-')).toEqual([]);
    expect(kernel.state.links.find((l) => l.ifname === 'eth1')?.addresses.map((a) => a.ip)).toEqual([
      '10.0.0.7',
      '10.0.0.8',
    ]);
    const { state } = splitState();
    expect(state!.owned).toEqual(manualOwned());
    expect(state!.failedModelHash).toBeUndefined();
    expect(state!.lastError?.message).toMatch(/^verification could not finish \(script verification: could not run: /);
  });

  it('keeps the change when the metadata endpoint does not answer the check: retried, then unknown, not a failure', async () => {
    const { kernel, host } = guest();
    const asked: string[] = [];
    const slept: number[] = [];
    const offline = {
      ...host,
      httpGet: async (url: string) => {
        asked.push(url);
        throw new Error('connect ECONNREFUSED 169.254.0.23:80');
      },
      sleep: async (ms: number) => void slept.push(ms),
    };

    const { model } = await makePlan(host, OPTIONS);
    const { metadataFile: _file, ...overHttp } = OPTIONS;
    const result = await applyModel(
      offline,
      { ...overHttp, metadataUrl: 'http://169.254.0.23/latest/meta-data/', metadataRetries: 3 },
      model,
    );

    expect(result.rolledBack).toBe(false);
    expect(asked).toEqual(Array(4).fill('http://169.254.0.23/latest/meta-data/mac'));
    expect(slept).toEqual([100, 200, 400]);
    expect(result.unverified).toEqual([
      {
        kind: 'metadata',
        subject: 'http://169.254.0.23/latest/meta-data/mac',
        ok: false,
        unknown: true,
        detail: 'could not be checked: no answer after 4 tries (connect ECONNREFUSED 169.254.0.23:80)',
      },
    ]);
    expect(kernel.state.links.find((l) => l.ifname === 'eth1')?.addresses.map((a) => a.ip)).toEqual([
      '10.0.0.7',
      '10.0.0.8',
    ]);
  });

  it('puts every file back and changes no runtime state when a file cannot be written', async () => {
    const { kernel, host, writes } = guest(freshKernel(), true, `${SCRIPTS}/rule-eth1`);
    const before = files();
    await expect(applyAndVerify(host, OPTIONS)).rejects.toThrow(
      new ApplyError(
        `writing ${SCRIPTS}/rule-eth1 failed: EACCES: permission denied, open '${SCRIPTS}/rule-eth1'; files left as they were`,
      ),
    );
    // The provisional state file is removed again with everything else.
    expect(writes).toEqual([
      STATE_PATH,
      `${ETH0}.bak`,
      ETH0,
      `${SCRIPTS}/ifcfg-eth1`,
      `${SCRIPTS}/route-eth1`,
      `${SCRIPTS}/rule-eth1`,
      ETH0,
    ]);
    expect(files()).toEqual(before);
    expect(kernel.commandLines()).toEqual(['ip -j -d -batch -', 'nft list table inet eip-agent']);
  });

  // Product bug: a `route replace` is undone by `route del`, so a route it replaced is gone after a rollback (src/targets/linux/plan-runtime.ts).
  it('puts back a table route that apply replaced when verification fails', async () => {
    const { kernel, host } = guest();
    await applyAndVerify(host, OPTIONS);
    const subnetRoute = kernel.state.routes.find((r) => r.table === '10001' && r.dst === '10.0.0.0/24');
    if (subnetRoute === undefined) throw new Error('no table route');
    subnetRoute.prefsrc = '10.0.0.8';
    const { others: before, state: first } = splitState();
    const state = structuredClone(kernel.state);
    kernel.pingOk = false;
    kernel.calls.length = 0;

    const result = await applyAndVerify(host, OPTIONS);

    expect(result.rolledBack).toBe(true);
    expect(batches(kernel)).toEqual(['route replace 10.0.0.0/24 dev eth1 src 10.0.0.7 table 10001 proto 234\n']);
    expect(kernel.state).toEqual(state);
    const after = splitState();
    expect(after.others).toEqual(before);
    // Ownership, originals and the snapshot of the first apply are kept; the failure is recorded.
    expect(first).toEqual(manualState());
    expect(after.state).toEqual<AgentState>({
      ...manualState(),
      failedModelHash: MANUAL_HASH,
      failedAttempts: 1,
      retryAfter: RETRY_AT,
      lastApply: { at: NOW_ISO, modelHash: MANUAL_HASH, ok: false },
      lastError: { at: NOW_ISO, message: VERIFY_FAILED },
      counters: { applies: 1, verifyFailures: 1, rollbacks: 1, metadataErrors: 0 },
    });
  });

  it('refuses to change anything without privileges', async () => {
    const { kernel, host, writes } = guest(freshKernel(), false);
    const before = files();
    await expect(applyAndVerify(host, OPTIONS)).rejects.toThrow(
      new HostError(
        'changing addresses, rules and sysctls needs root (CAP_NET_ADMIN): run as root, or use --no-runtime to write files only',
      ),
    );
    expect(writes).toEqual([]);
    expect(files()).toEqual(before);
    expect(kernel.commandLines()).toEqual(['ip -j -d -batch -']);
  });

  it('names iproute2 when ip is not installed, and writes nothing', async () => {
    const { kernel, host, writes } = guest();
    kernel.missing.add('ip');
    const before = files();
    const error = await applyAndVerify(host, OPTIONS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostError);
    expect((error as HostError).userLine).toBe('host: `ip` was not found on PATH: install iproute2');
    expect(writes).toEqual([]);
    expect(files()).toEqual(before);
  });

  it('names the missing NIC and --no-runtime when the ENI is not attached, and writes nothing', async () => {
    const state = freshKernel();
    state.links = state.links.filter((l) => l.ifname !== 'eth1');
    const { kernel, host, writes } = guest(state);
    const before = files();
    const error = await applyAndVerify(host, OPTIONS).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AgentError);
    expect((error as AgentError).userLine).toBe(
      'apply: NIC 20:90:6F:F7:93:2E from the metadata is not present on this system (ip link): wait until the ENI is attached, or run with --no-runtime to write files only',
    );
    expect(writes).toEqual([]);
    expect(files()).toEqual(before);
    expect(batches(kernel)).toEqual([]);
  });
});

describe('applyAndVerify with --no-runtime', () => {
  it('writes the files only: no ip -batch, no sysctl, no ping, no privileges needed', async () => {
    const { kernel, host, writes } = guest(freshKernel(), false);
    const state = structuredClone(kernel.state);
    const result = await applyAndVerify(host, { ...OPTIONS, runtime: false });

    expect(result).toMatchObject({
      rolledBack: false,
      outcome: { filesWritten: [`${ETH0}.bak`, ...WRITTEN], runtimeApplied: [] },
    });
    expect(result.report).toBeUndefined();
    expect(result.plan.runtimePlanned).toBe(false);
    expect(kernel.commandLines()).toEqual(['ip -j -d -batch -']);
    expect(kernel.state).toEqual(state);
    expect(writes).toEqual([STATE_PATH, `${ETH0}.bak`, ...WRITTEN, STATE_PATH]);
    const after = splitState();
    expect(after.others).toEqual({ ...guestFiles(), ...POLICY_FILES, [`${ETH0}.bak`]: CLOUD_INIT_ETH0 });
    // It owns the files it wrote, and nothing at runtime.
    expect(after.state).toEqual<AgentState>({
      ...emptyState(),
      owned: { ...emptyState().owned, files: [...WRITTEN].sort() },
      originalFiles: freshOriginals(),
      originalMeta: { [ETH0]: ETH0_META },
      lastSnapshot: {
        at: NOW_ISO,
        files: freshOriginals(),
        runtimeUndo: [],
        sysctls: {},
        meta: { [ETH0]: ETH0_META },
        ownedBefore: emptyState().owned,
      },
      lastApply: { at: NOW_ISO, modelHash: MANUAL_HASH, ok: true },
      lastSuccessAt: NOW_ISO,
      counters: { applies: 1, verifyFailures: 0, rollbacks: 0, metadataErrors: 0 },
    });
    expect(stateMode()).toBe(0o600);
  });

  it('writes the files of an ENI that is not attached yet, named as a fresh guest would name it', async () => {
    const state = freshKernel();
    state.links = state.links.filter((l) => l.ifname !== 'eth1');
    const { host } = guest(state);
    const result = await applyAndVerify(host, { ...OPTIONS, runtime: false });
    expect(result.outcome.filesWritten).toEqual([`${ETH0}.bak`, ...WRITTEN]);
    expect(result.plan.warnings).toEqual([
      'NIC 20:90:6F:F7:93:2E is not present on this system; previewing it as eth1 (the OS may name it differently; its runtime changes are not listed)',
    ]);
  });
});

describe('makePlan', () => {
  // A VLAN carries its parent's MAC; the ENI is the link that is not a VLAN (`ip -d` linkinfo) on top of it.
  it("names interfaces after the system link with the NIC's MAC, not after a VLAN on top of it", async () => {
    const state = freshKernel();
    state.links.push({ ifname: 'eth1.100', mac: MAC1, up: true, addresses: [], parent: 'eth1' });
    const { host } = guest(state);
    const { plan } = await makePlan(host, OPTIONS);
    expect(plan.files.map((f) => f.path)).toEqual(WRITTEN);
  });

  it('refuses to guess when two plain links carry the same MAC', async () => {
    const state = freshKernel();
    state.links.push({ ifname: 'eth9', mac: MAC1, up: true, addresses: [] });
    const { host } = guest(state);
    await expect(makePlan(host, OPTIONS)).rejects.toThrow(
      'several interfaces carry the MAC 20:90:6F:F7:93:2E of one NIC (eth1, eth9): cannot tell which one is the ENI',
    );
  });

  it('picks another routing table when 10001 is in use by someone else', async () => {
    const state = freshKernel();
    state.rules.push({ priority: 100, from: '192.168.0.0/16', table: '10001' });
    const { host } = guest(state);
    const { plan } = await makePlan(host, OPTIONS);
    expect(plan.runtime.filter((c) => c.kind === 'rule').map((c) => c.batch)).toEqual([
      'rule add from all table 254 suppress_prefixlength 0 priority 30000',
      'rule add from 10.0.0.7/32 to 10.0.0.0/24 table 10101 priority 29001',
      'rule add from 10.0.0.8/32 to 10.0.0.0/24 table 10101 priority 29001',
      'rule add from all to 10.0.0.0/24 fwmark 0x1000000/0xf000000 table 10101 priority 29001',
      'rule add from 10.0.0.7/32 table 10101 priority 30001',
      'rule add from 10.0.0.8/32 table 10101 priority 30001',
      'rule add from all fwmark 0x1000000/0xf000000 table 10101 priority 30001',
    ]);
  });

  it('builds the same plan from the same state (deterministic)', async () => {
    const { host } = guest();
    const first = await makePlan(host, OPTIONS);
    const second = await makePlan(host, OPTIONS);
    expect(second.plan).toEqual(first.plan);
  });
});

describe('applyUnlessFailed (the Windows task, `apply --skip-failed`)', () => {
  it.each<[string, Partial<AgentState>, boolean]>([
    ['before the retry time of the failed model: skipped', { retryAfter: new Date(NOW + 1000).toISOString() }, true],
    ['at the retry time: tried again', { retryAfter: NOW_ISO }, false],
    ['with no retry time (a state file of an older version): tried again', {}, false],
  ])('%s', async (_name, extra, skipped) => {
    const { kernel, host } = guest();
    vol.mkdirSync('/var/lib/eip-agent', { recursive: true });
    vol.writeFileSync(
      STATE_PATH,
      JSON.stringify({ ...emptyState(), failedModelHash: MANUAL_HASH, failedAttempts: 1, ...extra }),
    );
    const result = await applyUnlessFailed(host, OPTIONS);
    expect('skipped' in result).toBe(skipped);
    expect(kernel.callsOf('ip', '-batch', '-').length > 0).toBe(!skipped);
  });

  it('a changed model is applied at once, whatever the retry time of the failed one', async () => {
    const { host } = guest();
    vol.mkdirSync('/var/lib/eip-agent', { recursive: true });
    vol.writeFileSync(
      STATE_PATH,
      JSON.stringify({
        ...emptyState(),
        failedModelHash: 'f'.repeat(64),
        failedAttempts: 4,
        retryAfter: new Date(NOW + 600_000).toISOString(),
      }),
    );
    expect('skipped' in (await applyUnlessFailed(host, OPTIONS))).toBe(false);
  });
});
