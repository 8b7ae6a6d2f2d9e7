// The embedded blob store: a directory on disk, served by the orchestrator's own HTTP server (local-routes.ts).
// Miners reach it only through URLs the orchestrator signs (HMAC-SHA256 over the operation, the
// key, the expiry and, for uploads, the size limit), so the directory itself is never exposed.
//
//   GET|HEAD /v1/blobs/KEY?op=get&exp=MS&sig=HEX          the blob (a single byte range allowed)
//   PUT      /v1/blobs/KEY?op=put&exp=MS&max=BYTES[&grant=G]&sig=HEX  stores the body, at most BYTES long
//   PUT      /v1/blobs/KEY?op=part&exp=MS&max=BYTES&upload=ID&part=N[&grant=G]&sig=HEX
//                                                          part N of upload ID (answers its ETag)
//
// What was accepted cannot change: the orchestrator seals a key when it accepts the upload
// (seal), after which no write to it is kept, whatever URL it comes with. An upload URL may name a
// write grant (the lease it belongs to); the store then asks its write gate, before it takes the
// body and again before it keeps it, whether the grant still stands, so a lease's URLs stop
// working once it is completed, released or handed to someone else.
//
// Uploads stream into a temporary file in the store's directory and are renamed into place only
// when complete and within the limit. However else an upload ends (cut off or reset by the client,
// malformed, over the limit, or stalled past the upload deadline) its file handle is closed and
// its temporary file removed.
// Uploads in parts keep their parts in a directory of their own until the orchestrator joins them
// (completeMultipart), checking each part's size and MD5 ETag, into the blob in one rename.
//
// A process on the store's own machine (a miner of a local swarm) may open the same directory as
// a guest: it reads and writes blobs there directly, with the same atomic writes, and skips the
// HTTP hop that costs both ends more CPU than the file itself. The directory names itself with a
// random id (its '~store-id' file, also in /v1/health) so that a guest can tell it opened the
// orchestrator's store and not another.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { chmod, mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { API_PREFIX, type ErrorCode } from '../../orchestrator-client/protocol.ts';
import { isMissing, errnoCode } from './fs-errors.ts';
import { spool } from './spool.ts';
import { BLOB_KEY, BlobNotFoundError, checkKey, MultipartError, planParts, type BlobInfo, type BlobOp, type BlobStore, type CompletedPart, type MultipartPlan, type PresignOptions } from './blob-store.ts';

/** Where the blob routes live on the orchestrator's server. */
export const LOCAL_BLOB_ROUTE = `${API_PREFIX}/blobs/`;

/** Temporary upload files: '~' never appears in a key, so they cannot collide with a blob. */
const TEMP_PREFIX = '~upload-';
const TEMP_SUFFIX = '.part';
/** An upload whose body delivers no byte for this long is aborted (see LocalBlobRouteOptions). */
export const DEFAULT_UPLOAD_IDLE_MS = 60_000;
/** The directory of an upload in parts: '~multipart-ID', ID 32 hex digits. */
const MULTIPART_PREFIX = '~multipart-';
const UPLOAD_ID = /^[0-9a-f]{32}$/;
/** How long an unfinished upload in parts is kept after its URLs expire. */
const MULTIPART_GRACE_MS = 3600_000;
/** The file naming the store: 32 hex digits, written once when the directory is created. */
const STORE_ID_FILE = '~store-id';
const STORE_ID = /^[0-9a-f]{32}$/;

interface MultipartMeta {
  key: string;
  part_bytes: number;
  max_bytes: number;
  /** When its part URLs expire (ms since the epoch). */
  expires: number;
  /** The write grant its URLs name, if any. */
  grant?: string;
}

/**
 * Whether an upload to `key` under `grant` may be taken now: null when it may, else why not
 * (the orchestrator's answer: orchestrator/write-grants.ts).
 */
export type WriteGate = (key: string, grant: string | undefined) => Promise<string | null>;

/** A write the store will not keep: the key is sealed, or its grant no longer stands. */
export class WriteRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WriteRefusedError';
  }
}

