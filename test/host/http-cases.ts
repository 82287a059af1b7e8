// The HTTP client's cases, shared by its test on Node (node:net) and the driver that runs them on Bun (Bun.connect):
// a server written byte by byte, so that each case is exactly the answer it names, and what each GET gives.
import { createServer, type Server, type Socket } from 'node:net';
import type { HttpGet } from '../../src/host/http-get.js';

/** What the test server has seen. */
export interface ServerCounts {
  connections: number;
  requests: number;
  /** Bytes the last `/endless` answer wrote before the client went away. */
  endlessWritten: number;
}

function answer(status: string, headers: string[], body: string): string {
  return `HTTP/1.1 ${status}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${body}`;
}

/** Answers one request on `socket`; `served` is how many this connection answered before. */
function respond(socket: Socket, path: string, served: number, counts: ServerCounts): void {
  const write = (text: string) => void socket.write(text);
  switch (path) {
    case '/length':
      return write(answer('200 OK', ['Content-Length: 10', 'Content-Type: text/plain'], '10.0.0.2/\n'));
    case '/chunked':
      // Split across writes inside the chunk-size line and the data; an extension and a trailer.
      write(answer('200 OK', ['Transfer-Encoding: chunked'], '5;name=x\r\n10.0.'));
      setTimeout(() => write('\r\nA\r\n0.2/\n10.0.'), 5);
      setTimeout(() => write('\r\n2\r\n0.\r\n0\r\nX-Trailer: y\r\n\r\n'), 10);
      return;
    case '/to-close':
      // HTTP/1.0 with no length: the body ends with the connection.
      write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n10.0.0.2/\n');
      setTimeout(() => {
        write('10.0.0.3/\n');
        socket.end();
      }, 5);
      return;
    case '/continue':
      return write(`HTTP/1.1 100 Continue\r\n\r\n${answer('200 OK', ['Content-Length: 2'], 'ok')}`);
    case '/missing':
      return write(answer('404 Not Found', ['Content-Length: 9'], 'not found'));
    case '/closing':
      return write(answer('200 OK', ['Content-Length: 2', 'Connection: close'], 'ok'));
    case '/endless': {
      counts.endlessWritten = 0;
      write(answer('200 OK', ['Transfer-Encoding: chunked'], ''));
      const chunk = `4000\r\n${'x'.repeat(0x4000)}\r\n`;
      const pump = () => {
        while (!socket.destroyed && counts.endlessWritten < 64 * 1024 * 1024) {
          counts.endlessWritten += 0x4000;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
      };
      return pump();
    }
    case '/too-long':
      return write(answer('200 OK', ['Content-Length: 70000'], ''));
    case '/hang':
      return;
    case '/truncated':
      write(answer('200 OK', ['Content-Length: 100'], '10.0.0.2/\n'));
      setTimeout(() => socket.destroy(), 5);
      return;
    case '/reset':
      return void socket.destroy();
    case '/stale':
      // A kept connection the server has just given up: it closes without an answer. A new one is answered.
      if (served > 0) return void socket.destroy();
      return write(answer('200 OK', ['Content-Length: 5'], 'fresh'));
    case '/bad-status':
      return write('HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n');
    case '/bad-length':
      return write(answer('200 OK', ['Content-Length: 2', 'Content-Length: 3'], 'ok'));
    case '/extra':
      // More bytes than the declared length: the answer is taken, the connection is not kept.
      return write(answer('200 OK', ['Content-Length: 2'], 'okEXTRA'));
    default:
      return write(answer('500 Internal Server Error', ['Content-Length: 0'], ''));
  }
}

/** Starts the test server on loopback. */
export async function startCaseServer(): Promise<{ base: string; counts: ServerCounts; close(): Promise<void> }> {
  const counts: ServerCounts = { connections: 0, requests: 0, endlessWritten: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    counts.connections += 1;
    // The server's side of a connection does not hold the event loop either: the test counts the client's.
    socket.unref();
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    let served = 0;
    socket.on('data', (data) => {
      buffered += data.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const request = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        counts.requests += 1;
        const path = /^GET (\S+) HTTP\/1\.1\r\nHost: [^\r]+\r\n/u.exec(request)?.[1] ?? '/not-a-get';
        respond(socket, path, served, counts);
        served += 1;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    base: `http://127.0.0.1:${address.port}`,
    counts,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** One case: the GETs made in order (on one client), the last one's outcome reported. */
export interface HttpCase {
  name: string;
  paths: string[];
  timeoutMs?: number;
  maxBytes?: number;
}

export const HTTP_CASES: HttpCase[] = [
  { name: 'a declared length', paths: ['/length'] },
  { name: 'chunked, split anywhere, with an extension and a trailer', paths: ['/chunked'] },
  { name: 'a body that ends with the connection', paths: ['/to-close'] },
  { name: 'an interim 100 before the answer', paths: ['/continue'] },
  { name: 'a 404, body and all', paths: ['/missing'] },
  { name: 'chunked past the cap', paths: ['/endless'], maxBytes: 64 * 1024 },
  { name: 'a declared length past the cap', paths: ['/too-long'], maxBytes: 64 * 1024 },
  { name: 'no answer', paths: ['/hang'], timeoutMs: 150 },
  { name: 'a body cut short', paths: ['/truncated'] },
  { name: 'closed before any answer', paths: ['/reset'] },
  { name: 'a kept connection closed by the server', paths: ['/length', '/stale'] },
  { name: 'a bad status line', paths: ['/bad-status'] },
  { name: 'two different lengths', paths: ['/bad-length'] },
  { name: 'bytes past the declared length', paths: ['/extra', '/length'] },
  { name: 'a refused connection', paths: ['http://127.0.0.1:9/'] },
];

/** What a GET gave: the status and the body as text, or the error's code and message. */
export async function caseOutcome(get: HttpGet, base: string, c: HttpCase): Promise<unknown> {
  let result: unknown;
  for (const path of c.paths) {
    const url = path.startsWith('http:') ? path : `${base}${path}`;
    try {
      const response = await get(url, { timeoutMs: c.timeoutMs ?? 2000, maxBytes: c.maxBytes ?? 1024 });
      result = {
        status: response.status,
        body: new TextDecoder().decode(response.body),
      };
    } catch (error) {
      const { code, message } = error as { code?: string; message: string };
      result = { code, message: message.replace(/:\d+$/u, ':<port>') };
    }
  }
  return result;
}
