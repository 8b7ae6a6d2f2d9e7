// What was accepted cannot change: every upload the orchestrator accepts is recorded with the
// SHA-256 its producer reported, and every reader is handed that digest with the blob's URL. A
// reader refuses other content; the orchestrator then hashes the stored blob itself, so that a
// refusal blames the producer only when the blob really differs from what was accepted. (The
// local store also seals a key on acceptance; S3 cannot revoke a presigned URL, so there the
// digest alone protects readers.)
import type { Kysely } from 'kysely';
import type { BlobRef } from '../orchestrator-client/protocol.ts';
import { blobSha256 } from '../orchestrator-client/transfer.ts';
import type { Database } from './db/schema.ts';
import { BlobNotFoundError, type BlobStore } from './storage/blob-store.ts';

export interface AcceptedBlob {
  key: string;
  run_id: string;
  sha256: string;
  bytes: number;
  /** The hotkey whose upload it is ('' for a blob accepted before digests were recorded). */
  producer: string;
}

/** Records an accepted upload (in the transaction that accepts it). */
export async function recordAccepted(db: Kysely<Database>, blob: AcceptedBlob, now: number): Promise<void> {
  await db
    .insertInto('blobs')
    .values({ ...blob, accepted_at: now })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
}

export async function acceptedBlob(db: Kysely<Database>, key: string): Promise<AcceptedBlob | null> {
  const row = await db.selectFrom('blobs').select(['key', 'run_id', 'sha256', 'bytes', 'producer']).where('key', '=', key).executeTakeFirst();
  return row ? { ...row, bytes: Number(row.bytes) } : null;
}

/** Forgets the records of deleted blobs. */
export async function forgetAccepted(db: Kysely<Database>, keys: string[]): Promise<void> {
  for (let at = 0; at < keys.length; at += 500) await db.deleteFrom('blobs').where('key', 'in', keys.slice(at, at + 500)).execute();
}

/** The SHA-256 of what the store holds under `key` now, or null when it holds nothing. */
async function storedDigest(store: BlobStore, key: string): Promise<string | null> {
  try {
    return blobSha256(await store.get(key));
  } catch (e) {
    if (e instanceof BlobNotFoundError) return null;
    throw e;
  }
}

/**
 * Whether the blob under `key` differs from what was accepted, hashed from the store by the
 * orchestrator itself, so a reader's claim blames nobody who is not at fault. `accepted` is null
 * for a key nobody's upload was accepted under (never changed, then).
 */
export async function changedSinceAccepted(db: Kysely<Database>, store: BlobStore, key: string): Promise<{ changed: boolean; accepted: AcceptedBlob | null; stored: string | null }> {
  const accepted = await acceptedBlob(db, key);
  if (!accepted) return { changed: false, accepted: null, stored: null };
  const stored = await storedDigest(store, key);
  return { changed: stored !== accepted.sha256, accepted, stored };
}

/**
 * Readers' references to accepted blobs: a signed GET URL, the size and the accepted digest of
 * each. A blob stored before digests were recorded is hashed once as it is now and recorded.
 */
export async function blobRefs(db: Kysely<Database>, store: BlobStore, runId: string, keys: string[], opts: { expiresInS: number; now: number }): Promise<BlobRef[]> {
  const known = new Map<string, AcceptedBlob>();
  const unique = [...new Set(keys)];
  for (let at = 0; at < unique.length; at += 500) {
    const rows = await db.selectFrom('blobs').select(['key', 'run_id', 'sha256', 'bytes', 'producer']).where('key', 'in', unique.slice(at, at + 500)).execute();
    for (const r of rows) known.set(r.key, { ...r, bytes: Number(r.bytes) });
  }
  const refs: BlobRef[] = [];
  for (const key of keys) {
    let blob = known.get(key);
    if (!blob) {
      const data = await store.get(key).catch((e: unknown) => {
        if (e instanceof BlobNotFoundError) return null;
        throw e;
      });
      // Nothing stored: the reader's GET will say so (the work that made it is re-issued).
      blob = { key, run_id: runId, sha256: blobSha256(data ?? new Uint8Array(0)), bytes: data?.byteLength ?? 0, producer: '' };
      if (data) await recordAccepted(db, blob, opts.now);
      known.set(key, blob);
    }
    refs.push({ key, url: await store.presign('get', key, { expiresInS: opts.expiresInS }), bytes: blob.bytes, sha256: blob.sha256 });
  }
  return refs;
}