/** A write grant as it may appear in a URL: a lease id (the protocol's id grammar). */
const GRANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface LocalBlobStoreOptions {
  /** The directory holding the blobs (created when missing). */
  dir: string;
  /** Where the orchestrator's server is reached, e.g. http://127.0.0.1:8080; see setBaseUrl. */
  baseUrl?: string;
  /** The URL signing key. 32 random bytes by default; pass one in to keep URLs valid across restarts. */
  secret?: Buffer;
  /** Size limit of an upload URL presigned without maxBytes. Default 64 MiB. */
  defaultMaxBytes?: number;
  /** Uploads that may exceed this go in parts of this size. Default 64 MiB. */
  partBytes?: number;
  /** Clock, milliseconds since the Unix epoch (for tests). */
  now?: () => number;
  /**
   * 'guest' for a process that shares the directory with the orchestrator that owns it: it reads
   * and writes blobs but never sweeps temporary files (they may be the owner's uploads in flight)
   * and never creates the directory or its id. Default 'owner'.
   */
  role?: 'owner' | 'guest';
}

/** Why a request for a blob URL is refused. */
export interface BlobUrlRefusal {
  ok: false;
  code: ErrorCode;
  message: string;
}

/** A request for a blob URL that carries a valid signature. */
export interface BlobUrlGrant {
  ok: true;
  op: BlobOp | 'part';
  key: string;
  /** For 'put' and 'part': the largest body accepted. */
  maxBytes: number | null;
  /** For 'part': which upload, which part. */
  uploadId?: string;
  partNumber?: number;
  /** For 'put' and 'part': the write grant the URL names. */
  writeGrant?: string;
}

export class LocalBlobStore implements BlobStore {
  readonly dir: string;
  private base: string | null = null;
  private readonly secret: Buffer;
  private readonly defaultMaxBytes: number;
  readonly partBytes: number;
  private readonly now: () => number;
  private readonly role: 'owner' | 'guest';
  private ready: Promise<void> | null = null;
  private storeId: string | null = null;
  private gate: WriteGate | null = null;
  /** Keys sealed by this process (a sealed file is also made read-only, which outlives it). */
  private readonly sealed = new Set<string>();
  /** Per-key queues: a seal and a commit of the same key never interleave. */
  private readonly locks = new Map<string, Promise<void>>();

  constructor(opts: LocalBlobStoreOptions) {
    if (!opts.dir) throw new Error('LocalBlobStore: dir is required');
    this.dir = resolve(opts.dir);
    this.secret = opts.secret ?? randomBytes(32);
    if (this.secret.length < 16) throw new Error('LocalBlobStore: the secret must be at least 16 bytes');
    this.defaultMaxBytes = opts.defaultMaxBytes ?? 64 * 2 ** 20;
    if (!Number.isSafeInteger(this.defaultMaxBytes) || this.defaultMaxBytes < 0) throw new Error('LocalBlobStore: defaultMaxBytes must be a non-negative integer');
    this.partBytes = opts.partBytes ?? 64 * 2 ** 20;
    if (!Number.isSafeInteger(this.partBytes) || this.partBytes < 1) throw new Error('LocalBlobStore: partBytes must be a positive integer');
    this.now = opts.now ?? Date.now;
    this.role = opts.role ?? 'owner';
    if (opts.baseUrl !== undefined) this.setBaseUrl(opts.baseUrl);
  }

