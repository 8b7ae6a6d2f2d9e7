// What a miner does with the URLs the orchestrator signs: upload one blob (in parts, several at
// a time, for large ones), download one blob (in ranged parts, several at a time, for large ones),
// with one-line errors that carry the server's own message.
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ErrorBodySchema, type Upload, type Uploaded } from './protocol.ts';

export interface TransferOptions {
  signal?: AbortSignal;
}

export interface DownloadOptions extends TransferOptions {
  /** Larger bodies are refused (checked on Content-Length and while reading). */
  maxBytes: number;
  /**
   * Blobs larger than this are fetched as byte ranges of this size, `concurrency` at a time.
   * Default 16 MiB; Infinity for one plain GET.
   */
  partBytes?: number;
  /** Ranges in flight at once. Default 4. */
  concurrency?: number;
}

export interface UploadOptions extends TransferOptions {
  /** Parts in flight at once, for an upload in parts. Default 4. */
  concurrency?: number;
  /** Tries per part before giving up (network errors and 5xx answers are tried again). Default 3. */
  attempts?: number;
}

/** The SHA-256 of a blob's bytes, as the completion reports it and every reader checks it. */
export const blobSha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/**
 * Uploads `data` where `upload` says: one PUT, or parts of `part_bytes` in parallel. Returns what
 * the completion must report (its size and digest too).
 */
export async function uploadBlob(upload: Upload, data: Uint8Array, opts: UploadOptions = {}): Promise<Uploaded> {
  if (data.byteLength > upload.max_bytes) throw new Error(`upload to ${upload.key}: ${data.byteLength} bytes is more than the ${upload.max_bytes} allowed`);
  const mp = upload.multipart;
  if (!mp) {
    await uploadToUrl(upload.url, data, opts);
    return { key: upload.key, bytes: data.byteLength, sha256: blobSha256(data) };
  }
  const count = Math.max(1, Math.ceil(data.byteLength / mp.part_bytes));
  if (count > mp.part_urls.length) throw new Error(`upload to ${upload.key}: ${count} parts needed, ${mp.part_urls.length} URLs given`);
  const attempts = Math.max(1, Math.floor(opts.attempts ?? 3));
  const parts: { number: number; etag: string }[] = new Array(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const body = data.subarray(i * mp.part_bytes, Math.min(data.byteLength, (i + 1) * mp.part_bytes));
      for (let attempt = 1; ; attempt++) {
        try {
          const { etag } = await uploadToUrl(mp.part_urls[i], body, opts);
          if (etag === null) throw new Error(`upload to ${upload.key}: part ${i + 1} was stored without an ETag`);
          parts[i] = { number: i + 1, etag };
          break;
        } catch (err) {
          if (attempt >= attempts || opts.signal?.aborted || !(err instanceof TransferError && err.retryable)) throw err;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(count, Math.max(1, Math.floor(opts.concurrency ?? 4))) }, worker));
  return { key: upload.key, bytes: data.byteLength, sha256: blobSha256(data), multipart: { upload_id: mp.upload_id, parts } };
}

/** A failed transfer; `retryable` for network errors and 5xx answers. */
export class TransferError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'TransferError';
  }
}

/**
 * Uploads `data` with one PUT to a presigned URL; answers the ETag the server gave. Node's own
 * http client, not fetch: for blobs of megabytes it costs the sender less than half the CPU
 * (measured: 2 MiB PUT to the local store).
 */
export async function uploadToUrl(url: string, data: Uint8Array, opts: TransferOptions = {}): Promise<{ etag: string | null }> {
  const what = `PUT ${redact(url)}`;
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const { status, statusText, body, etag } = await new Promise<{ status: number; statusText: string; body: string; etag: string | null }>((resolve, reject) => {
    const req = send(target, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.byteLength) }, ...(opts.signal ? { signal: opts.signal } : {}) }, (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (c: Buffer) => {
        // Only an error's first few KiB matter.
        if (kept < 8192) chunks.push(c);
        kept += c.length;
      });
      const tag = res.headers.etag;
      res.on('end', () => resolve({ status, statusText: res.statusMessage ?? '', body: status >= 200 && status < 300 ? '' : Buffer.concat(chunks).toString('utf8'), etag: typeof tag === 'string' ? tag : null }));
      res.on('error', (err) => reject(new TransferError(`${what} failed: ${describeFetchError(err)}`, true, { cause: err })));
    });
    req.on('error', (err) => reject(new TransferError(`${what} failed: ${describeFetchError(err)}`, !opts.signal?.aborted, { cause: err })));
    req.end(data);
  });
  if (status < 200 || status >= 300) throw new TransferError(`${what} failed: ${describeStatus(status, statusText, body)}`, status >= 500);
  return { etag };
}

