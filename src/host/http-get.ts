import type { Agent } from 'node:http';

/** One HTTP answer, body read whole. */
export interface HttpResponse {
  status: number;
  /** Header values by lower-case name. */
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}

/** An HTTP failure below the status line: `code` is ECONNREFUSED, ETIMEDOUT, ERR_TRUNCATED, ABORT_ERR... */
export class HttpGetError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Why a request's deadline ended it: its own timeout or the caller's signal. */
type Expiry = 'timeout' | 'abort';

/** The error each client throws for an expiry, with node:http's codes. */
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
 * Keep-alive connections: a crawl of the metadata tree is hundreds of small GETs to one host.
 * node:http costs a fraction of fetch's CPU and memory per request, which is what keeps the daemon's
 * poll cheap. Up to 16 idle connections (the default metadata concurrency) stay open between polls, so
 * each poll reuses the last one's instead of opening and closing a dozen every second. The agent, and
 * node:http itself, load on the first GET: a command that reads no metadata never pays for them.
 */
let agent: Agent | undefined;

/** GET over plain HTTP; rejects with HttpGetError on connection errors, a truncated body, a timeout or an abort. */
export function httpGet(
  url: string,
  options: { timeoutMs: number; signal?: AbortSignal; maxBytes?: number },
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    if (target.protocol !== 'http:') {
      reject(new HttpGetError(`only http:// is supported, not ${target.protocol}`, 'ERR_PROTOCOL'));
      return;
    }
    if (options.signal?.aborted) {
      reject(expiryError('abort', options.timeoutMs));
      return;
    }
    let settled = false;
    /** The first outcome wins: the deadline is let go and later events are ignored. */
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      release();
      return true;
    };
    const fail = (error: HttpGetError) => {
      if (!settle()) return;
      req.destroy();
      reject(error);
    };
    const release = deadline(options.timeoutMs, options.signal, (why) => fail(expiryError(why, options.timeoutMs)));
    const http = process.getBuiltinModule('node:http');
    agent ??= new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16, timeout: 30_000 });
    const req = http.request(target, { method: 'GET', agent }, (res) => {
      const chunks: Buffer[] = [];
      let received = 0;
      const tooLarge = () => fail(new HttpGetError(`response larger than ${options.maxBytes} bytes`, 'ERR_TOO_LARGE'));
      if (options.maxBytes !== undefined && Number(res.headers['content-length'] ?? 0) > options.maxBytes)
        return tooLarge();
      res.on('data', (chunk: Buffer) => {
        received += chunk.byteLength;
        // Stop reading at once: a huge answer must not become a huge process.
        if (options.maxBytes !== undefined && received > options.maxBytes) return tooLarge();
        chunks.push(chunk);
      });
      res.on('aborted', () => fail(new HttpGetError('connection closed in the middle of the body', 'ERR_TRUNCATED')));
      res.on('error', (error: NodeJS.ErrnoException) =>
        fail(new HttpGetError(error.message, error.code ?? 'ERR_TRUNCATED')),
      );
      res.on('end', () => {
        if (settled) return;
        if (!res.complete)
          return fail(new HttpGetError('connection closed in the middle of the body', 'ERR_TRUNCATED'));
        if (settle()) resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) => fail(new HttpGetError(error.message, error.code ?? 'ERR_HTTP')));
    req.end();
  });
}

/** What a failed fetch says about the connection, as node:http's codes (messages and retries depend on them). */
function fetchErrorCode(error: unknown): string {
  // Bun puts the code on the error, Node's fetch on its cause.
  const code = (error as { code?: unknown }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
  const known: Record<string, string> = {
    ConnectionRefused: 'ECONNREFUSED',
    ConnectionReset: 'ECONNRESET',
    ConnectionClosed: 'ECONNRESET',
    FailedToOpenSocket: 'ECONNREFUSED',
    ECONNREFUSED: 'ECONNREFUSED',
    ECONNRESET: 'ECONNRESET',
  };
  return typeof code === 'string' ? (known[code] ?? code) : 'ERR_HTTP';
}

/**
 * The same GET over the runtime's fetch, for Bun (the release executable): there fetch is native and costs a third
 * of node:http's CPU per request, which node:http on Bun is built on. Redirects are not followed (`manual`), the
 * body is read chunk by chunk and given up past `maxBytes`, and failures carry node:http's codes.
 */
export async function fetchGet(
  url: string,
  options: { timeoutMs: number; signal?: AbortSignal; maxBytes?: number },
): Promise<HttpResponse> {
  const target = new URL(url);
  if (target.protocol !== 'http:')
    throw new HttpGetError(`only http:// is supported, not ${target.protocol}`, 'ERR_PROTOCOL');
  const outer = options.signal;
  if (outer?.aborted) throw expiryError('abort', options.timeoutMs);
  // One controller per request, ended by the request's deadline (with AbortSignal.timeout every GET left a timer that
  // fired seconds later: about 7 us of CPU each, measured on Bun).
  const controller = new AbortController();
  let expired: Expiry | undefined;
  const release = deadline(options.timeoutMs, outer, (why) => {
    expired = why;
    controller.abort();
  });
  const signal = controller.signal;
  const tooLarge = () => new HttpGetError(`response larger than ${options.maxBytes} bytes`, 'ERR_TOO_LARGE');
  let response: Response | undefined;
  try {
    response = await fetch(target, { method: 'GET', redirect: 'manual', signal });
    const declared = response.headers.get('content-length');
    const length = declared === null ? undefined : Number(declared);
    if (options.maxBytes !== undefined && length !== undefined && length > options.maxBytes) {
      void response.body?.cancel().catch(() => undefined);
      throw tooLarge();
    }
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    // A declared length within the cap bounds the body: read it whole. Without one (chunked), chunk by chunk, and
    // stop at once past the cap: a huge answer must not become a huge process.
    if (options.maxBytes === undefined || length !== undefined || response.body === null) {
      return { status: response.status, headers, body: new Uint8Array(await response.arrayBuffer()) };
    }
    const chunks: Uint8Array[] = [];
    let received = 0;
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.byteLength;
      if (received > options.maxBytes) {
        void reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
    }
    return { status: response.status, headers, body: Buffer.concat(chunks) };
  } catch (error) {
    if (error instanceof HttpGetError) throw error;
    if (expired !== undefined) throw expiryError(expired, options.timeoutMs);
    // A failure after the status line is a body cut short; before it, the connection's.
    if (response !== undefined) throw new HttpGetError('connection closed in the middle of the body', 'ERR_TRUNCATED');
    throw new HttpGetError((error as Error).message, fetchErrorCode(error));
  } finally {
    release();
  }
}
