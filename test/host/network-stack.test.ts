import { beforeEach, describe, expect, it } from 'vitest';
import { EXIT, main } from '../../src/cli/main.js';
import { describeNetworkStack, detectNetworkStack } from '../../src/targets/linux/boot-stack.js';
import { chooseLinuxTarget } from '../../src/targets/linux/auto.js';
import { CENTOS7_BOOT_FILES, CENTOS7_BOOT_LINK } from '../../src/sandbox/guest-root.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { createTestHost, vol } from '../helpers/host.js';
import { NOW, freshKernel, guestFiles } from '../helpers/manual-guest.js';

beforeEach(() => vol.reset());

describe('detectNetworkStack', () => {
  it('a CentOS 7 guest: the legacy network service, installed and enabled', async () => {
    vol.fromJSON({ ...CENTOS7_BOOT_FILES, [CENTOS7_BOOT_LINK]: '' });
    const stack = await detectNetworkStack(createTestHost(), '/');
    expect(stack).toEqual({
      legacyNetwork: 'enabled',
      networkManager: { running: false },
      cloudInit: { present: false, networkDisabled: false },
    });
  });

  it('installed but not enabled (no rc3.d link, no systemd wants link)', async () => {
    vol.fromJSON({ ...CENTOS7_BOOT_FILES });
    expect((await detectNetworkStack(createTestHost(), '/')).legacyNetwork).toBe('disabled');
    vol.fromJSON({ '/etc/systemd/system/multi-user.target.wants/network.service': '' });
    expect((await detectNetworkStack(createTestHost(), '/')).legacyNetwork).toBe('enabled');
  });

  it('an EL9 guest: no network-scripts, NetworkManager running with the keyfile plugin, cloud-init', async () => {
    vol.fromJSON({
      '/etc/NetworkManager/NetworkManager.conf': '[main]\nplugins = keyfile, ifcfg-rh\n',
      '/run/NetworkManager/NetworkManager.pid': '812\n',
      '/proc/812/stat': '812 (NetworkManager) S 1\n',
      '/etc/cloud/cloud.cfg': 'users: [default]\n',
      '/etc/cloud/cloud.cfg.d/99-disable-network.cfg': 'network: {config: disabled}\n',
    });
    const stack = await detectNetworkStack(createTestHost(), '/');
    expect(stack).toEqual({
      legacyNetwork: 'absent',
      networkManager: { running: true, plugins: ['keyfile', 'ifcfg-rh'] },
      cloudInit: { present: true, networkDisabled: true },
    });
    expect(describeNetworkStack(stack)).toBe(
      'network at boot: no legacy network service; NetworkManager running (plugins keyfile, ifcfg-rh); cloud-init present (network config disabled)',
    );
  });
});

describe('a guest where nothing reads ifcfg files with NM_CONTROLLED=no at boot', () => {
  const REFUSAL =
    'apply: target centos writes ifcfg files with NM_CONTROLLED=no, which only the legacy network service reads at boot, and this guest has none (/etc/rc.d/init.d/network and ifup-eth): a reboot would leave its NICs unconfigured; install and enable it (EL8: dnf install network-scripts && systemctl enable network), nothing was written';

  function el9Guest(): Record<string, string> {
    const files = guestFiles();
    for (const path of [...Object.keys(CENTOS7_BOOT_FILES), CENTOS7_BOOT_LINK]) delete files[path];
    return files;
  }

  it.each([[['apply']], [['apply', '--no-runtime']]])(
    '%j refuses in one line, writes nothing and changes nothing',
    async (args) => {
      vol.fromJSON(el9Guest());
      const before = vol.toJSON();
      const kernel = new FakeKernel(freshKernel());
      let out = '';
      let err = '';
      const code = await main(
        [...args, '--metadata-file', '/meta.json'],
        createTestHost({ run: kernel.run, isPrivileged: () => true, now: () => NOW }),
        { out: (t) => (out += t), err: (t) => (err += t) },
      );
      expect(code).toBe(EXIT.error);
      expect(out).toBe('');
      expect(err).toBe(`eip-agent: ${REFUSAL}\n`);
      const { '/run/eip-agent': _lock, ...after } = vol.toJSON();
      expect(after).toEqual(before);
      // Reads only: the live state (with the agent's nftables table), and whether NetworkManager runs (auto would pick
      // networkmanager then; it does not).
      expect(kernel.commandLines().filter((l) => !l.startsWith('ip -j'))).toEqual([
        'nmcli -t -f RUNNING general',
        ...(args.includes('--no-runtime') ? [] : ['nft list table inet eip-agent']),
      ]);
    },
  );

  it('plan says what is there and that apply refuses', async () => {
    vol.fromJSON(el9Guest());
    let out = '';
    const code = await main(
      ['plan', '--metadata-file', '/meta.json'],
      createTestHost({ run: new FakeKernel(freshKernel()).run }),
      { out: (t) => (out += t), err: () => undefined },
    );
    expect(code).toBe(EXIT.pending);
    expect(out).toContain('\nNetwork at boot: no legacy network service; NetworkManager not running\n');
    expect(out).toContain(`\napply refuses: ${REFUSAL.slice('apply: '.length)}\n`);
  });
});

