import { describe, expect, it } from 'vitest';
import { withSystemPath } from '../../src/host/node.js';

describe('withSystemPath', () => {
  it.each<[string, string | undefined, string]>([
    ['no PATH (env -i)', undefined, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    ['an empty PATH', '', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    ["cron's PATH (no sbin)", '/usr/bin:/bin', '/usr/bin:/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin'],
    [
      "the user's own directories first",
      '/opt/tools:/usr/sbin',
      '/opt/tools:/usr/sbin:/usr/local/sbin:/usr/local/bin:/usr/bin:/sbin:/bin',
    ],
    [
      'a complete PATH unchanged',
      '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    ],
  ])('%s', (_name, path, expected) => {
    expect(withSystemPath(path)).toBe(expected);
  });
});