/** Downloads a blob from a presigned URL, refusing more than `maxBytes`. */
export async function downloadFromUrl(url: string, opts: DownloadOptions): Promise<Uint8Array> {
  const { maxBytes } = opts;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new Error(`downloadFromUrl: maxBytes must be a non-negative integer, got ${maxBytes}`);
  const partBytes = opts.partBytes ?? 16 * 2 ** 20;
  if (!(partBytes >= 1)) throw new Error(`downloadFromUrl: partBytes must be at least 1, got ${partBytes}`);
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 4));
  const what = `GET ${redact(url)}`;
  const request = (range?: [number, number]): Promise<Reply> => get(url, what, range, opts.signal);

  if (partBytes === Infinity) return readWhole(await request(), what, maxBytes);

  // Ask for the first part: a server that ignores ranges answers 200 with the whole blob, one
  // that honours them tells the total size in Content-Range.
  const first = await request([0, partBytes - 1]);
  if (first.status === 416) {
    // Nothing to range over: the blob is empty (S3 and the local store both answer 416 then).
    first.discard();
    return readWhole(await request(), what, maxBytes);
  }
  if (first.status !== 206) return readWhole(first, what, maxBytes);
  const contentRange = first.header('content-range');
  if (contentRange !== null && /^bytes (?:\*|0-0)\/0$/.test(contentRange.trim())) {
    // An empty blob, said oddly (s3rver answers a range of an empty object with 'bytes 0-0/0').
    first.discard();
    return new Uint8Array(0);
  }
  const firstRange = parseContentRange(contentRange);
  if (firstRange === null || firstRange.start !== 0) {
    first.discard();
    throw new Error(`${what} failed: unexpected Content-Range '${contentRange}'`);
  }
  const total = firstRange.size;
  if (total > maxBytes) {
    first.discard();
    throw new Error(`${what} failed: the blob is ${total} bytes, more than the ${maxBytes} allowed`);
  }
  const etag = first.header('etag');
  const out = new Uint8Array(total);
  await first.readInto(out, 0, firstRange.end + 1);

  const ranges: [number, number][] = [];
  for (let start = firstRange.end + 1; start < total; start += partBytes) ranges.push([start, Math.min(start + partBytes, total) - 1]);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ranges.length) {
      const [start, end] = ranges[next++];
      const res = await request([start, end]);
      if (res.status !== 206) {
        if (res.ok) res.discard();
        throw new Error(`${what} failed: ${res.ok ? `expected 206 for a range, got ${res.status}` : await res.describe()}`);
      }
      const got = parseContentRange(res.header('content-range'));
      const tag = res.header('etag');
      if (got === null || got.start !== start || got.end !== end || got.size !== total || (etag !== null && tag !== null && tag !== etag)) {
        res.discard();
        throw new Error(`${what} failed: the blob changed while it was being downloaded`);
      }
      await res.readInto(out, start, end + 1);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ranges.length) }, worker));
  return out;
}

/** A response of node's http client, read straight into the caller's buffer (no web streams). */
interface Reply {
  status: number;
  ok: boolean;
  header(name: string): string | null;
  /** Reads the body into out[from, to), failing on a body of any other length. */
  readInto(out: Uint8Array, from: number, to: number): Promise<void>;
  /** The whole body, refusing more than maxBytes. */
  readAll(maxBytes: number): Promise<Uint8Array>;
  /** "403 Forbidden: <the server's message>". */
  describe(): Promise<string>;
  discard(): void;
}

