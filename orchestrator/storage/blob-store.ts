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
}

export interface BlobInfo {
  bytes: number;
}

export interface BlobStore {
  /** A URL that allows `op` on `key` only, until it expires. */
  presign(op: BlobOp, key: string, opts: PresignOptions): Promise<string>;
  /** Size of a stored blob, or null when there is none. */
  head(key: string): Promise<BlobInfo | null>;
  get(key: string): Promise<Uint8Array>;
  /** Bytes [start, end) of a stored blob (fewer where it is shorter); BlobNotFoundError when none. */
  getRange(key: string, start: number, end: number): Promise<Uint8Array>;
  put(key: string, data: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
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
