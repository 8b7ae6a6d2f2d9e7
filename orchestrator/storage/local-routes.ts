// The local blob store on the orchestrator's HTTP server: GET, HEAD and PUT of /v1/blobs/KEY,
// the table's blob_url routes (orchestrator-client/routes.ts), each authorised by its own signed
// URL (LocalBlobStore.authorize). Answers are in the protocol's JSON error envelope.
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HTTP_STATUS, type ErrorCode } from '../../orchestrator-client/protocol.ts';
import { ROUTES } from '../../orchestrator-client/routes.ts';
import { ApiError } from '../http.ts';
import { MultipartError } from './blob-store.ts';
import { errnoCode, isMissing } from './fs-errors.ts';
import { DEFAULT_UPLOAD_IDLE_MS, type LocalBlobStore, WriteRefusedError } from './local.ts';
import { AbortedError, StalledError, TooLargeError } from './spool.ts';

function sendError(reply: FastifyReply, code: ErrorCode, message: string, details?: Record<string, unknown>, status = HTTP_STATUS[code]): FastifyReply {
  return reply
    .code(status)
    .type('application/json; charset=utf-8')
    .send({ error: { code, message, ...(details ? { details } : {}) } });
}

type Range = { start: number; end: number };

/** A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range within `size` bytes, or null when unsatisfiable or malformed. */
export function parseRange(header: string, size: number): Range | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return null;
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? Infinity : Number(m[2]);
  if (last < start || start >= size) return null;
  return { start, end: Math.min(last, size - 1) };
}

async function handleGet(store: LocalBlobStore, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const grant = store.authorize(request.method, request.url);
  if (!grant.ok) return sendError(reply, grant.code, grant.message);
  let fh: FileHandle;
  try {
    fh = await open(store.pathOf(grant.key), 'r');
  } catch (err) {
    if (isMissing(err)) return sendError(reply, 'not_found', 'no such blob');
    throw err;
  }
  let streaming = false;
  try {
    const s = await fh.stat();
    if (!s.isFile()) return sendError(reply, 'not_found', 'no such blob');
    reply
      .header('accept-ranges', 'bytes')
      .header('etag', `"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}"`)
      .header('cache-control', 'private, no-store');
    let range: Range | null = null;
    const rangeHeader = request.headers.range;
    if (rangeHeader !== undefined) {
      range = parseRange(rangeHeader, s.size);
      if (range === null) {
        reply.header('content-range', `bytes */${s.size}`);
        return sendError(reply, 'bad_request', 'range not satisfiable (one range within the blob, e.g. bytes=0-1023)', { size: s.size }, 416);
      }
      reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${s.size}`);
    }
    const length = range ? range.end - range.start + 1 : s.size;
    reply.header('content-type', 'application/octet-stream').header('content-length', String(length));
    if (request.method === 'HEAD' || length === 0) return reply.send();
    // Reads of 1 MiB: blobs are megabytes, and 64 KiB reads cost a syscall and a write each.
    const stream = fh.createReadStream({ highWaterMark: 1 << 20, ...(range ? { start: range.start, end: range.end } : {}) });
    streaming = true;
    return reply.send(stream);
  } finally {
    if (!streaming) await fh.close().catch(() => {});
  }
}

async function handlePut(store: LocalBlobStore, request: FastifyRequest, reply: FastifyReply, idleMs: number): Promise<FastifyReply> {
  const grant = store.authorize(request.method, request.url);
  if (!grant.ok) {
    if (request.headers['content-length'] !== '0') reply.header('connection', 'close');
    return sendError(reply, grant.code, grant.message);
  }
  const max = grant.maxBytes ?? 0;
  const declared = request.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) {
    // Answer before reading anything, and close the connection rather than read the rest.
    reply.header('connection', 'close');
    return sendError(reply, 'payload_too_large', `the body exceeds the limit of ${max} bytes`, { max_bytes: max });
  }
  // A sealed key, or a grant that no longer stands: refused before a byte of the body is read.
  const refusal = await store.writeRefusal(grant.key, grant.writeGrant);
  if (refusal !== null) return sendError(reply.header('connection', 'close'), 'forbidden', refusal);
  const body = (request.body as Readable | undefined) ?? request.raw;
  try {
    if (grant.op === 'part') {
      const etag = await store.receivePart(grant.key, grant.uploadId!, grant.partNumber!, body, max, idleMs);
      return reply.code(200).header('etag', etag).send({ key: grant.key, part: grant.partNumber, etag });
    }
    const bytes = await store.receive(grant.key, body, max, { grant: grant.writeGrant, idleMs });
    return reply.code(200).send({ key: grant.key, bytes });
  } catch (err) {
    if (err instanceof WriteRefusedError) return sendError(reply.header('connection', 'close'), 'forbidden', err.message);
    if (err instanceof MultipartError) return sendError(reply.header('connection', 'close'), 'not_found', err.message);
    if (err instanceof TooLargeError) {
      reply.header('connection', 'close');
      return sendError(reply, 'payload_too_large', err.message, { max_bytes: max });
    }
    if (err instanceof AbortedError) return sendError(reply.header('connection', 'close'), 'bad_request', err.message);
    if (err instanceof StalledError) return sendError(reply.header('connection', 'close'), 'bad_request', err.message, { idle_s: err.idleMs / 1000 }, 408);
    const code = errnoCode(err);
    if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST' || code === 'ENOTEMPTY') {
      return sendError(reply, 'conflict', 'the key clashes with another blob (a blob cannot also be a prefix of keys)');
    }
    throw err;
  }
}

export interface LocalBlobRouteOptions {
  /**
   * The upload deadline: an upload whose body delivers no byte for this many milliseconds is
   * aborted, answered 408 and its temporary file removed. Default DEFAULT_UPLOAD_IDLE_MS (60 s).
   */
  uploadIdleMs?: number;
}

/**
 * Serves `store` on `app` at /v1/blobs/* (GET, HEAD, PUT). The routes live in their own
 * encapsulated plugin with a streaming body parser for every content type, so the server's JSON
 * parser and body limit do not apply to them: the signed URL's `max` is the limit. Call before
 * the server is ready.
 */
export function registerLocalBlobRoutes(app: FastifyInstance, store: LocalBlobStore, opts: LocalBlobRouteOptions = {}): void {
  const idleMs = opts.uploadIdleMs ?? DEFAULT_UPLOAD_IDLE_MS;
  if (!(Number.isFinite(idleMs) && idleMs > 0)) throw new Error(`registerLocalBlobRoutes: uploadIdleMs must be positive, got ${idleMs}`);
  void app.register(async (scope) => {
    await store.init();
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    scope.setErrorHandler((err: FastifyError | ApiError, request, reply) => {
      // Refusals of the server's own hooks (the front door) keep their code.
      if (err instanceof ApiError) return sendError(reply, err.code, err.message, err.details);
      const status = err.statusCode ?? 500;
      if (status >= 500) {
        request.log.error({ err }, 'blob request failed');
        return sendError(reply, 'internal', 'internal error');
      }
      return sendError(reply, status === 413 ? 'payload_too_large' : 'bad_request', err.message, undefined, status);
    });
    // The table's blob_url rows (a GET answers HEAD too).
    const { blobGet, blobPut } = ROUTES;
    scope.route({ method: [blobGet.method, 'HEAD'], url: blobGet.path, config: { access: blobGet.access }, exposeHeadRoute: false, handler: (request, reply) => handleGet(store, request, reply) });
    scope.route({ method: blobPut.method, url: blobPut.path, config: { access: blobPut.access }, handler: (request, reply) => handlePut(store, request, reply, idleMs) });
  });
}
