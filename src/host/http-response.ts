// An HTTP/1.x response read from a connection's bytes as they come: the status line, the headers, and a body framed by
// its length, by chunked transfer coding, or by the connection's end. Pure: bytes in, one response (or an error) out.

/** One answer as the client hands it on: its body is exactly what its framing declared (else the GET failed). */
export interface HttpResponse {
  status: number;
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

/** A complete answer, and whether its connection can carry the next request. */
export interface ParsedResponse extends HttpResponse {
  reusable: boolean;
}

/** Largest status line plus headers accepted (a metadata answer's are a few hundred bytes). */
const MAX_HEAD_BYTES = 16 * 1024;
/** Largest chunk-size line accepted in a chunked body. */
const MAX_CHUNK_LINE = 1024;

function malformed(what: string): HttpGetError {
  return new HttpGetError(`malformed HTTP answer: ${what}`, 'ERR_BAD_RESPONSE');
}

export function truncated(): HttpGetError {
  return new HttpGetError('connection closed in the middle of the body', 'ERR_TRUNCATED');
}

/** The bytes as a Buffer, without a copy: its searches and Latin-1 decoding are native (a loop here is not). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const EMPTY = Buffer.alloc(0);

interface Head {
  status: number;
  minor: number;
  headers: Record<string, string>;
}

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\r\n]*)?$/u;

function parseHead(text: string): Head {
  // The long way (the usual answer takes wholeAnswer's): line by line, with native string calls.
  let end = text.indexOf('\r\n');
  if (end < 0) end = text.length;
  const statusLine = STATUS_LINE.exec(text.slice(0, end));
  if (statusLine === null) throw malformed(`status line ${JSON.stringify(text.slice(0, Math.min(end, 40)))}`);
  const headers: Record<string, string> = {};
  for (let start = end + 2; start < text.length; start = end + 2) {
    end = text.indexOf('\r\n', start);
    if (end < 0) end = text.length;
    // A header line is `name: value`; folded lines (obsolete) and anything else are refused.
    const colon = text.indexOf(':', start);
    const name = text.slice(start, colon).toLowerCase();
    if (colon < 0 || colon > end || !TOKEN.test(name))
      throw malformed(`header line ${JSON.stringify(text.slice(start, Math.min(end, start + 40)))}`);
    const value = text.slice(colon + 1, end).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(statusLine[2]), minor: Number(statusLine[1]), headers };
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/u;

/** Whether a comma-separated header value lists `token` (case does not matter). */
function lists(value: string | undefined, token: 'close' | 'keep-alive'): boolean {
  return value !== undefined && value.split(',').some((item) => item.trim().toLowerCase() === token);
}

/** Whether an answer with this status has no body, whatever its headers declare (204 No Content, 304 Not Modified). */
function bodiless(status: number): boolean {
  return status === 204 || status === 304;
}

/** How the body ends: after `length` bytes, after the last chunk, or when the connection closes. */
type Framing = { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

function framing(head: Head, maxBytes: number | undefined): Framing {
  const { status, headers } = head;
  if (bodiless(status)) return { kind: 'length', length: 0 };
  const coding = headers['transfer-encoding'];
  if (coding !== undefined && coding.trim() !== '') {
    // The last coding applied says how the body ends: chunked, or else the connection's close.
    return coding.split(',').at(-1)!.trim().toLowerCase() === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  }
  const declared = headers['content-length'];
  if (declared === undefined) return { kind: 'close' };
  // Repeated, the values must agree ("5, 5").
  const only = LENGTH.test(declared) ? declared : sameValues(declared);
  if (only === undefined) throw malformed(`content-length ${JSON.stringify(declared.slice(0, 40))}`);
  const length = Number(only);
  if (maxBytes !== undefined && length > maxBytes) throw tooLarge(maxBytes);
  return { kind: 'length', length };
}

const LENGTH = /^\d{1,15}$/u;

// One header line other than the three that frame an answer, or `Connection: keep-alive`.
const OTHER_LINE = String.raw`\r\n(?:(?!content-length:|transfer-encoding:|connection:)[!#$%&'*+.^_\x60|~0-9a-z-]+:[^\r\n]*|connection:[ \t]*keep-alive[ \t]*)`;
/**
 * The head of the usual answer in one expression: HTTP/1.1, a final status, one Content-Length, no Transfer-Encoding
 * and no Connection but keep-alive. One native match instead of a walk over each line (the daemon reads a few answers
 * a second with its JIT held back); any other head goes the long way, with the same outcome.
 */
const USUAL_HEAD = new RegExp(
  String.raw`^HTTP/1\.1 ([2-9]\d\d)(?: [^\r\n]*)?(?:${OTHER_LINE})*\r\ncontent-length:[ \t]*(\d{1,15})[ \t]*(?:${OTHER_LINE})*$`,
  'iu',
);

/** The usual answer when `bytes` hold exactly it, head and body; else undefined (the caller reads it the long way). */
function wholeAnswer(bytes: Buffer, maxBytes: number | undefined): ParsedResponse | undefined {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0 || end > MAX_HEAD_BYTES) return undefined;
  const head = USUAL_HEAD.exec(bytes.toString('latin1', 0, end));
  if (head === null) return undefined;
  const status = Number(head[1]);
  const length = bodiless(status) ? 0 : Number(head[2]);
  if (maxBytes !== undefined && length > maxBytes) throw tooLarge(maxBytes);
  if (bytes.length !== end + 4 + length) return undefined;
  return { status, body: bytes.subarray(end + 4), reusable: true };
}

/** The one length a repeated Content-Length gives, or undefined when they differ or one is not a length. */
function sameValues(declared: string): string | undefined {
  const values = new Set(declared.split(',').map((value) => value.trim()));
  const [only] = values;
  return values.size === 1 && only !== undefined && LENGTH.test(only) ? only : undefined;
}

function tooLarge(maxBytes: number): HttpGetError {
  return new HttpGetError(`response larger than ${maxBytes} bytes`, 'ERR_TOO_LARGE');
}

/**
 * Reads one response from the bytes of a connection, given as they arrive. `push` returns the response once it is
 * complete (bytes after it are refused, the connection then not reused); `end` says the connection closed. Informational
 * answers (1xx) are skipped. A body past `maxBytes` is an error at once, whatever its framing.
 */
export class ResponseReader {
  #pending: Buffer = EMPTY;
  #head: Head | undefined;
  #framing: Framing | undefined;
  #body: Uint8Array[] = [];
  #bodyBytes = 0;
  /** Chunked: bytes left of the current chunk's data, or the step the decoder is at. */
  #chunk: { step: 'size' } | { step: 'data'; left: number } | { step: 'data-end' } | { step: 'trailers' } = {
    step: 'size',
  };
  #received = 0;
  #done = false;