describe('the default target on Linux (auto) follows the boot stack', () => {
  const answering = (said: string | Error) =>
    createTestHost({
      async run(argv) {
        if (argv.join(' ') !== 'nmcli -t -f RUNNING general') throw new Error(`unexpected ${argv.join(' ')}`);
        if (said instanceof Error) throw said;
        return { exitCode: 0, stdout: `${said}\n`, stderr: '' };
      },
    });

  it('centos where the legacy network service starts at boot, without asking NetworkManager', async () => {
    vol.fromJSON({ ...CENTOS7_BOOT_FILES, [CENTOS7_BOOT_LINK]: '' });
    expect(await chooseLinuxTarget(answering(new Error('nmcli must not be asked')), '/')).toBe('centos');
  });

  it('networkmanager where NetworkManager answers on the bus, else centos (whose plan then refuses)', async () => {
    expect(await chooseLinuxTarget(answering('running'), '/')).toBe('networkmanager');
    expect(await chooseLinuxTarget(answering('starting'), '/')).toBe('centos');
    expect(
      await chooseLinuxTarget(answering(Object.assign(new Error('spawn nmcli ENOENT'), { code: 'ENOENT' })), '/'),
    ).toBe('centos');
  });
});

describe('other stacks', () => {
  it('names systemd-networkd and netplan when they are configured; auto chooses netplan where it is configured, and centos refuses a bare networkd guest saying what to do', async () => {
    vol.fromJSON({
      '/etc/systemd/network/10-eth0.network': '[Match]\nName=eth0\n',
      '/etc/netplan/50-cloud-init.yaml': 'network: {version: 2}\n',
    });
    const stack = await detectNetworkStack(createTestHost(), '/');
    expect(stack.others).toEqual(['systemd-networkd', 'netplan']);
    expect(describeNetworkStack(stack)).toBe(
      'network at boot: no legacy network service; NetworkManager not running; systemd-networkd configured; netplan configured',
    );
    const noNm = createTestHost({
      run: async () => ({ exitCode: 8, stdout: '', stderr: 'Error: NetworkManager is not running.' }),
    });
    expect(await chooseLinuxTarget(noNm, '/')).toBe('netplan');
    vol.rmSync('/etc/netplan/50-cloud-init.yaml');
    expect(await chooseLinuxTarget(noNm, '/')).toBe('centos');
    vol.fromJSON(guestFiles());
    for (const path of [...Object.keys(CENTOS7_BOOT_FILES), CENTOS7_BOOT_LINK]) vol.rmSync(path);
    let out = '';
    await main(['plan', '--metadata-file', '/meta.json'], createTestHost({ run: new FakeKernel(freshKernel()).run }), {
      out: (t) => (out += t),
      err: () => undefined,
    });
    expect(out).toContain(
      'a reboot would leave its NICs unconfigured (systemd-networkd configured here); eip-agent writes for netplan, NetworkManager and the legacy network service, not for bare systemd-networkd or ifupdown: configure the NICs by hand',
    );
    expect(out).toContain('use --target netplan or networkmanager; nothing was written');
  });

  it('names ifupdown where /etc/network/interfaces (or a file in interfaces.d) configures a NIC, not for lo alone', async () => {
    vol.fromJSON({
      '/etc/network/interfaces': 'auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n',
    });
    expect((await detectNetworkStack(createTestHost(), '/')).others).toBeUndefined();
    vol.fromJSON({ '/etc/network/interfaces.d/50-cloud-init': 'auto eth0\niface eth0 inet dhcp\n' });
    const stack = await detectNetworkStack(createTestHost(), '/');
    expect(stack.others).toEqual(['ifupdown']);
    expect(describeNetworkStack(stack)).toBe(
      'network at boot: no legacy network service; NetworkManager not running; ifupdown configured',
    );
    vol.fromJSON(guestFiles());
    for (const path of [...Object.keys(CENTOS7_BOOT_FILES), CENTOS7_BOOT_LINK]) vol.rmSync(path);
    let err = '';
    const code = await main(
      ['apply', '--metadata-file', '/meta.json'],
      createTestHost({ run: new FakeKernel(freshKernel()).run, isPrivileged: () => true }),
      { out: () => undefined, err: (t) => (err += t) },
    );
    expect(code).toBe(1);
    expect(err).toBe(
      "eip-agent: apply: target centos writes ifcfg files with NM_CONTROLLED=no, which only the legacy network service reads at boot, and this guest has none (/etc/rc.d/init.d/network and ifup-eth): a reboot would leave its NICs unconfigured (ifupdown configured here); eip-agent writes for netplan, NetworkManager and the legacy network service, not for bare systemd-networkd or ifupdown: configure the NICs by hand (`eip-agent plan` shows what they need), or have netplan or NetworkManager manage them (apt-get install netplan.io or network-manager, take them out of the other stack's files) and use --target netplan or networkmanager; nothing was written\n",
    );
  });
});
