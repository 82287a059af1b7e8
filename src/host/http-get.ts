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
export function httpGet(url: string, options: { timeoutMs: number; signal?: AbortSignal; maxBytes?: number }): Promise<HttpResponse> {
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
    const timer = setTimeout(() => fail(new HttpGetError(`timed out after ${options.timeoutMs} ms`, 'ETIMEDOUT')), options.timeoutMs);
    const req = request(target, { method: 'GET', agent }, (res) => {
      const chunks: Buffer[] = [];
      let received = 0;
      const tooLarge = () => fail(new HttpGetError(`response larger than ${options.maxBytes} bytes`, 'ERR_TOO_LARGE'));
      if (options.maxBytes !== undefined && Number(res.headers['content-length'] ?? 0) > options.maxBytes) return tooLarge();
      res.on('data', (chunk: Buffer) => {
        received += chunk.byteLength;
        // Stop reading at once: a huge answer must not become a huge process.
        if (options.maxBytes !== undefined && received > options.maxBytes) return tooLarge();
        chunks.push(chunk);
      });
      res.on('aborted', () => fail(new HttpGetError('connection closed in the middle of the body', 'ERR_TRUNCATED')));
      res.on('error', (error: NodeJS.ErrnoException) => fail(new HttpGetError(error.message, error.code ?? 'ERR_TRUNCATED')));
      res.on('end', () => {
        if (settled) return;
        if (!res.complete) return fail(new HttpGetError('connection closed in the middle of the body', 'ERR_TRUNCATED'));
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
