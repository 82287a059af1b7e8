// What makes a guest root a CentOS 7 guest for the agent's boot check: initscripts' `network` service, installed and
// enabled. Only their presence matters (the agent reads no line of them), so the files are short stand-ins; the
// sandbox and the lab tests give each guest root them.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Stand-ins for initscripts' files, by absolute guest path. */
export const CENTOS7_BOOT_FILES: Readonly<Record<string, string>> = {
  '/etc/rc.d/init.d/network': "#! /bin/bash\n# network: stand-in for initscripts' init script (tests)\n",
  '/etc/sysconfig/network-scripts/ifup-eth': "#!/bin/bash\n# ifup-eth: stand-in for initscripts' script (tests)\n",
};

/** chkconfig's link that starts the service in runlevel 3. */
export const CENTOS7_BOOT_LINK = '/etc/rc.d/rc3.d/S10network';

/** Writes the stand-ins (and the rc3.d link) under root. */
export function seedCentos7Boot(root: string): void {
  for (const [path, content] of Object.entries(CENTOS7_BOOT_FILES)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content, { mode: 0o755 });
  }
  mkdirSync(dirname(join(root, CENTOS7_BOOT_LINK)), { recursive: true });
  symlinkSync('../init.d/network', join(root, CENTOS7_BOOT_LINK));
}

/** Whether a guest path (absolute, or relative to the root) is one of the stand-ins: not something the agent wrote. */
export function isBootStandIn(path: string): boolean {
  const absolute = path.startsWith('/') ? path : `/${path}`;
  return absolute in CENTOS7_BOOT_FILES || absolute === CENTOS7_BOOT_LINK || absolute.startsWith('/etc/rc.d/');
}
