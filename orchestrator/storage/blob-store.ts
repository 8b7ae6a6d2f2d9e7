// Where every tensor lives. Miners never see credentials: the orchestrator hands them URLs that
// allow exactly one operation on exactly one key, for a short time, up to a size limit.

export type BlobOp = 'get' | 'put';

export interface PresignOptions {
  /** Seconds the URL stays valid. */
  expiresInS: number;
  /** For 'put': the largest body the URL accepts. */
  maxBytes?: number;
  /**
   * For 'put': the exact size of the body, when known. S3 can only enforce a size through the
   * signed Content-Length, which fixes it exactly; with maxBytes alone an S3 URL accepts any size
   * (up to S3's own 5 GiB) and the size must be checked (head) once the upload is reported.
   * The local store treats it as maxBytes.
   */
  exactBytes?: number;
  /**
   * For 'put': the write grant (a lease's id) the URL belongs to. The local store signs it into
   * the URL and asks its write gate whether the grant still stands before it takes a body; S3
   * cannot revoke a URL and ignores it (readers check the accepted digest instead).
   */
  grant?: string;
}

export interface BlobInfo {
  bytes: number;
}

/** An upload in parts: one presigned URL per part, parts of `partBytes` (the last may be shorter). */
export interface MultipartPlan {
  uploadId: string;
  partBytes: number;
  /** urls[i] takes part number i + 1. */
  urls: string[];
}

/** A part the uploader sent: its number (from 1) and the ETag the store answered with. */
export interface CompletedPart {
  number: number;
  etag: string;
}

/** S3's limit, kept by every store so that a plan works on all of them. */
export const MAX_PARTS = 10_000;

/** The part size and count for a blob of at most `maxBytes`, parts of at least `partBytes`. */
export function planParts(maxBytes: number, partBytes: number): { partBytes: number; parts: number } {
  const size = Math.max(partBytes, Math.ceil(maxBytes / MAX_PARTS));
  return { partBytes: size, parts: Math.max(1, Math.ceil(maxBytes / size)) };
}

export interface BlobStore {
  /** Uploads that may be larger than this are sent in parts of this size (startMultipart). */
  readonly partBytes: number;
  /** A URL that allows `op` on `key` only, until it expires. */
  presign(op: BlobOp, key: string, opts: PresignOptions): Promise<string>;
  /** Begins an upload in parts of a blob of at most `maxBytes`, with a URL for each part (`grant`: as for presign). */
  startMultipart(key: string, opts: { expiresInS: number; maxBytes: number; grant?: string }): Promise<MultipartPlan>;
  /**
   * Joins the parts into the blob (atomically: readers see no blob or the whole one). Throws
   * MultipartError when the parts are not what the plan asked for or the upload is unknown.
   */
  completeMultipart(key: string, uploadId: string, parts: CompletedPart[]): Promise<void>;
  /** Drops an unfinished upload in parts and what it stored. */
  abortMultipart(key: string, uploadId: string): Promise<void>;
  /** Size of a stored blob, or null when there is none. */
  head(key: string): Promise<BlobInfo | null>;
  get(key: string): Promise<Uint8Array>;
  /** Bytes [start, end) of a stored blob (fewer where it is shorter); BlobNotFoundError when none. */
  getRange(key: string, start: number, end: number): Promise<Uint8Array>;
  put(key: string, data: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * The upload under `key` is being accepted: no later write may change it (until it is deleted).
   * The local store refuses every later write and answers false when nothing is stored (nothing
   * sealed); S3 cannot (a presigned URL stays valid until it expires) and answers true, so there
   * the digest recorded on acceptance is what protects readers.
   */
  seal(key: string): Promise<boolean>;
}

/** Keys are relative paths of safe segments: letters, digits, '.', '_', '-' separated by '/'. */
export const BLOB_KEY = /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

export function checkKey(key: string): string {
  if (key.length > 512 || !BLOB_KEY.test(key)) throw new Error(`invalid blob key '${key.slice(0, 80)}'`);
  return key;
}

/** Thrown by BlobStore.get when there is no blob under the key. */
export class BlobNotFoundError extends Error {
  readonly code = 'not_found';
  constructor(readonly key: string) {
    super(`no blob under key '${key.slice(0, 80)}'`);
    this.name = 'BlobNotFoundError';
  }
}

/** An upload in parts that cannot be completed as reported: the uploader's fault, not the store's. */
export class MultipartError extends Error {
  readonly code = 'bad_multipart';
  constructor(message: string) {
    super(message);
    this.name = 'MultipartError';
  }
}
