// Handing out work items: the one query whose atomicity the lease logic relies on.
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { isPostgres } from './migrations.ts';
import type { Database, ItemKind, WorkItemRow } from './schema.ts';

/**
 * Round steps first (a stage's all-reduce holds up the round), then backward work (it frees the
 * activations a miner keeps), redo, and forward work last.
 */
const PRIORITY: readonly ItemKind[] = ['reduce', 'share', 'local', 'backward', 'redo', 'forward'];

export interface PickOptions {
  runId: string;
  stage: number;
  /** The miner asking. */
  hotkey: string;
  /** Current time, ms since the epoch. */
  now: number;
  /** The lease expires at now + ttlMs. */
  ttlMs: number;
}

/** A fresh lease id: 32 hex digits (fits the protocol's id pattern). */
export function newLeaseId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Leases to `hotkey` the next available item of (runId, stage) and returns it as updated, or
 * null when there is none. Available: pending, or leased with a lease that expired (at or before
 * `now`), and required_hotkey null or `hotkey`. Order: backward items first (they free the
 * memory a miner holds for the forward), items required for this miner before others, then
 * oldest (created_at, then id). The item gets status 'leased', a new lease_id, leased_to = hotkey,
 * lease_expires = now + ttlMs and attempts + 1.
 *
 * Atomic in withTransaction. On PostgreSQL the SELECTs take their rows with FOR UPDATE SKIP LOCKED, so
 * concurrent pickers never get the same item and never wait on one another's rows; on SQLite
 * statements run one at a time.
 */
export async function pickAvailableItem(trx: Kysely<Database>, o: PickOptions): Promise<WorkItemRow | null> {
  // Indexed lookups per priority class, each ordered by age: a single query with the order as
  // CASE expressions made SQLite scan and sort every item of the stage on every lease. Within a
  // class, a pending item and an item whose lease expired compete by age, so stragglers' work is
  // not starved by newer work. Run inside withTransaction: on PostgreSQL the candidates stay
  // locked (FOR UPDATE SKIP LOCKED) until the update commits.
  const oldest = (direction: ItemKind, required: 'mine' | 'none', expired: boolean) =>
    trx
      .selectFrom('work_items')
      .select(['id', 'created_at'])
      .where('run_id', '=', o.runId)
      .where('stage', '=', o.stage)
      .where('direction', '=', direction)
      .where('status', '=', expired ? 'leased' : 'pending')
      .$if(expired, (qb) => qb.where('lease_expires', '<=', o.now))
      .$if(required === 'mine', (qb) => qb.where('required_hotkey', '=', o.hotkey))
      .$if(required === 'none', (qb) => qb.where('required_hotkey', 'is', null))
      .where((eb) => eb.or([eb('not_hotkey', 'is', null), eb('not_hotkey', '!=', o.hotkey)]))
      .orderBy('created_at')
      .orderBy('id')
      .limit(1)
      .$if(isPostgres(trx), (qb) => qb.forUpdate().skipLocked())
      .executeTakeFirst();
  const take = async (pick: { id: string }): Promise<WorkItemRow | undefined> =>
    trx
      .updateTable('work_items')
      .set((eb) => ({
        status: 'leased',
        lease_id: newLeaseId(),
        leased_to: o.hotkey,
        lease_expires: o.now + o.ttlMs,
        attempts: eb('attempts', '+', 1),
      }))
      .where('id', '=', pick.id)
      .returningAll()
      .executeTakeFirst();
  // First a reduction of another stage asked of this miner (a third reducer): it holds up a round.
  const foreign = await foreignReduction(trx, o);
  if (foreign) {
    const row = await take(foreign);
    if (row) return row;
  }
  for (const direction of PRIORITY) {
    for (const required of ['mine', 'none'] as const) {
      const found = [await oldest(direction, required, false), await oldest(direction, required, true)].filter((c) => c !== undefined);
      if (found.length === 0) continue;
      const pick = found.reduce((a, b) => (Number(b.created_at) < Number(a.created_at) || (Number(b.created_at) === Number(a.created_at) && b.id < a.id) ? b : a));
      const row = await take(pick);
      if (row) return row;
    }
  }
  return null;
}

/** A reduce item of another stage than the miner's that is asked of it and available. */
async function foreignReduction(db: Kysely<Database>, o: PickOptions): Promise<{ id: string } | undefined> {
  return db
    .selectFrom('work_items')
    .select('id')
    .where('run_id', '=', o.runId)
    .where('required_hotkey', '=', o.hotkey)
    .where('direction', '=', 'reduce')
    .where('status', 'in', ['pending', 'leased'])
    .where('stage', '!=', o.stage)
    .where((eb) => eb.or([eb('status', '=', 'pending'), eb('lease_expires', '<=', o.now)]))
    .orderBy('created_at')
    .limit(1)
    .$if(isPostgres(db), (qb) => qb.forUpdate().skipLocked())
    .executeTakeFirst();
}

/**
 * Whether pickAvailableItem would find anything: one indexed query, so that miners polling an
 * empty queue cost the database one statement, not one per priority class.
 */
export async function anyAvailableItem(db: Kysely<Database>, o: PickOptions): Promise<boolean> {
  const row = await db
    .selectFrom('work_items')
    .select('id')
    .where('run_id', '=', o.runId)
    .where('stage', '=', o.stage)
    // Listing the directions and statuses lets the index be probed for just those (done items,
    // the bulk of a stage, are never read).
    .where('direction', 'in', PRIORITY)
    .where('status', 'in', ['pending', 'leased'])
    .where((eb) => eb.or([eb('status', '=', 'pending'), eb('lease_expires', '<=', o.now)]))
    .where((eb) => eb.or([eb('required_hotkey', 'is', null), eb('required_hotkey', '=', o.hotkey)]))
    .where((eb) => eb.or([eb('not_hotkey', 'is', null), eb('not_hotkey', '!=', o.hotkey)]))
    .limit(1)
    .executeTakeFirst();
  return row !== undefined || (await foreignReduction(db, o)) !== undefined;
}
