// Choosing a blob store from one string (`local:DIR` or `s3://BUCKET[/PREFIX]`).
import { resolve } from 'node:path';
import { checkKey } from './blob-store.ts';
import { LocalBlobStore } from './local.ts';
import { S3BlobStore, type S3Credentials } from './s3.ts';

export interface OpenBlobStoreOptions {
  /** Uploads that may exceed this go in parts of this size (S3: at least 5 MiB). */
  partBytes?: number;
  // ---- local:DIR ----
  /** Where the orchestrator's server is reached; may also be set later with setBaseUrl. */
  baseUrl?: string;
  /** URL signing key; random by default (URLs then die with the process). */
  secret?: Buffer;
  /** Size limit of an upload URL presigned without maxBytes. */
  defaultMaxBytes?: number;
  now?: () => number;
  // ---- s3://BUCKET[/PREFIX] ----
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1 ('auto' for R2). */
  region?: string;
  /** Default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS S3 itself. */
  endpoint?: string;
  /** Default: true when an endpoint is set (MinIO needs it; R2 accepts it), false for AWS. */
  forcePathStyle?: boolean;
  /** Default: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, else the SDK's chain. */
  credentials?: S3Credentials;
  /** Environment to read AWS_* from (default process.env). */
  env?: Record<string, string | undefined>;
}

const USAGE = 'expected local:DIR or s3://BUCKET[/PREFIX]';

/** Opens the store `spec` names: `local:DIR` or `s3://BUCKET[/PREFIX]`. */
export async function openBlobStore(spec: string, opts: OpenBlobStoreOptions = {}): Promise<LocalBlobStore | S3BlobStore> {
  if (spec.startsWith('local:')) {
    const dir = spec.slice('local:'.length);
    if (dir.trim() === '') throw new Error(`blob store '${spec}': no directory given (${USAGE})`);
    const store = new LocalBlobStore({
      dir: resolve(dir),
      ...(opts.baseUrl !== undefined ? { baseUrl: opts.baseUrl } : {}),
      ...(opts.secret !== undefined ? { secret: opts.secret } : {}),
      ...(opts.defaultMaxBytes !== undefined ? { defaultMaxBytes: opts.defaultMaxBytes } : {}),
      ...(opts.now !== undefined ? { now: opts.now } : {}),
      ...(opts.partBytes !== undefined ? { partBytes: opts.partBytes } : {}),
    });
    await store.init();
    return store;
  }
  if (spec.startsWith('s3://')) {
    const rest = spec.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new Error(`blob store '${spec}': invalid bucket name '${bucket}' (3-63 lowercase letters, digits, '.' and '-')`);
    }
    if (prefix !== '') {
      try {
        checkKey(prefix);
      } catch {
        throw new Error(`blob store '${spec}': invalid prefix '${prefix}' (letters, digits, '.', '_', '-' separated by '/')`);
      }
    }
    const env = opts.env ?? process.env;
    const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v.trim());
    const endpoint = opts.endpoint ?? nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL);
    if (endpoint !== undefined) {
      let url: URL | null = null;
      try {
        url = new URL(endpoint);
      } catch {
        // reported below
      }
      if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
        throw new Error(`blob store '${spec}': endpoint '${endpoint}' is not an http(s) URL`);
      }
    }
    const region = opts.region ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? 'us-east-1';
    let credentials = opts.credentials;
    const accessKeyId = nonEmpty(env.AWS_ACCESS_KEY_ID);
    const secretAccessKey = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
    if (credentials === undefined && (accessKeyId !== undefined || secretAccessKey !== undefined)) {
      if (accessKeyId === undefined || secretAccessKey === undefined) {
        throw new Error(`blob store '${spec}': set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither`);
      }
      const sessionToken = nonEmpty(env.AWS_SESSION_TOKEN);
      credentials = { accessKeyId, secretAccessKey, ...(sessionToken !== undefined ? { sessionToken } : {}) };
    }
    return new S3BlobStore({
      bucket,
      ...(prefix !== '' ? { prefix } : {}),
      region,
      ...(endpoint !== undefined ? { endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? endpoint !== undefined,
      ...(credentials !== undefined ? { credentials } : {}),
      ...(opts.partBytes !== undefined ? { partBytes: opts.partBytes } : {}),
    });
  }
  throw new Error(`unknown blob store '${spec}': ${USAGE}`);
}
