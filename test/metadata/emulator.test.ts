import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { controlEmulator, startMetadataEmulator, type MetadataEmulator } from '../../src/sandbox/emulator.js';
import { MAC1, MAC2, NIC1, manualTree } from './fixture.js';

let dir: string;
let socket: string;
let emulator: MetadataEmulator;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eip-emu-'));
  socket = join(dir, 'control.sock');
  // A stale socket file from a killed emulator must not stop the next one.
  writeFileSync(socket, 'stale');
  emulator = await startMetadataEmulator({ tree: manualTree(), controlSocket: socket });
});
afterEach(async () => {
  await emulator.close();
  await rm(dir, { recursive: true, force: true });
});

async function get(path: string): Promise<[number, string, string | null]> {
  const response = await fetch(`${emulator.url}${path}`);
  return [response.status, await response.text(), response.headers.get('content-type')];
}

describe('metadata emulator: serving', () => {
  it.each([
    ['', 200, 'instance-id\nmac\nlocal-ipv4\nplacement/\nnetwork/\n'],
    ['network/interfaces/macs/', 200, `${MAC1}/\n${MAC2}/\n`],
    [`${NIC1}local-ipv4s/10.0.0.3/public-ipv4`, 200, '203.0.113.11'],
    ['mac', 200, MAC1],
    ['hostname', 404, 'not found\n'],
    ['mac/', 404, 'not found\n'],
    ['placement', 404, 'not found\n'],
    [`network/interfaces/macs/${MAC1.toLowerCase()}/`, 404, 'not found\n'],
  ])('GET %j -> %i', async (path, status, body) => {
    const [gotStatus, gotBody, type] = await get(path);
    expect([gotStatus, gotBody]).toEqual([status, body]);
    expect(type).toMatch(/^text\/plain/u);
  });

  it('answers 404 outside /latest/meta-data/', async () => {
    const response = await fetch(new URL('/latest/user-data', emulator.url));
    expect(response.status).toBe(404);
  });

  it('spends counted faults and logs paths', async () => {
    emulator.setFaults({ status: { code: 503, match: 'mac', count: 1 } });
    expect((await get('mac'))[0]).toBe(503);
    expect((await get('mac'))[0]).toBe(200);
    expect(emulator.requests).toBe(2);
    expect(emulator.requestLog).toEqual(['/latest/meta-data/mac', '/latest/meta-data/mac']);
  });

  it('closes even with a request hanging', async () => {
    emulator.setFaults({ hang: {} });
    const hanging = fetch(`${emulator.url}mac`).catch((error: unknown) => error);
    await expect.poll(() => emulator.requests).toBe(1);
    await emulator.close();
    expect(await hanging).toBeInstanceOf(Error);
    expect(existsSync(socket)).toBe(false);
    emulator = await startMetadataEmulator({ tree: {} });
  });
});

describe('metadata emulator: control socket', () => {
  it('PUT /tree replaces what GET serves, GET /tree returns it', async () => {
    await expect(controlEmulator(socket, 'PUT', '/tree', { mac: 'AA' })).resolves.toEqual({ ok: true });
    expect(await get('mac')).toEqual([200, 'AA', 'text/plain; charset=utf-8']);
    expect((await get('instance-id'))[0]).toBe(404);
    await expect(controlEmulator(socket, 'GET', '/tree')).resolves.toEqual({ mac: 'AA' });
    expect(emulator.getTree()).toEqual({ mac: 'AA' });
  });

  it('PUT /faults injects faults and {} clears them', async () => {
    await controlEmulator(socket, 'PUT', '/faults', { status: { code: 500, match: 'instance-id' } });
    expect((await get('instance-id'))[0]).toBe(500);
    expect((await get('mac'))[0]).toBe(200);
    await controlEmulator(socket, 'PUT', '/faults', {});
    expect((await get('instance-id'))[0]).toBe(200);
  });

  it('GET /stats counts requests and shows the last paths', async () => {
    await get('mac');
    await get('nope');
    await expect(controlEmulator(socket, 'GET', '/stats')).resolves.toEqual({
      requests: 2,
      inFlight: 0,
      maxInFlight: 1,
      log: ['/latest/meta-data/mac', '/latest/meta-data/nope'],
    });
  });

  it.each([
    ['/tree', '{"mac": ', /^emulator control PUT \/tree: HTTP 400: \{"error":"invalid JSON: .+"\}$/u],
    [
      '/tree',
      '{"mac": 1}',
      'emulator control PUT /tree: HTTP 400: {"error":"mac: expected a string or an object, got number"}',
    ],
    ['/faults', '{"hang": 1}', 'emulator control PUT /faults: HTTP 400: {"error":"hang: expected an object"}'],
    ['/faults', '{"status": {}}', 'emulator control PUT /faults: HTTP 400: {"error":"status.code: required number"}'],
    ['/faults', '{"slow": true}', 'emulator control PUT /faults: HTTP 400: {"error":"faults.slow: unknown fault"}'],
  ])('PUT %s %s -> 400', async (path, raw, message) => {
    // controlEmulator only ever sends valid JSON, so these bodies go out raw.
    const { request } = await import('node:http');
    const reply = await new Promise<string>((resolve, reject) => {
      const req = request({ socketPath: socket, method: 'PUT', path }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve(`emulator control PUT ${path}: HTTP ${res.statusCode}: ${text.trim()}`));
      });
      req.on('error', reject);
      req.end(raw);
    });
    if (typeof message === 'string') expect(reply).toBe(message);
    else expect(reply).toMatch(message);
    expect(emulator.getTree()).toEqual(manualTree());
  });

  it('controlEmulator throws on an error status', async () => {
    await expect(controlEmulator(socket, 'PUT', '/faults', [])).rejects.toThrow(
      'emulator control PUT /faults: HTTP 400: {"error":"faults: expected an object"}',
    );
    await expect(controlEmulator(socket, 'GET', '/nope')).rejects.toThrow(
      'emulator control GET /nope: HTTP 404: {"error":"no route GET /nope"}',
    );
  });
});
