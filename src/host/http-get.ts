// Plain-HTTP GETs over the runtime's own sockets (node:net on Node, Bun.connect in the release executable), with
// keep-alive connections kept between polls. The metadata service is one host answering small GETs many times a
// second; this costs a fraction of node:http's CPU on Node and of fetch's on Bun (see README, "Dependencies").
import { HttpGetError, ResponseReader, truncated, type HttpResponse, type ParsedResponse } from './http-response.js';

export { HttpGetError, type HttpResponse } from './http-response.js';

/** What a connection tells its owner. Called at most once after `closed`: never. */
export interface SocketEvents {
  data(chunk: Uint8Array): void;
  /** The peer closed or the connection failed: nothing more comes. */
  closed(error?: { message: string; code?: string }): void;
}

/** An open TCP connection, as the client needs it. */
export interface ClientSocket {
  write(text: string): void;
  /** Closes it at once; no event follows. */
  destroy(): void;
}

/**
 * Opens a connection that does not keep the process alive (unref'd: a request's deadline timer does while it is in
 * flight, and an idle kept connection must not hold up a command's exit); rejects with an error carrying the
 * system's code (ECONNREFUSED...).
 */
export type Connect = (host: string, port: number, events: SocketEvents) => Promise<ClientSocket>;

/** The GET a host offers: rejects with HttpGetError on connection errors, a bad or truncated answer, a timeout or an abort. */
export type HttpGet = (
  url: string,
  options: { timeoutMs: number; signal?: AbortSignal; maxBytes?: number },
) => Promise<HttpResponse>;

/** Why a request's deadline ended it: its own timeout or the caller's signal. */
type Expiry = 'timeout' | 'abort';

function expiryError(why: Expiry, timeoutMs: number): HttpGetError {
  return why === 'timeout'
    ? new HttpGetError(`timed out after ${timeoutMs} ms`, 'ETIMEDOUT')
    : new HttpGetError('aborted', 'ABORT_ERR');
}

/**
 * A request's deadline: `expire` runs on its timeout or on the caller's abort, whichever comes first, and the
 * returned function, called when the request ends, clears the timer and lets go of the caller's signal (a timer or
 * listener left behind would fire or pile up long after the GET). The caller checks `signal.aborted` before.
 */
function deadline(timeoutMs: number, signal: AbortSignal | undefined, expire: (why: Expiry) => void): () => void {
  const timer = setTimeout(() => expire('timeout'), timeoutMs);
  const onAbort = () => expire('abort');
  signal?.addEventListener('abort', onAbort, { once: true });
  return () => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  };
}

/**
 * Idle connections kept per host: as many as the default metadata concurrency, so that each poll reuses the last
 * one's instead of opening and closing a dozen every second.
 */
export const MAX_IDLE_PER_HOST = 16;

const ignore = (): void => undefined;
/** The listener of a connection no one listens to any more. */
const DETACHED: SocketEvents = { data: ignore, closed: ignore };

/** A connection and whoever listens to it now: the request it carries, or the pool while it is idle. */
class Connection implements SocketEvents {
  socket!: ClientSocket;
  listener: SocketEvents = DETACHED;

  data(chunk: Uint8Array): void {
    this.listener.data(chunk);
  }

  closed(error?: { message: string; code?: string }): void {
    this.listener.closed(error);
  }

  /** Closes it; nothing it still says reaches anyone. */
  drop(): void {
    this.listener = DETACHED;
    this.socket.destroy();
  }
}

/** Where a URL's GET goes, and the request line and headers sent for it. */
interface Target {
  host: string;
  port: number;
  key: string;
  request: string;
}

function target(url: string): Target {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:')
    throw new HttpGetError(`only http:// is supported, not ${parsed.protocol}`, 'ERR_PROTOCOL');
  // An IPv6 literal is bracketed in the URL and in Host, not for the connection.
  const host = parsed.hostname.replace(/^\[(.*)\]$/u, '$1');
  const port = parsed.port === '' ? 80 : Number(parsed.port);
  const request = `GET ${parsed.pathname}${parsed.search} HTTP/1.1\r\nHost: ${parsed.host}\r\nAccept: */*\r\n\r\n`;
  return { host, port, key: `${host} ${port}`, request };
}

/**
 * An HTTP/1.1 GET over `connect`: one request per connection at a time, keep-alive connections pooled per host. A
 * pooled connection the server closed just before it was reused (its keep-alive ended) is replaced by a new one once,
 * before any byte of the answer: a GET changes nothing, so sending it again is safe.
 */
