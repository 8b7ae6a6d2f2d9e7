// Blobs in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO). Miners upload and download
// through presigned URLs, so the orchestrator's credentials never leave it.
//
// Size limits: S3 cannot check "at most N bytes" on a presigned PUT. When PresignOptions.exactBytes
// is given, the Content-Length is signed and S3 refuses any other size; with maxBytes alone the
// URL accepts any size and the caller checks the stored size (head) when the upload is reported.
// Servers that do not check signatures (s3rver, used by the tests) enforce neither.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { BlobNotFoundError, checkKey, MultipartError, planParts, type BlobInfo, type BlobOp, type BlobStore, type CompletedPart, type MultipartPlan, type PresignOptions } from './blob-store.ts';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3BlobStoreOptions {
  bucket: string;
  /** Keys are stored as PREFIX/KEY. */
  prefix?: string;
  /** 'auto' for Cloudflare R2. */
  region: string;
  /** For R2, MinIO and other S3-compatible services, e.g. https://ACCOUNT.r2.cloudflarestorage.com. */
  endpoint?: string;
  /** URLs of the form ENDPOINT/BUCKET/KEY rather than BUCKET.ENDPOINT/KEY (MinIO needs it). */
  forcePathStyle?: boolean;
  /** Default: the SDK's chain (environment variables, shared config files, instance roles). */
  credentials?: S3Credentials;
  /** Uploads that may exceed this go in parts of this size. Default 64 MiB; S3 needs at least 5 MiB. */
  partBytes?: number;
  /** Clock for signing URLs, milliseconds since the Unix epoch (for tests). */
  now?: () => number;
}

/** S3 refuses parts smaller than this (all but the last). */
export const S3_MIN_PART_BYTES = 5 * 2 ** 20;

/** Presigned URLs last at most a week (SigV4's limit). */
const MAX_EXPIRY_S = 7 * 24 * 3600;

export class S3BlobStore implements BlobStore {
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  readonly partBytes: number;
  private readonly now: () => number;

