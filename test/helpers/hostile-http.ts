// Tools for throwing hostile requests at a server: a seeded PRNG (so a failing run can be
// repeated), an HTTP sender that frames the body exactly as asked (Content-Length, chunked or
// none) and reports a connection the server closed early instead of failing, and a sender of
// raw bytes for requests node's HTTP client refuses to write (bad methods, bad request lines).
import { request } from 'node:http';
import { connect } from 'node:net';

/** A small, fast, seedable PRNG (sfc32 seeded through splitmix32); the same seed gives the same sequence. */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = next();
    this.#b = next();
    this.#c = next();
    this.#d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 2 ** 32;
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(0, items.length - 1)];
  }

  /** `n` random bytes. */
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** A string of `n` characters drawn from `alphabet`. */
  string(n: number, alphabet: string): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(0, alphabet.length - 1)];
    return s;
  }
}

export interface HostileResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The body parsed as JSON; undefined when empty or not JSON. */
  json: unknown;
}

/** What came back: a response, or the connection ending without one (`reset`, with the error's code). */
export type HostileOutcome = { kind: 'response'; response: HostileResponse } | { kind: 'reset'; error: string };

export interface HostileRequest {
  port: number;
  method: string;
  /** Written as is (node's client still refuses spaces and control characters: use sendRaw for those). */
  path: string;
  /** An array value is sent as that many header lines. */
  headers?: Record<string, string | string[]>;
  body?: Uint8Array;
  /**
   * How the body is framed: 'length' (default when there is a body) sets Content-Length, 'chunked'
   * sends Transfer-Encoding: chunked in pieces, 'none' sends neither header (no body is sent).
   */
  framing?: 'length' | 'chunked' | 'none';
  /** Milliseconds before giving up on an answer (a hung request is a failure, reported as reset 'timeout'). */
  timeoutMs?: number;
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Sends one request on its own connection. A response the server sent before closing the
 * connection early (a 413 answered before the body was read) is still returned; a connection
 * that ends with no response at all is a `reset` outcome, not an exception.
 */
export function sendHostile(opts: HostileRequest): Promise<HostileOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (o: HostileOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const framing = opts.framing ?? (opts.body && opts.body.length > 0 ? 'length' : 'none');
    const headers: Record<string, string | string[]> = { ...opts.headers };
    const lower = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
    if (framing === 'length' && !lower.has('content-length')) headers['content-length'] = String(opts.body?.length ?? 0);
    if (framing === 'chunked') headers['transfer-encoding'] = 'chunked';
    let req: ReturnType<typeof request>;
    try {
      req = request({ host: '127.0.0.1', port: opts.port, method: opts.method, path: opts.path, headers, agent: false });
    } catch (e) {
      // Node's client refused to write it (a bad path or header): nothing reached the server.
      resolve({ kind: 'reset', error: `not sent: ${(e as Error).message}` });
      return;
    }
    const timer = setTimeout(() => {
      req.destroy();
      settle({ kind: 'reset', error: 'timeout' });
    }, opts.timeoutMs ?? 20_000);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      const done = (): void => {
        const body = Buffer.concat(chunks);
        settle({ kind: 'response', response: { status: res.statusCode ?? 0, headers: res.headers, body, json: parseJson(body) } });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', done);
      // The server may close right after its answer; what arrived is the answer.
      res.on('error', done);
      res.on('aborted', done);
    });
    req.on('error', (e: NodeJS.ErrnoException) => settle({ kind: 'reset', error: e.code ?? e.message }));
    if (framing === 'none' || !opts.body || opts.body.length === 0) {
      req.end();
      return;
    }
    if (framing === 'length') {
      req.end(opts.body);
      return;
    }
    // Chunked: a few pieces, so the server sees a stream rather than one buffer.
    const body = opts.body;
    const piece = Math.max(1, Math.ceil(body.length / 4));
    for (let at = 0; at < body.length; at += piece) req.write(body.subarray(at, at + piece));
    req.end();
  });
}

/**
 * Writes raw bytes to a fresh connection and returns what the server wrote back until it closed
 * the connection (or `timeoutMs` passed), parsed as one HTTP/1.1 response when it is one.
 */
export function sendRaw(port: number, bytes: Uint8Array, timeoutMs = 5000): Promise<HostileOutcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = connect(port, '127.0.0.1', () => socket.end(bytes));
    const finish = (error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const all = Buffer.concat(chunks);
      const parsed = parseRawResponse(all);
      if (parsed) resolve({ kind: 'response', response: parsed });
      else resolve({ kind: 'reset', error: error ?? (all.length ? `unparseable answer: ${JSON.stringify(all.subarray(0, 80).toString('latin1'))}` : 'closed without an answer') });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => finish());
    socket.on('error', (e: NodeJS.ErrnoException) => finish(chunks.length ? undefined : (e.code ?? e.message)));
  });
}

/** The first HTTP/1.x response in `raw` (Content-Length or chunked body, or up to the end). */
export function parseRawResponse(raw: Buffer): HostileResponse | null {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) return null;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = raw.subarray(end + 4);
  if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = body.indexOf('\r\n', at);
      if (eol < 0) break;
      const size = parseInt(body.subarray(at, eol).toString('latin1'), 16);
      if (!Number.isFinite(size) || size === 0) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  }
  return { status: Number(m[1]), headers, body, json: parseJson(body) };
}

/** Runs `jobs` with at most `limit` in flight; results in the jobs' order. */
export async function runPool<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out = new Array<T>(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return out;
}