export function httpClient(connect: Connect): HttpGet {
  const idle = new Map<string, Connection[]>();

  const release = (key: string, connection: Connection): void => {
    const list = idle.get(key) ?? [];
    if (list.length >= MAX_IDLE_PER_HOST) return connection.drop();
    // While idle, anything the server says (or its close) ends the connection; the pool forgets it.
    connection.listener = {
      data: () => forget(key, connection, true),
      closed: () => forget(key, connection, false),
    };
    list.push(connection);
    idle.set(key, list);
  };
  const forget = (key: string, connection: Connection, destroy: boolean): void => {
    const list = idle.get(key);
    const at = list?.indexOf(connection) ?? -1;
    if (at >= 0) list!.splice(at, 1);
    if (destroy) connection.drop();
    else connection.listener = DETACHED;
  };
  const open = async (where: Target): Promise<Connection> => {
    const connection = new Connection();
    connection.socket = await connect(where.host, where.port, connection);
    return connection;
  };

  return (url, options) =>
    new Promise<HttpResponse>((resolve, reject) => {
      const where = target(url);
      if (options.signal?.aborted) throw expiryError('abort', options.timeoutMs);
      let settled = false;
      let current: Connection | undefined;
      const finish = (): boolean => {
        if (settled) return false;
        settled = true;
        stop();
        return true;
      };
      const fail = (error: HttpGetError): void => {
        if (!finish()) return;
        current?.drop();
        reject(error);
      };
      const stop = deadline(options.timeoutMs, options.signal, (why) => fail(expiryError(why, options.timeoutMs)));

      const send = (connection: Connection, reused: boolean): void => {
        current = connection;
        const reader = new ResponseReader(options.maxBytes);
        const done = (response: ParsedResponse): void => {
          if (!finish()) return;
          if (response.reusable) release(where.key, connection);
          else connection.drop();
          resolve({ status: response.status, body: response.body });
        };
        connection.listener = {
          data: (chunk) => {
            try {
              const response = reader.push(chunk);
              if (response !== undefined) done(response);
            } catch (error) {
              fail(error as HttpGetError);
            }
          },
          closed: (error) => {
            if (settled) return;
            connection.listener = DETACHED;
            // A kept connection the server had closed: once, on a new one.
            if (reused && !reader.started) return void fresh();
            // Worded alike on both runtimes, whose own words for a reset differ.
            if (!reader.started)
              return fail(new HttpGetError('connection closed before the answer', error?.code ?? 'ECONNRESET'));
            // A body that runs to the close is whole only when the connection ended cleanly.
            if (error !== undefined) return fail(truncated());
            try {
              done(reader.end());
            } catch (problem) {
              fail(problem as HttpGetError);
            }
          },
        };
        connection.socket.write(where.request);
      };
      const fresh = (): void => {
        current = undefined;
        open(where).then(
          (connection) => {
            if (settled) connection.drop();
            else send(connection, false);
          },
          (error: { code?: string }) => {
            // Worded alike on both runtimes (node:net's words): the messages of the metadata check quote it.
            const code = error.code ?? 'ERR_HTTP';
            fail(new HttpGetError(`connect ${code} ${where.host}:${where.port}`, code));
          },
        );
      };

      const pooled = idle.get(where.key)?.pop();
      if (pooled !== undefined) send(pooled, true);
      else fresh();
    });
}

/** Connections through node:net (loaded on the first GET: a command that reads no metadata never pays for it). */
export const nodeConnect: Connect = (host, port, events) =>
  new Promise((resolve, reject) => {
    const net = process.getBuiltinModule('node:net');
    const socket = net.connect({ host, port, noDelay: true });
    socket.unref();
    let open = false;
    let ended = false;
    const end = (error?: NodeJS.ErrnoException): void => {
      if (ended) return;
      ended = true;
      if (open) events.closed(error === undefined ? undefined : { message: error.message, code: error.code });
    };
    socket.once('connect', () => {
      open = true;
      resolve({
        write: (text) => void socket.write(text),
        destroy: () => {
          ended = true;
          socket.destroy();
        },
      });
    });
    socket.on('data', (chunk: Buffer) => events.data(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!open) {
        ended = true;
        reject(error);
      } else end(error);
    });
    socket.on('close', () => end());
  });

/** The part of a Bun socket the client uses. */
export interface BunSocket {
  /** Bytes written now; the rest waits for `drain`. */
  write(data: string | Uint8Array): number;
  /** Closes it at once, unsent data and all. */
  terminate(): void;
  unref(): void;
}

/** The part of Bun.connect the client uses. */
export type BunConnect = (options: {
  hostname: string;
  port: number;
  socket: {
    data(socket: BunSocket, chunk: Uint8Array): void;
    drain(socket: BunSocket): void;
    close(socket: BunSocket, error?: Error): void;
    end(socket: BunSocket): void;
    error(socket: BunSocket, error: Error): void;
    connectError(socket: BunSocket, error: Error): void;
  };
}) => Promise<BunSocket>;

/** Connections through Bun.connect: Bun's own sockets, on the main thread (its fetch works on a thread of its own). */
export function bunConnect(connectTo: BunConnect): Connect {
  const encoder = new TextEncoder();
  return async (host, port, events) => {
    let ended = false;
    let unsent: Uint8Array | undefined;
    const end = (error?: Error): void => {
      if (ended) return;
      ended = true;
      events.closed(
        error === undefined ? undefined : { message: error.message, code: (error as { code?: string }).code },
      );
    };
    const flush = (socket: BunSocket): void => {
      if (unsent === undefined) return;
      const written = socket.write(unsent);
      unsent = written >= unsent.length ? undefined : unsent.subarray(Math.max(0, written));
    };
    const socket = await connectTo({
      hostname: host,
      port,
      socket: {
        data: (_socket, chunk) => {
          if (!ended) events.data(chunk);
        },
        drain: flush,
        close: (_socket, error) => end(error),
        end: () => end(),
        error: (_socket, error) => end(error),
        // The promise rejects with the same error.
        connectError: () => undefined,
      },
    });
    socket.unref();
    return {
      write: (text) => {
        unsent = encoder.encode(text);
        flush(socket);
      },
      destroy: () => {
        ended = true;
        socket.terminate();
      },
    };
  };
}
