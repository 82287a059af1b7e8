import { loadProfiles } from './profiles.js';
import { underRoot } from '../../../plan/root.js';
import { ApplyError } from '../../../errors.js';
import { describeNetworkStack, detectNetworkStack, withNetworkManagerAsked } from '../boot-stack.js';
import { isManaged } from '../../../plan/plan.js';
import { PROFILE_PREFIX, renderNetworkManager, SYSTEM_CONNECTIONS_DIR } from './render.js';
import { linuxTarget } from '../target.js';

/**
 * Guests whose NICs NetworkManager owns (EL8, EL9, EL10, TencentOS 3/4, OpenCloudOS): one keyfile profile per NIC,
 * `eip-agent-<device>`, bound by MAC. The live state is changed with `ip` as on every Linux target, and the changed
 * profiles are handed to NetworkManager with `nmcli connection load`, which updates what it activates at the next boot
 * without touching the device now (`up` or `reapply` would remove addresses the agent does not own).
 */
export const networkManagerTarget = linuxTarget({
  name: 'networkmanager',
  render: renderNetworkManager,
  async bootCheck(host, root, known) {
    const stack = await withNetworkManagerAsked(host, known ?? (await detectNetworkStack(host, root)));
    const description = describeNetworkStack(stack);
    const plugins = stack.networkManager.plugins;
    if (!stack.networkManager.running) {
      const instead =
        stack.legacyNetwork === 'enabled'
          ? 'this guest boots with the legacy network service: use --target centos'
          : 'start it (systemctl enable --now NetworkManager)';
      return {
        description,
        stack,
        refusal:
          `target networkmanager writes keyfile profiles, and NetworkManager is not running (nmcli -t -f RUNNING general): ` +
          `nothing would load them; ${instead}; nothing was written`,
      };
    }
    if (plugins !== undefined && !plugins.includes('keyfile')) {
      return {
        description,
        stack,
        refusal:
          `target networkmanager writes keyfile profiles, and NetworkManager.conf lists plugins=${plugins.join(',')} without keyfile: ` +
          `they would not be read; add keyfile to plugins, nothing was written`,
      };
    }
    return { description, stack };
  },
  async ownTables(host, root) {
    const tables: number[] = [];
    for (const name of (await host.fs.list(underRoot(root, SYSTEM_CONNECTIONS_DIR))) ?? []) {
      if (!name.startsWith(PROFILE_PREFIX) || !name.endsWith('.nmconnection')) continue;
      const text = await host.fs.readText(underRoot(root, `${SYSTEM_CONNECTIONS_DIR}/${name}`)).catch(() => null);
      if (!isManaged(text)) continue;
      const table = /^route-table=(\d+)$/m.exec(text ?? '')?.[1];
      if (table !== undefined) tables.push(Number(table));
    }
    return tables;
  },
  async afterWrite(host, root, paths) {
    try {
      return await loadProfiles(host, root, paths);
    } catch (error) {
      throw new ApplyError(
        `${(error as Error).message}: NetworkManager would not use the new profiles at boot; changes undone`,
        { cause: error },
      );
    }
  },
});