  constructor(private readonly maxBytes?: number) {}

  /** Whether any byte of an answer has arrived. */
  get started(): boolean {
    return this.#received > 0;
  }

  /** Takes the next bytes; the response when they complete it. Throws HttpGetError on a malformed or oversized answer. */
  push(chunk: Uint8Array): ParsedResponse | undefined {
    if (this.#done) throw malformed('bytes after the end of the answer');
    this.#received += chunk.length;
    const bytes = asBuffer(chunk);
    if (this.#received === chunk.length) {
      // The usual answer comes whole in its first piece.
      const whole = wholeAnswer(bytes, this.maxBytes);
      if (whole !== undefined) {
        this.#done = true;
        return whole;
      }
    }
    this.#pending = this.#pending.length === 0 ? bytes : Buffer.concat([this.#pending, bytes]);
    for (;;) {
      if (this.#head === undefined) {
        const end = this.#pending.indexOf('\r\n\r\n');
        if ((end < 0 ? this.#pending.length : end) > MAX_HEAD_BYTES)
          throw malformed(`headers longer than ${MAX_HEAD_BYTES} bytes`);
        if (end < 0) return undefined;
        const head = parseHead(this.#pending.toString('latin1', 0, end));
        this.#pending = this.#pending.subarray(end + 4);
        // An interim answer (100 Continue...) precedes the real one; 101 would switch protocols, never asked for.
        if (head.status < 200) {
          if (head.status === 101) throw malformed('101 Switching Protocols');
          continue;
        }
        this.#head = head;
        this.#framing = framing(head, this.maxBytes);
      }
      return this.#readBody();
    }
  }

  /** The connection closed: the response when its body runs to the close, else an HttpGetError. */
  end(): ParsedResponse {
    // Such a body is taken as it comes (#readBody): nothing is left pending.
    if (this.#head !== undefined && this.#framing?.kind === 'close') return this.#finish(false);
    if (!this.started) throw new HttpGetError('connection closed before the answer', 'ECONNRESET');
    throw truncated();
  }

  #take(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#bodyBytes += bytes.length;
    if (this.maxBytes !== undefined && this.#bodyBytes > this.maxBytes) throw tooLarge(this.maxBytes);
    this.#body.push(bytes);
  }

  #readBody(): ParsedResponse | undefined {
    const framing = this.#framing!;
    if (framing.kind === 'close') {
      this.#take(this.#pending);
      this.#pending = EMPTY;
      return undefined;
    }
    if (framing.kind === 'length') {
      const left = framing.length - this.#bodyBytes;
      this.#take(this.#pending.subarray(0, left));
      this.#pending = this.#pending.subarray(Math.min(left, this.#pending.length));
      return this.#bodyBytes === framing.length ? this.#finish(true) : undefined;
    }
    return this.#readChunks();
  }

  #readChunks(): ParsedResponse | undefined {
    for (;;) {
      const step = this.#chunk;
      if (step.step === 'data') {
        const piece = this.#pending.subarray(0, step.left);
        this.#take(piece);
        this.#pending = this.#pending.subarray(piece.length);
        if (piece.length < step.left) {
          this.#chunk = { step: 'data', left: step.left - piece.length };
          return undefined;
        }
        this.#chunk = { step: 'data-end' };
        continue;
      }
      const eol = this.#pending.indexOf('\r\n');
      if (eol < 0) {
        if (this.#pending.length > MAX_CHUNK_LINE) throw malformed('chunk line too long');
        return undefined;
      }
      const line = this.#pending.toString('latin1', 0, eol);
      this.#pending = this.#pending.subarray(eol + 2);
      if (step.step === 'data-end') {
        if (line !== '') throw malformed('chunk data longer than its size');
        this.#chunk = { step: 'size' };
      } else if (step.step === 'size') {
        const size = /^([0-9A-Fa-f]{1,8})[ \t]*(?:;.*)?$/u.exec(line);
        if (size === null) throw malformed(`chunk size ${JSON.stringify(line.slice(0, 40))}`);
        const left = Number.parseInt(size[1]!, 16);
        if (this.maxBytes !== undefined && this.#bodyBytes + left > this.maxBytes) throw tooLarge(this.maxBytes);
        this.#chunk = left === 0 ? { step: 'trailers' } : { step: 'data', left };
      } else if (line === '') {
        // The empty line after the trailers (if any) ends the body.
        return this.#finish(true);
      }
    }
  }

  #finish(framed: boolean): ParsedResponse {
    const head = this.#head!;
    this.#done = true;
    const connection = head.headers.connection;
    const keepAlive = head.minor === 1 ? !lists(connection, 'close') : lists(connection, 'keep-alive');
    // Bytes already past the answer: the connection is out of step, never reused.
    const reusable = framed && keepAlive && this.#pending.length === 0;
    const body = this.#body.length === 1 ? this.#body[0]! : Buffer.concat(this.#body, this.#bodyBytes);
    return { status: head.status, body, reusable };
  }
}