  /** Sets where URLs point (once the server listens and its address is known). */
  setBaseUrl(baseUrl: string): void {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new Error(`LocalBlobStore: baseUrl '${baseUrl}' is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`LocalBlobStore: baseUrl '${baseUrl}' must be http or https`);
    if (url.search || url.hash) throw new Error(`LocalBlobStore: baseUrl '${baseUrl}' must not have a query or fragment`);
    this.base = baseUrl.replace(/\/+$/, '');
  }

  get baseUrl(): string | null {
    return this.base;
  }

  /** Who decides whether an upload under a grant is still taken (the orchestrator's write grants). */
  setWriteGate(gate: WriteGate): void {
    this.gate = gate;
  }

  /** Why an upload to `key` under `grant` is not taken now, or null (sealed keys never are). */
  async writeRefusal(key: string, grant: string | undefined): Promise<string | null> {
    if (await this.isSealed(key)) return `${key} was accepted already: it cannot be written again`;
    return this.gate ? this.gate(key, grant) : null;
  }

  /** Refuses every later write to `key` (its upload is being accepted); false when nothing is stored there. */
  async seal(key: string): Promise<boolean> {
    const path = this.pathOf(key);
    return this.locked(key, async () => {
      try {
        await chmod(path, 0o444);
      } catch (err) {
        if (isMissing(err)) return false;
        throw err;
      }
      this.sealed.add(key);
      return true;
    });
  }

  private async isSealed(key: string): Promise<boolean> {
    if (this.sealed.has(key)) return true;
    // Sealed by another process (or before a restart): the file was made read-only.
    const st = await stat(this.pathOf(key)).catch(() => null);
    return st !== null && st.isFile() && (st.mode & 0o200) === 0;
  }

  private async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chain = before.then(() => mine);
    this.locks.set(key, chain);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === chain) this.locks.delete(key);
    }
  }

  /**
   * The owner creates the directory and its id, and removes temporary files that crashed uploads
   * left behind; a guest reads the id of a store that must already exist.
   */
  init(): Promise<void> {
    this.ready ??= (async () => {
      if (this.role === 'guest') {
        this.storeId = await readStoreId(this.dir);
        if (this.storeId === null) throw new Error(`${this.dir} is not a blob store (it has no readable ${STORE_ID_FILE})`);
        return;
      }
      await mkdir(this.dir, { recursive: true });
      for (const name of await readdir(this.dir)) {
        if (name.startsWith(TEMP_PREFIX) && name.endsWith(TEMP_SUFFIX)) await unlink(join(this.dir, name)).catch(() => {});
      }
      await this.sweepMultipart();
      this.storeId = await readStoreId(this.dir);
      if (this.storeId === null) {
        // Written whole and renamed into place: a crash leaves no id or a complete one.
        const id = randomBytes(16).toString('hex');
        const tmp = join(this.dir, `${TEMP_PREFIX}${randomBytes(12).toString('hex')}${TEMP_SUFFIX}`);
        await writeFile(tmp, id, { flag: 'wx' });
        await rename(tmp, join(this.dir, STORE_ID_FILE));
        this.storeId = id;
      }
    })();
    return this.ready;
  }

  /** The store's id: random, fixed when its directory was created, the same for every process that opens it. */
  async id(): Promise<string> {
    await this.init();
    return this.storeId!;
  }

  /** Removes uploads in parts whose URLs expired more than an hour ago (abandoned). */
  private async sweepMultipart(): Promise<void> {
    for (const name of await readdir(this.dir)) {
      if (!name.startsWith(MULTIPART_PREFIX)) continue;
      const meta = await this.multipartMeta(name.slice(MULTIPART_PREFIX.length)).catch(() => null);
      if (meta === null || meta.expires + MULTIPART_GRACE_MS < this.now()) await rm(join(this.dir, name), { recursive: true, force: true });
    }
  }

  private multipartDir(uploadId: string): string {
    if (!UPLOAD_ID.test(uploadId)) throw new MultipartError('invalid upload id');
    return join(this.dir, MULTIPART_PREFIX + uploadId);
  }

  /** The record of an upload in parts, or null when there is none (completed, aborted, swept). */
  private async multipartMeta(uploadId: string): Promise<MultipartMeta | null> {
    try {
      return JSON.parse(await readFile(join(this.multipartDir(uploadId), 'meta.json'), 'utf8')) as MultipartMeta;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async startMultipart(key: string, opts: { expiresInS: number; maxBytes: number; grant?: string }): Promise<MultipartPlan> {
    checkKey(key);
    if (this.base === null) throw new Error('LocalBlobStore: no baseUrl set (call setBaseUrl once the server listens)');
    if (!(Number.isFinite(opts.expiresInS) && opts.expiresInS > 0)) throw new Error(`presign: expiresInS must be positive, got ${opts.expiresInS}`);
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 0) throw new Error(`startMultipart: maxBytes must be a non-negative integer, got ${opts.maxBytes}`);
    await this.init();
    const { partBytes, parts } = planParts(opts.maxBytes, this.partBytes);
    const uploadId = randomBytes(16).toString('hex');
    const exp = Math.floor(this.now() + opts.expiresInS * 1000);
    const dir = this.multipartDir(uploadId);
    await mkdir(dir);
    if (opts.grant !== undefined && !GRANT.test(opts.grant)) throw new Error(`startMultipart: invalid grant '${opts.grant.slice(0, 40)}'`);
    const meta: MultipartMeta = { key, part_bytes: partBytes, max_bytes: opts.maxBytes, expires: exp, ...(opts.grant !== undefined ? { grant: opts.grant } : {}) };
    await writeFile(join(dir, 'meta.json'), JSON.stringify(meta), { flag: 'wx' });
    const urls = Array.from({ length: parts }, (_, i) => {
      const part = String(i + 1);
      const max = String(partBytes);
      const query = new URLSearchParams({ op: 'part', exp: String(exp), max, upload: uploadId, part });
      if (opts.grant !== undefined) query.set('grant', opts.grant);
      query.set('sig', this.sign('part', key, String(exp), max, uploadId, part, ...grantField(opts.grant)).toString('hex'));
      return `${this.base}${LOCAL_BLOB_ROUTE}${key}?${query.toString()}`;
    });
    return { uploadId, partBytes, urls };
  }

  /**
   * Receives part `partNumber` of `uploadId`; answers its ETag (the MD5 of its bytes, as S3 does).
   * The upload is aborted when its body delivers no byte for `idleMs`.
   */
  async receivePart(key: string, uploadId: string, partNumber: number, body: Readable, maxBytes: number, idleMs = DEFAULT_UPLOAD_IDLE_MS): Promise<string> {
    const meta = await this.multipartMeta(uploadId);
    if (meta === null || meta.key !== key) throw new MultipartError('no such upload in parts (completed, aborted or expired)');
    const dir = this.multipartDir(uploadId);
    const tmp = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}${TEMP_SUFFIX}`);
    const md5 = createHash('md5');
    await spool({ fh: await open(tmp, 'wx', 0o644), tmp }, body, { maxBytes, idleMs, hash: md5 }, () => rename(tmp, join(dir, String(partNumber))));
    return `"${md5.digest('hex')}"`;
  }

