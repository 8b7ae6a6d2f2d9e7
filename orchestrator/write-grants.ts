// Which uploads the local store may still take. Every upload URL the orchestrator signs names the
// grant it belongs to (a work lease's id, or a snapshot assignment's), and the store asks here
// before it takes a body and again before it keeps one: a URL stops working once its lease is
// completed, released or handed to someone else, and nothing is written over an accepted blob.
import type { Kysely } from 'kysely';
import type { Database } from './db/schema.ts';

/** The keys a work item's holder writes: its shares' slices, or its one output. */
function itemKeys(item: { direction: string; output_key: string; detail_json: string }): string[] {
  if (item.direction !== 'share') return item.output_key ? [item.output_key] : [];
  return (JSON.parse(item.detail_json) as { keys?: string[] }).keys ?? [];
}

/** Why an upload to `key` under `grant` is not taken now, or null when it is. */
export async function writeRefusal(db: Kysely<Database>, key: string, grant: string | undefined): Promise<string | null> {
  if (await db.selectFrom('blobs').select('key').where('key', '=', key).executeTakeFirst()) return `${key} was accepted already: it cannot be written again`;
  if (grant === undefined) return 'this upload URL names no lease';
  const item = await db.selectFrom('work_items').select(['direction', 'output_key', 'detail_json', 'status']).where('lease_id', '=', grant).executeTakeFirst();
  if (item) return item.status === 'leased' && itemKeys(item).includes(key) ? null : `lease ${grant} no longer writes ${key} (it was completed, released or passed to another miner)`;
  const snapshot = await db.selectFrom('snapshots').select(['key', 'status']).where('lease_id', '=', grant).executeTakeFirst();
  if (snapshot) return snapshot.status === 'assigned' && snapshot.key === key ? null : `the stored state ${key} is no longer this uploader's to write`;
  return `lease ${grant} no longer writes ${key} (it was completed, released or passed to another miner)`;
}
