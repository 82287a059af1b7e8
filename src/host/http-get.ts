import { Agent, request } from 'node:http';

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

/**
 * Keep-alive connections: a crawl of the metadata tree is hundreds of small GETs to one host.
 * node:http costs a fraction of fetch's CPU and memory per request, which is what keeps the daemon's
 * poll cheap.
 */
const agent = new Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 4, timeout: 30_000 });

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
    let settled = false;
    const fail = (error: HttpGetError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      req.destroy();
      reject(error);
    };
    const onAbort = () => fail(new HttpGetError('aborted', 'ABORT_ERR'));
    const timer = setTimeout(
      () => fail(new HttpGetError(`timed out after ${options.timeoutMs} ms`, 'ETIMEDOUT')),
      options.timeoutMs,
    );
    const req = request(target, { method: 'GET', agent }, (res) => {
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
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) => fail(new HttpGetError(error.message, error.code ?? 'ERR_HTTP')));
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
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
  if (outer?.aborted) throw new HttpGetError('aborted', 'ABORT_ERR');
  // One controller per request, its timer cleared and the caller's signal let go when the request ends. With
  // AbortSignal.timeout every GET left a timer that fired seconds later (about 7 us of CPU each, measured on Bun).
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  const onAbort = () => controller.abort();
  outer?.addEventListener('abort', onAbort, { once: true });
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
    if (outer?.aborted) throw new HttpGetError('aborted', 'ABORT_ERR');
    if (timedOut) throw new HttpGetError(`timed out after ${options.timeoutMs} ms`, 'ETIMEDOUT');
    // A failure after the status line is a body cut short; before it, the connection's.
    if (response !== undefined) throw new HttpGetError('connection closed in the middle of the body', 'ERR_TRUNCATED');
    throw new HttpGetError((error as Error).message, fetchErrorCode(error));
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onAbort);
  }
}
