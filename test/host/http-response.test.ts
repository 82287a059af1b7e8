// The response reader alone: every framing split at every byte, and when a connection may carry the next request.
import { describe, expect, it } from 'vitest';
import { ResponseReader, type ParsedResponse } from '../../src/host/http-response.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (body: Uint8Array) => new TextDecoder().decode(body);

/** Feeds `raw` in two pieces cut at `cut`; the response, or undefined when the bytes did not complete one. */
function readSplit(raw: string, cut: number, maxBytes?: number): ParsedResponse | undefined {
  const reader = new ResponseReader(maxBytes);
  const all = bytes(raw);
  return reader.push(all.subarray(0, cut)) ?? reader.push(all.subarray(cut));
}

describe('ResponseReader', () => {
  const framings: [string, string][] = [
    ['a declared length', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n10.0.0.2/\n'],
    [
      'chunks',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n10.\r\n7\r\n0.0.2/\n\r\n0\r\nA: b\r\n\r\n',
    ],
  ];
  it.each(framings)('%s, cut at any byte, gives the same answer', (_name, raw) => {
    for (let cut = 0; cut <= raw.length; cut++) {
      const response = readSplit(raw, cut);
      expect(response, `cut at ${cut}`).toBeDefined();
      expect(text(response!.body)).toBe('10.0.0.2/\n');
      expect(response!.status).toBe(200);
      expect(response!.reusable).toBe(true);
    }
  });

  it.each([
    [
      'keep-alive and other headers',
      'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nKeep-Alive: timeout=5\r\n\r\na/\n',
    ],
    ['names in any case, no reason phrase', 'HTTP/1.1 200\r\ncontent-LENGTH:3\r\n\r\na/\n'],
    ['a 404', 'HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found'],
    ['a 204 that declares a length', 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n'],
    ['Connection: close', 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\na/\n'],
    ['a length said twice alike', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\na/\n'],
    ['HTTP/1.0 with keep-alive', 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\na/\n'],
    ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na/\n\r\n0\r\n\r\n'],
  ])('%s: read whole in one piece or byte by byte, the same answer', (_name, raw) => {
    const whole = new ResponseReader().push(bytes(raw));
    const slow = new ResponseReader();
    let piecewise: ParsedResponse | undefined;
    for (const byte of bytes(raw)) piecewise ??= slow.push(Uint8Array.of(byte));
    expect(whole).toBeDefined();
    expect({ ...whole, body: text(whole!.body) }).toEqual({ ...piecewise, body: text(piecewise!.body) });
  });

  it('a body that runs to the close ends with end(), and its connection is not kept', () => {
    const reader = new ResponseReader();
    expect(reader.push(bytes('HTTP/1.0 200 OK\r\n\r\nab'))).toBeUndefined();
    expect(reader.push(bytes('c'))).toBeUndefined();
    const response = reader.end();
    expect(response).toMatchObject({ status: 200, reusable: false });
    expect(text(response.body)).toBe('abc');
  });

  it.each([
    ['HTTP/1.1, nothing said', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', true],
    ['HTTP/1.1, Connection: close', 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', false],
    ['HTTP/1.0, nothing said', 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', false],
    [
      'HTTP/1.0, Connection: keep-alive',
      'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n',
      true,
    ],
    ['bytes past the answer', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy', false],
    ['a 204 (no body, whatever is declared)', 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n', true],
  ])('%s: the connection kept: %s', (_name, raw, reusable) => {
    expect(new ResponseReader().push(bytes(raw))?.reusable).toBe(reusable);
  });

  it.each([
    ['a declared length', 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n'],
    ['a chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n'],
    ['the bytes of a body to the close', 'HTTP/1.1 200 OK\r\n\r\n12345678901'],
  ])('past the cap by %s: refused as soon as it shows', (_name, raw) => {
    expect(() => new ResponseReader(10).push(bytes(raw))).toThrow(
      expect.objectContaining({ code: 'ERR_TOO_LARGE', message: 'response larger than 10 bytes' }),
    );
  });

  it.each([
    ['a status line that is not HTTP/1.x', 'HTTP/2 200\r\n\r\n', 'status line "HTTP/2 200"'],
    ['a folded header', 'HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n', 'header line " c"'],
    ['a length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'content-length "-1"'],
    [
      'a chunk size that is not hexadecimal',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n',
      'chunk size "z"',
    ],
    ['a protocol switch', 'HTTP/1.1 101 Switching Protocols\r\n\r\n', '101 Switching Protocols'],
  ])('%s is a malformed answer', (_name, raw, what) => {
    expect(() => new ResponseReader().push(bytes(raw))).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_RESPONSE', message: `malformed HTTP answer: ${what}` }),
    );
  });

  it('headers that never end are refused past 16 KiB', () => {
    const reader = new ResponseReader();
    expect(reader.push(bytes('HTTP/1.1 200 OK\r\n'))).toBeUndefined();
    expect(() => reader.push(bytes(`A: ${'x'.repeat(17 * 1024)}`))).toThrow(/headers longer than 16384 bytes/u);
  });

  it('a close before the end: truncated once an answer began, a reset before', () => {
    const reader = new ResponseReader();
    expect(() => reader.end()).toThrow(expect.objectContaining({ code: 'ECONNRESET' }));
    reader.push(bytes('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab'));
    expect(() => reader.end()).toThrow(expect.objectContaining({ code: 'ERR_TRUNCATED' }));
  });
});