function get(url: string, what: string, range: [number, number] | undefined, signal?: AbortSignal): Promise<Reply> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(target, { method: 'GET', headers: range ? { range: `bytes=${range[0]}-${range[1]}` } : {}, ...(signal ? { signal } : {}) }, (res) => {
      const status = res.statusCode ?? 0;
      const failed = (err: unknown): Error => new Error(`${what} failed: ${describeFetchError(err)}`, { cause: err });
      const body = (onChunk: (c: Buffer) => string | null): Promise<void> =>
        new Promise((done, fail) => {
          let settled = false;
          const stop = (err: Error | null): void => {
            if (settled) return;
            settled = true;
            if (err) {
              res.destroy();
              fail(err);
            } else done();
          };
          res.on('data', (c: Buffer) => {
            const problem = onChunk(c);
            if (problem) stop(new Error(`${what} failed: ${problem}`));
          });
          res.on('end', () => stop(null));
          res.on('error', (err) => stop(failed(err)));
          res.on('aborted', () => stop(new Error(`${what} failed: the connection closed before the body ended`)));
        });
      resolve({
        status,
        ok: status >= 200 && status < 300,
        header: (name) => {
          const v = res.headers[name.toLowerCase()];
          return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
        },
        readInto: async (out, from, to) => {
          let at = from;
          await body((c) => {
            if (at + c.length > to) return `the server sent more than the ${to - from} bytes announced`;
            out.set(c, at);
            at += c.length;
            return null;
          });
          if (at !== to) throw new Error(`${what} failed: the body ended after ${at - from} of ${to - from} bytes`);
        },
        readAll: async (maxBytes) => {
          const chunks: Buffer[] = [];
          let total = 0;
          await body((c) => {
            total += c.length;
            if (total > maxBytes) return `the blob is more than the ${maxBytes} bytes allowed`;
            chunks.push(c);
            return null;
          });
          return new Uint8Array(Buffer.concat(chunks, total));
        },
        describe: async () => {
          const chunks: Buffer[] = [];
          let kept = 0;
          await body((c) => {
            if (kept < 8192) chunks.push(c);
            kept += c.length;
            return null;
          }).catch(() => {});
          return describeStatus(status, res.statusMessage ?? '', Buffer.concat(chunks).toString('utf8'));
        },
        discard: () => res.destroy(),
      });
    });
    req.on('error', (err) => reject(new Error(`${what} failed: ${describeFetchError(err)}`, { cause: err })));
    req.end();
  });
}

/** Reads a whole (non-ranged) response, refusing more than maxBytes. */
async function readWhole(res: Reply, what: string, maxBytes: number): Promise<Uint8Array> {
  if (!res.ok) throw new Error(`${what} failed: ${await res.describe()}`);
  const declared = res.header('content-length');
  if (declared !== null && Number(declared) > maxBytes) {
    res.discard();
    throw new Error(`${what} failed: the blob is ${declared} bytes, more than the ${maxBytes} allowed`);
  }
  if (declared !== null && /^\d+$/.test(declared)) {
    const out = new Uint8Array(Number(declared));
    await res.readInto(out, 0, out.length);
    return out;
  }
  return res.readAll(maxBytes);
}

function parseContentRange(header: string | null): { start: number; end: number; size: number } | null {
  const m = header === null ? null : /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header.trim());
  if (!m) return null;
  const [start, end, size] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return start <= end && end < size ? { start, end, size } : null;
}

/** The URL without its query string: signatures do not belong in error messages and logs. */
function redact(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : `${url.slice(0, q)}?…`;
}

function describeFetchError(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return oneLine(`${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`);
}

/** "403 Forbidden: this URL has expired", with the server's message when it sent one. */
function describeStatus(httpStatus: number, statusText: string, body: string): string {
  const status = `${httpStatus}${statusText ? ` ${statusText}` : ''}`;
  const text = body.slice(0, 4096);
  try {
    const parsed = ErrorBodySchema.safeParse(JSON.parse(text));
    if (parsed.success) return oneLine(`${status}: ${parsed.data.error.message} (${parsed.data.error.code})`);
  } catch {
    // not JSON
  }
  // S3's XML errors: <Error><Code>…</Code><Message>…</Message></Error>
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  if (code || message) return oneLine(`${status}: ${[message, code && `(${code})`].filter(Boolean).join(' ')}`);
  return text.trim() ? oneLine(`${status}: ${text.trim().slice(0, 200)}`) : status;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