  async completeMultipart(key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
    checkKey(key);
    const meta = await this.multipartMeta(uploadId);
    if (meta === null || meta.key !== key) throw new MultipartError(`${key}: no such upload in parts (completed, aborted or expired)`);
    const dir = this.multipartDir(uploadId);
    const sorted = [...parts].sort((a, b) => a.number - b.number);
    if (sorted.length === 0 || sorted.some((p, i) => p.number !== i + 1)) throw new MultipartError(`${key}: the parts must be numbered 1..n, each once`);
    const sizes: number[] = [];
    for (const p of sorted) {
      const size = await stat(join(dir, String(p.number))).then((st) => st.size, () => null);
      if (size === null) throw new MultipartError(`${key}: part ${p.number} was never uploaded`);
      sizes.push(size);
    }
    const short = sizes.findIndex((size, i) => i < sizes.length - 1 && size !== meta.part_bytes);
    if (short >= 0) throw new MultipartError(`${key}: part ${short + 1} holds ${sizes[short]} bytes; every part but the last must hold ${meta.part_bytes}`);
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total > meta.max_bytes) throw new MultipartError(`${key}: the parts hold ${total} bytes, more than the ${meta.max_bytes} allowed`);

    const { fh, tmp } = await this.openTemp();
    try {
      for (const p of sorted) {
        const data = await readFile(join(dir, String(p.number)));
        const etag = createHash('md5').update(data).digest('hex');
        if (p.etag.replace(/^"|"$/g, '') !== etag) throw new MultipartError(`${key}: part ${p.number}'s ETag is not that of the part stored`);
        await fh.write(data);
      }
      await fh.sync();
      await fh.close();
      await this.commit(tmp, key, meta.grant);
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await rm(dir, { recursive: true, force: true });
  }

  async abortMultipart(_key: string, uploadId: string): Promise<void> {
    await rm(this.multipartDir(uploadId), { recursive: true, force: true });
  }

  async presign(op: BlobOp, key: string, opts: PresignOptions): Promise<string> {
    if (op !== 'get' && op !== 'put') throw new Error(`presign: unknown operation '${String(op)}'`);
    checkKey(key);
    if (this.base === null) throw new Error('LocalBlobStore: no baseUrl set (call setBaseUrl once the server listens)');
    if (!(Number.isFinite(opts.expiresInS) && opts.expiresInS > 0)) throw new Error(`presign: expiresInS must be positive, got ${opts.expiresInS}`);
    const exp = String(Math.floor(this.now() + opts.expiresInS * 1000));
    let max = '';
    if (op === 'put') {
      if (opts.exactBytes !== undefined && opts.maxBytes !== undefined && opts.exactBytes > opts.maxBytes) {
        throw new Error(`presign: exactBytes ${opts.exactBytes} exceeds maxBytes ${opts.maxBytes}`);
      }
      const maxBytes = opts.exactBytes ?? opts.maxBytes ?? this.defaultMaxBytes;
      if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new Error(`presign: maxBytes must be a non-negative integer, got ${maxBytes}`);
      max = String(maxBytes);
    }
    const grant = op === 'put' ? opts.grant : undefined;
    if (grant !== undefined && !GRANT.test(grant)) throw new Error(`presign: invalid grant '${grant.slice(0, 40)}'`);
    const query = new URLSearchParams({ op, exp });
    if (op === 'put') query.set('max', max);
    if (grant !== undefined) query.set('grant', grant);
    query.set('sig', this.sign(op, key, exp, max, ...grantField(grant)).toString('hex'));
    return `${this.base}${LOCAL_BLOB_ROUTE}${key}?${query.toString()}`;
  }

