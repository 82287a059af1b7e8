import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeFs, readCapped } from '../../src/host/node.js';

/** A file that gives `content` at most `chunk` bytes a call, whatever its size says; it records each buffer it saw. */
function source(content: string, chunk = Infinity) {
  const bytes = Buffer.from(content, 'utf8');
  let position = 0;
  const buffers: number[] = [];
  const read = async (buffer: Buffer, offset: number) => {
    buffers.push(buffer.length);
    const n = Math.min(chunk, buffer.length - offset, bytes.length - position);
    bytes.copy(buffer, offset, position, position + n);
    position += n;
    return n;
  };
  return { read, buffers };
}

describe('readCapped', () => {
  it('reads a file of the size it gives into one buffer of that size and a byte', async () => {
    const text = 'DEVICE=eth1\nBOOTPROTO=static\n';
    const file = source(text);
    expect(await readCapped(file.read, Buffer.byteLength(text), 1024)).toBe(text);
    expect(new Set(file.buffers)).toEqual(new Set([Buffer.byteLength(text) + 1]));
  });

  it('grows the buffer for a file that gives no size (/proc, /sys) or one that grew since', async () => {
    const long = 'x'.repeat(10_000);
    expect(await readCapped(source(long, 700).read, 0, 1024 * 1024)).toBe(long);
    expect(await readCapped(source(long).read, 100, 1024 * 1024)).toBe(long);
  });

  it('keeps a character whose bytes arrive in two reads', async () => {
    const text = `${'a'.repeat(4095)}é✓ 203.0.113.7`;
    expect(await readCapped(source(text, 4096).read, 0, 1024 * 1024)).toBe(text);
  });

  it('gives a file of the cap exactly, and nothing for one byte more, never holding more than the cap and a byte', async () => {
    const cap = 50_000;
    expect(await readCapped(source('y'.repeat(cap)).read, 0, cap)).toHaveLength(cap);
    const over = source('y'.repeat(cap + 1000));
    expect(await readCapped(over.read, 0, cap)).toBeUndefined();
    expect(Math.max(...over.buffers)).toBe(cap + 1);
  });
});

describe('nodeFs.readText', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eip-read-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a real file and a /proc file (size 0) whole', async () => {
    const path = join(dir, 'big');
    const text = 'IPADDR=10.0.0.7\n'.repeat(8000);
    writeFileSync(path, text);
    expect(await nodeFs.readText(path)).toBe(text);
    expect(await nodeFs.readText('/proc/version')).toBe(readFileSync('/proc/version', 'utf8'));
  });
});
