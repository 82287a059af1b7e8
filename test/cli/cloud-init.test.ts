// cloud-init would render the network configuration again over the agent's: plan says so, and --cloud-init disable
// writes the drop-in that stops it, a file the agent owns like every other (rollback --original removes it).
import { beforeEach, describe, expect, it } from 'vitest';
import { EXIT, main } from '../../src/cli/main.js';
import { CLOUD_INIT_DROPIN } from '../../src/targets/linux/cloud-init.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { createTestHost, vol } from '../helpers/host.js';
import { NOW, freshKernel, guestFiles } from '../helpers/manual-guest.js';

const CLOUD_CFG = '/etc/cloud/cloud.cfg';

async function cli(argv: string[], kernel: FakeKernel) {
  let out = '';
  let err = '';
  const host = createTestHost({ run: kernel.run, isPrivileged: () => true, now: () => NOW });
  const code = await main([...argv, '--metadata-file', '/meta.json'], host, {
    out: (t) => (out += t),
    err: (t) => (err += t),
  });
  return { code, out, err };
}

beforeEach(() => vol.reset());

describe('cloud-init on a CentOS 7 guest', () => {
  it('plan warns that a new instance gets its network config rendered again, and names the flag', async () => {
    vol.fromJSON({ ...guestFiles(), [CLOUD_CFG]: 'users: [default]\n' });
    const plan = await cli(['plan'], new FakeKernel(freshKernel()));
    expect(plan.code).toBe(EXIT.pending);
    expect(plan.out).toContain(
      `  ! cloud-init is installed and its network configuration is on: on a new instance (an image made of this guest) it renders the network config again, over what eip-agent writes; --cloud-init disable writes ${CLOUD_INIT_DROPIN} (network: {config: disabled}) to stop it\n`,
    );
  });

  it('says "at every boot" when updates: network: when: [boot] is set; says nothing when a drop-in disables it', async () => {
    vol.fromJSON({
      ...guestFiles(),
      [CLOUD_CFG]: 'users: [default]\n',
      '/etc/cloud/cloud.cfg.d/50-updates.cfg': "updates:\n  network:\n    when: ['boot']\n",
    });
    expect((await cli(['plan'], new FakeKernel(freshKernel()))).out).toContain(
      'with updates: network: when: [boot] it renders the network config again at every boot',
    );
    vol.reset();
    vol.fromJSON({
      ...guestFiles(),
      [CLOUD_CFG]: 'users: [default]\n',
      '/etc/cloud/cloud.cfg.d/05-image.cfg': 'network: {config: disabled}\n',
    });
    const quiet = await cli(['plan'], new FakeKernel(freshKernel()));
    expect(quiet.out + quiet.err).not.toContain('cloud-init is installed');
  });

  it("--cloud-init disable writes the drop-in with the agent's marker; rollback --original removes it", async () => {
    vol.fromJSON({ ...guestFiles(), [CLOUD_CFG]: 'users: [default]\n' });
    const kernel = new FakeKernel(freshKernel());
    const apply = await cli(['apply', '--cloud-init', 'disable'], kernel);
    expect(apply.code, apply.err).toBe(EXIT.ok);
    expect(apply.err).not.toContain('cloud-init');
    expect(apply.out).toContain(`wrote ${CLOUD_INIT_DROPIN}`);
    await expect(String(vol.readFileSync(CLOUD_INIT_DROPIN, 'utf8'))).toMatchFileSnapshot(
      '../render/__golden__/cloud-init/99-eip-agent-network.cfg',
    );
    expect((await cli(['plan', '--cloud-init', 'disable'], kernel)).code).toBe(EXIT.ok);
    const back = await main(
      ['rollback', '--original'],
      createTestHost({ run: kernel.run, isPrivileged: () => true, now: () => NOW }),
      { out: () => undefined, err: () => undefined },
    );
    expect(back).toBe(EXIT.ok);
    expect(vol.existsSync(CLOUD_INIT_DROPIN)).toBe(false);
    expect(vol.existsSync(CLOUD_CFG)).toBe(true);
  });
});
