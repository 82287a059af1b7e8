// The bundle (dist/eip-agent.js, what the release executable runs) imports at startup only the builtins every
// command needs. The heavy ones load where they are used: on Bun each is a module of its own that the daemon would
// keep in memory for its whole life (measured on the 8 x 30 guest: node:http alone about 4.6 MB).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BUNDLE = fileURLToPath(new URL('../../dist/eip-agent.js', import.meta.url));

describe('the bundle', () => {
  it('imports no heavy builtin at startup: node:http, net, crypto, readline, util and child_process load on first use', () => {
    const text = readFileSync(BUNDLE, 'utf8');
    const imported = [...text.matchAll(/^import\b[^;]*?\bfrom\s*"(node:[^"]+)"/gm)].map((m) => m[1]);
    expect(imported.length).toBeGreaterThan(0);
    expect(new Set(imported)).toEqual(new Set(['node:events', 'node:fs', 'node:fs/promises', 'node:path', 'node:timers/promises']));
  });

  it('names a heavy builtin only in process.getBuiltinModule calls (no require() from a bundled package either)', () => {
    const text = readFileSync(BUNDLE, 'utf8');
    const heavy = '(?:node:)?(?:http|net|crypto|readline|util|child_process)';
    const named = text.match(new RegExp(`["']${heavy}["']`, 'g')) ?? [];
    const lazy = text.match(new RegExp(`process\\.getBuiltinModule\\(["']${heavy}["']\\)`, 'g')) ?? [];
    expect(lazy.length).toBeGreaterThan(0);
    expect(named.length).toBe(lazy.length);
  });
});