  constructor(opts: S3BlobStoreOptions) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(opts.bucket)) throw new Error(`S3BlobStore: invalid bucket name '${opts.bucket}'`);
    this.bucket = opts.bucket;
    const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
    if (prefix !== '') checkKey(prefix);
    this.prefix = prefix;
    this.now = opts.now ?? Date.now;
    this.partBytes = opts.partBytes ?? 64 * 2 ** 20;
    if (!Number.isSafeInteger(this.partBytes) || this.partBytes < S3_MIN_PART_BYTES) {
      throw new Error(`S3BlobStore: partBytes must be an integer of at least ${S3_MIN_PART_BYTES} (S3's smallest part), got ${opts.partBytes}`);
    }
    const config: S3ClientConfig = {
      region: opts.region,
      forcePathStyle: opts.forcePathStyle ?? false,
      // Newer SDKs add CRC32 checksums to every request (and to presigned PUT URLs), which many
      // S3-compatible servers refuse: only send them where the API requires one.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    if (opts.endpoint !== undefined) config.endpoint = opts.endpoint;
    if (opts.credentials !== undefined) config.credentials = opts.credentials;
    this.client = new S3Client(config);
  }

  /** The object key that holds `key`. */
  objectKey(key: string): string {
    checkKey(key);
    return this.prefix === '' ? key : `${this.prefix}/${key}`;
  }

  async presign(op: BlobOp, key: string, opts: PresignOptions): Promise<string> {
    const Key = this.objectKey(key);
    const expiresIn = this.expiry(opts.expiresInS);
    const signingDate = new Date(this.now());
    if (op === 'get') return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key }), { expiresIn, signingDate });
    if (op !== 'put') throw new Error(`presign: unknown operation '${String(op)}'`);
    const exact = opts.exactBytes;
    if (exact !== undefined) {
      if (!Number.isSafeInteger(exact) || exact < 0) throw new Error(`presign: exactBytes must be a non-negative integer, got ${exact}`);
      if (opts.maxBytes !== undefined && exact > opts.maxBytes) throw new Error(`presign: exactBytes ${exact} exceeds maxBytes ${opts.maxBytes}`);
    }
    // A signed Content-Length is the only size S3 enforces on a presigned PUT: it fixes the size.
    const command = new PutObjectCommand({ Bucket: this.bucket, Key, ...(exact !== undefined ? { ContentLength: exact } : {}) });
    return getSignedUrl(this.client, command, { expiresIn, signingDate, ...(exact !== undefined ? { signableHeaders: new Set(['content-length']) } : {}) });
  }

  /**
   * CreateMultipartUpload, and an UploadPart URL per part. Every part but the last has its
   * Content-Length signed; the last is only bounded by the size check on completion. Abandoned
   * uploads are best removed by a bucket lifecycle rule (AbortIncompleteMultipartUpload).
   */
  async startMultipart(key: string, opts: { expiresInS: number; maxBytes: number; grant?: string }): Promise<MultipartPlan> {
    const Key = this.objectKey(key);
    const expiresIn = this.expiry(opts.expiresInS);
    const { partBytes, parts } = planParts(opts.maxBytes, this.partBytes);
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ContentType: 'application/octet-stream' }));
    const uploadId = created.UploadId;
    if (!uploadId) throw new Error(`S3 gave no UploadId for ${key}`);
    const signingDate = new Date(this.now());
    const urls = await Promise.all(
      Array.from({ length: parts }, (_, i) => {
        const last = i === parts - 1;
        const command = new UploadPartCommand({ Bucket: this.bucket, Key, UploadId: uploadId, PartNumber: i + 1, ...(last ? {} : { ContentLength: partBytes }) });
        return getSignedUrl(this.client, command, { expiresIn, signingDate, ...(last ? {} : { signableHeaders: new Set(['content-length']) }) });
      }),
    );
    return { uploadId, partBytes, urls };
  }

  async completeMultipart(key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
    const Parts = [...parts].sort((a, b) => a.number - b.number).map((p) => ({ PartNumber: p.number, ETag: p.etag }));
    try {
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey(key), UploadId: uploadId, MultipartUpload: { Parts } }));
    } catch (err) {
      const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      // InvalidPart, InvalidPartOrder, EntityTooSmall, NoSuchUpload: what the uploader reported is wrong.
      const status = e.$metadata?.httpStatusCode ?? 500;
      if (status >= 400 && status < 500) throw new MultipartError(`${key}: ${e.name ?? 'error'}: ${e.message ?? ''}`.trim());
      throw err;
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey(key), UploadId: uploadId }));
    } catch (err) {
      if (!isNotFound(err) && (err as { name?: string }).name !== 'NoSuchUpload') throw err;
    }
  }

  private expiry(expiresInS: number): number {
    if (!(Number.isFinite(expiresInS) && expiresInS > 0)) throw new Error(`presign: expiresInS must be positive, got ${expiresInS}`);
    return Math.min(MAX_EXPIRY_S, Math.max(1, Math.ceil(expiresInS)));
  }

  async head(key: string): Promise<BlobInfo | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { bytes: out.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      if (!out.Body) return new Uint8Array(0);
      return await out.Body.transformToByteArray();
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(key);
      throw err;
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    if (end <= start) return new Uint8Array(0);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Range: `bytes=${start}-${end - 1}` }));
      return out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(key);
      // A range past the end of a blob.
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416) return new Uint8Array(0);
      throw err;
    }
  }

  /** One PutObject (S3 takes up to 5 GiB that way; @aws-sdk/lib-storage is not a dependency). */
  async put(key: string, data: Uint8Array): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: data, ContentLength: data.byteLength }));
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  /** S3 cannot revoke the presigned URLs it handed out: readers check the accepted digest instead. */
  async seal(key: string): Promise<boolean> {
    checkKey(key);
    return true;
  }

  /** Closes the client's connections. */
  close(): void {
    this.client.destroy();
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}
