// Signed requests frozen as bytes: signed once, then sent as often as a test likes exactly as
// first written (method, target, headers, body), which is what a replay is. And a snapshot of
// every table, to show a refused request changed nothing.
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { type Keypair, signRequest } from '../../orchestrator-client/signing.ts';
import { type RawResponse, rawRequest } from './raw-http.ts';

export interface FrozenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

/** Signs a request stamped `now` (the signer's clock); `body` is JSON text, absent for none. */
export function freeze(keypair: Keypair, method: string, path: string, body: string | undefined, now: number): FrozenRequest {
  const bytes = Buffer.from(body ?? '', 'utf8');
  const headers: Record<string, string> = { ...signRequest(keypair, { method, path, body: bytes }, { now }), 'content-length': String(bytes.length) };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return { method, path, headers, body: bytes };
}

/** Sends the frozen request to the server at `url` (its host header is the server's, as node writes it). */
export function send(url: string, r: FrozenRequest): Promise<RawResponse> {
  return rawRequest({ port: Number(new URL(url).port), method: r.method, path: r.path, headers: r.headers, body: r.body });
}

/** The error code of an answer, or undefined for a success. */
export const codeOf = (r: RawResponse): string | undefined => (r.json as { error?: { code?: string } } | undefined)?.error?.code;

/** Every table's rows (each as JSON, sorted), on either dialect; `except` leaves tables out. */
export async function snapshotTables<DB>(db: Kysely<DB>, except: string[] = []): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of await db.introspection.getTables()) {
    if (except.includes(t.name)) continue;
    const rows = await sql<Record<string, unknown>>`select * from ${sql.table(t.name)}`.execute(db);
    out[t.name] = rows.rows.map((r) => JSON.stringify(r)).sort();
  }
  return out;
}
