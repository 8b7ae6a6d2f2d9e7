// What a miner does with the URLs the orchestrator signs: upload one blob, download one blob
// (in ranged parts, several at a time, for large ones), with one-line errors that carry the
// server's own message.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ErrorBodySchema } from './protocol.ts';

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

/**
 * Uploads `data` with one PUT to a presigned URL. Node's own http client, not fetch: for blobs of
 * megabytes it costs the sender less than half the CPU (measured: 2 MiB PUT to the local store).
 */
export async function uploadToUrl(url: string, data: Uint8Array, opts: TransferOptions = {}): Promise<void> {
  const what = `PUT ${redact(url)}`;
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const { status, statusText, body } = await new Promise<{ status: number; statusText: string; body: string }>((resolve, reject) => {
    const req = send(target, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.byteLength) }, ...(opts.signal ? { signal: opts.signal } : {}) }, (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (c: Buffer) => {
        // Only an error's first few KiB matter.
        if (kept < 8192) chunks.push(c);
        kept += c.length;
      });
      res.on('end', () => resolve({ status, statusText: res.statusMessage ?? '', body: status >= 200 && status < 300 ? '' : Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => reject(new Error(`${what} failed: ${describeFetchError(err)}`, { cause: err })));
    });
    req.on('error', (err) => reject(new Error(`${what} failed: ${describeFetchError(err)}`, { cause: err })));
    req.end(data);
  });
  if (status < 200 || status >= 300) throw new Error(`${what} failed: ${describeStatus(status, statusText, body)}`);
}

/** Downloads a blob from a presigned URL, refusing more than `maxBytes`. */
export async function downloadFromUrl(url: string, opts: DownloadOptions): Promise<Uint8Array> {
  const { maxBytes } = opts;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new Error(`downloadFromUrl: maxBytes must be a non-negative integer, got ${maxBytes}`);
  const partBytes = opts.partBytes ?? 16 * 2 ** 20;
  if (!(partBytes >= 1)) throw new Error(`downloadFromUrl: partBytes must be at least 1, got ${partBytes}`);
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 4));
  const what = `GET ${redact(url)}`;

  const request = async (range?: [number, number]): Promise<Response> => {
    let res: Response;
    try {
      res = await fetch(url, {
        ...(range ? { headers: { range: `bytes=${range[0]}-${range[1]}` } } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      throw new Error(`${what} failed: ${describeFetchError(err)}`, { cause: err });
    }
    return res;
  };

  if (partBytes === Infinity) return readWhole(await request(), what, maxBytes);

  // Ask for the first part: a server that ignores ranges answers 200 with the whole blob, one
  // that honours them tells the total size in Content-Range.
  const first = await request([0, partBytes - 1]);
  if (first.status === 416) {
    // Nothing to range over: the blob is empty (S3 and the local store both answer 416 then).
    await first.body?.cancel().catch(() => {});
    return readWhole(await request(), what, maxBytes);
  }
  if (first.status !== 206) return readWhole(first, what, maxBytes);
  const contentRange = first.headers.get('content-range');
  if (contentRange !== null && /^bytes (?:\*|0-0)\/0$/.test(contentRange.trim())) {
    // An empty blob, said oddly (s3rver answers a range of an empty object with 'bytes 0-0/0').
    await first.body?.cancel().catch(() => {});
    return new Uint8Array(0);
  }
  const firstRange = parseContentRange(contentRange);
  if (firstRange === null || firstRange.start !== 0) {
    await first.body?.cancel().catch(() => {});
    throw new Error(`${what} failed: unexpected Content-Range '${contentRange}'`);
  }
  const total = firstRange.size;
  if (total > maxBytes) {
    await first.body?.cancel().catch(() => {});
    throw new Error(`${what} failed: the blob is ${total} bytes, more than the ${maxBytes} allowed`);
  }
  const etag = first.headers.get('etag');
  const out = new Uint8Array(total);
  await readInto(first, out, 0, firstRange.end + 1, what);

  const ranges: [number, number][] = [];
  for (let start = firstRange.end + 1; start < total; start += partBytes) ranges.push([start, Math.min(start + partBytes, total) - 1]);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ranges.length) {
      const [start, end] = ranges[next++];
      const res = await request([start, end]);
      if (res.status !== 206) {
        if (res.ok) await res.body?.cancel().catch(() => {});
        throw new Error(`${what} failed: ${res.ok ? `expected 206 for a range, got ${res.status}` : await describeResponse(res)}`);
      }
      const got = parseContentRange(res.headers.get('content-range'));
      const tag = res.headers.get('etag');
      if (got === null || got.start !== start || got.end !== end || got.size !== total || (etag !== null && tag !== null && tag !== etag)) {
        await res.body?.cancel().catch(() => {});
        throw new Error(`${what} failed: the blob changed while it was being downloaded`);
      }
      await readInto(res, out, start, end + 1, what);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ranges.length) }, worker));
  return out;
}

/** Reads a whole (non-ranged) response, refusing more than maxBytes. */
async function readWhole(res: Response, what: string, maxBytes: number): Promise<Uint8Array> {
  if (!res.ok) throw new Error(`${what} failed: ${await describeResponse(res)}`);
  const declared = res.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`${what} failed: the blob is ${declared} bytes, more than the ${maxBytes} allowed`);
  }
  if (declared !== null && /^\d+$/.test(declared)) {
    const out = new Uint8Array(Number(declared));
    await readInto(res, out, 0, out.length, what);
    return out;
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body?.getReader();
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new Error(`${what} failed: the blob is more than the ${maxBytes} bytes allowed`);
      }
      chunks.push(value);
    }
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Reads a response body into out[from, to), failing on a body of any other length. */
async function readInto(res: Response, out: Uint8Array, from: number, to: number, what: string): Promise<void> {
  let at = from;
  const reader = res.body?.getReader();
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (at + value.byteLength > to) {
        await reader.cancel().catch(() => {});
        throw new Error(`${what} failed: the server sent more than the ${to - from} bytes announced`);
      }
      out.set(value, at);
      at += value.byteLength;
    }
  }
  if (at !== to) throw new Error(`${what} failed: the body ended after ${at - from} of ${to - from} bytes`);
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
async function describeResponse(res: Response): Promise<string> {
  let text: string;
  try {
    text = await res.text();
  } catch {
    return `${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  }
  return describeStatus(res.status, res.statusText, text);
}

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