  /**
   * Checks a request for a blob URL: `method` is the HTTP method, `rawUrl` the request target as
   * received (path and query, not decoded). Keys are never percent-decoded: a key can only hold
   * characters that need no encoding, so anything encoded is refused.
   */
  authorize(method: string, rawUrl: string): BlobUrlGrant | BlobUrlRefusal {
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    if (!path.startsWith(LOCAL_BLOB_ROUTE)) return refuse('bad_request', 'not a blob URL');
    const key = path.slice(LOCAL_BLOB_ROUTE.length);
    if (key.length > 512 || !BLOB_KEY.test(key)) return refuse('bad_request', 'invalid blob key');

    const params = new Map<string, string>();
    for (const [name, value] of new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1))) {
      if (params.has(name)) return refuse('bad_request', `repeated query parameter '${name.slice(0, 20)}'`);
      if (!['op', 'exp', 'max', 'sig', 'upload', 'part', 'grant'].includes(name)) return refuse('bad_request', `unknown query parameter '${name.slice(0, 20)}'`);
      params.set(name, value);
    }
    const op = params.get('op');
    const exp = params.get('exp');
    const sig = params.get('sig');
    const max = params.get('max');
    const upload = params.get('upload');
    const part = params.get('part');
    const grant = params.get('grant');
    if (op !== 'get' && op !== 'put' && op !== 'part') return refuse('bad_request', "missing or invalid 'op'");
    if (grant !== undefined && (op === 'get' || !GRANT.test(grant))) return refuse('bad_request', "invalid 'grant'");
    if (exp === undefined || !/^\d{1,15}$/.test(exp)) return refuse('bad_request', "missing or invalid 'exp'");
    if (sig === undefined || !/^[0-9a-f]{64}$/.test(sig)) return refuse('bad_request', "missing or invalid 'sig'");
    if (op !== 'get' ? max === undefined || !/^\d{1,15}$/.test(max) : max !== undefined) return refuse('bad_request', "missing or invalid 'max'");
    if (op === 'part' ? upload === undefined || !UPLOAD_ID.test(upload) : upload !== undefined) return refuse('bad_request', "missing or invalid 'upload'");
    if (op === 'part' ? part === undefined || !/^[1-9]\d{0,4}$/.test(part) || Number(part) > 10_000 : part !== undefined) return refuse('bad_request', "missing or invalid 'part'");

    if (method !== 'PUT' && method !== 'GET' && method !== 'HEAD') return refuse('bad_request', `method ${method} is not allowed`);
    if ((method === 'PUT') !== (op !== 'get')) return refuse('forbidden', `this URL allows ${op}, not ${method === 'PUT' ? 'put' : 'get'}`);
    const signature = op === 'part' ? this.sign(op, key, exp, max ?? '', upload, part, ...grantField(grant)) : this.sign(op, key, exp, max ?? '', ...grantField(grant));
    if (!timingSafeEqual(signature, Buffer.from(sig, 'hex'))) return refuse('forbidden', 'invalid signature');
    if (Number(exp) <= this.now()) return refuse('forbidden', 'this URL has expired');
    const granted: BlobUrlGrant = { ok: true, op, key, maxBytes: max === undefined ? null : Number(max), ...(grant !== undefined ? { writeGrant: grant } : {}) };
    if (op === 'part') Object.assign(granted, { uploadId: upload, partNumber: Number(part) });
    return granted;
  }

  private sign(op: string, key: string, exp: string, max: string, ...more: (string | undefined)[]): Buffer {
    return createHmac('sha256', this.secret).update([op, key, exp, max, ...more].join('\n')).digest();
  }

  /** The file holding `key` (the key is checked first). */
  pathOf(key: string): string {
    checkKey(key);
    const path = resolve(this.dir, key);
    if (!path.startsWith(this.dir + sep)) throw new Error(`invalid blob key '${key.slice(0, 80)}'`);
    return path;
  }

  async head(key: string): Promise<BlobInfo | null> {
    try {
      const s = await stat(this.pathOf(key));
      return s.isFile() ? { bytes: s.size } : null;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      return new Uint8Array(await readFile(this.pathOf(key)));
    } catch (err) {
      if (isMissing(err) || errnoCode(err) === 'EISDIR') throw new BlobNotFoundError(key);
      throw err;
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    let fh: FileHandle;
    try {
      fh = await open(this.pathOf(key), 'r');
    } catch (err) {
      if (isMissing(err) || errnoCode(err) === 'EISDIR') throw new BlobNotFoundError(key);
      throw err;
    }
    try {
      const buf = new Uint8Array(Math.max(0, end - start));
      const { bytesRead } = await fh.read(buf, 0, buf.length, start);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  /** Stores `data` under `key` directly (this process's own writes, and a guest's): sealed keys refuse it too. */
  async put(key: string, data: Uint8Array): Promise<void> {
    this.pathOf(key);
    const { fh, tmp } = await this.openTemp();
    try {
      await fh.writeFile(data);
      await fh.sync();
      await fh.close();
      await this.commit(tmp, key, null);
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  /** Deletes the blob (a sealed one too: the key may then be written again). */
  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    await this.locked(key, async () => {
      try {
        await unlink(path);
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
      this.sealed.delete(key);
    });
  }

  /** Every stored key under `prefix` (a key prefix, e.g. 'run1/'), sorted. */
  async list(prefix = ''): Promise<string[]> {
    const keys: string[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isMissing(err)) return;
        throw err;
      }
      for (const e of entries) {
        const key = rel + e.name;
        if (!BLOB_KEY.test(key)) continue; // temporary files and anything else that is not a key
        if (e.isDirectory()) await walk(join(dir, e.name), key + '/');
        else if (e.isFile() && key.startsWith(prefix)) keys.push(key);
      }
    };
    await walk(this.dir, '');
    return keys.sort();
  }

  private async openTemp(): Promise<{ fh: FileHandle; tmp: string }> {
    await this.init();
    const tmp = join(this.dir, `${TEMP_PREFIX}${randomBytes(12).toString('hex')}${TEMP_SUFFIX}`);
    return { fh: await open(tmp, 'wx', 0o644), tmp };
  }

  /**
   * Moves a complete temporary file into place (atomically: readers see the old blob or the new
   * one), unless the key is sealed or, for an upload through a URL (`grant` not null), the write
   * gate no longer takes it. Under the key's lock, so a seal cannot slip in between.
   */
  private async commit(tmp: string, key: string, grant: string | undefined | null): Promise<void> {
    const path = this.pathOf(key);
    await this.locked(key, async () => {
      const refusal = grant === null ? ((await this.isSealed(key)) ? `${key} was accepted already: it cannot be written again` : null) : await this.writeRefusal(key, grant);
      if (refusal !== null) throw new WriteRefusedError(refusal);
      await mkdir(dirname(path), { recursive: true });
      await rename(tmp, path);
    });
  }

  /**
   * Receives an upload through a URL naming `grant`: the body goes to a temporary file, renamed
   * into place when complete. The upload is aborted when its body delivers no byte for `idleMs`.
   */
  async receive(key: string, body: Readable, maxBytes: number, opts: { grant?: string; idleMs?: number } = {}): Promise<number> {
    this.pathOf(key);
    const temp = await this.openTemp();
    return spool(temp, body, { maxBytes, idleMs: opts.idleMs ?? DEFAULT_UPLOAD_IDLE_MS }, () => this.commit(temp.tmp, key, opts.grant));
  }
}

/** The grant's field of a URL's signed text: absent for URLs that name none (so their signatures stay as they were). */
function grantField(grant: string | undefined): string[] {
  return grant === undefined ? [] : [`grant=${grant}`];
}

function refuse(code: ErrorCode, message: string): BlobUrlRefusal {
  return { ok: false, code, message };
}

async function readStoreId(dir: string): Promise<string | null> {
  try {
    const id = (await readFile(join(dir, STORE_ID_FILE), 'utf8')).trim();
    return STORE_ID.test(id) ? id : null;
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

/**
 * The key and operation of a URL this kind of store signs ('get' or 'put'; null for anything
 * else, parts of an upload included). Only the path and `op` are read: the signature is the
 * server's to check, and a guest that holds the directory needs none.
 */
export function localBlobUrlKey(url: string): { key: string; op: BlobOp } | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (!u.pathname.startsWith(LOCAL_BLOB_ROUTE)) return null;
  const key = u.pathname.slice(LOCAL_BLOB_ROUTE.length);
  const op = u.searchParams.get('op');
  if ((op !== 'get' && op !== 'put') || key.length > 512 || !BLOB_KEY.test(key)) return null;
  return { key, op };
}

