// Handing out work items: the one query whose atomicity the lease logic relies on.
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { isPostgres } from './migrations.ts';
import type { Database, WorkItemRow } from './schema.ts';

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
 * memory a miner holds for the forward), then items required for this miner, then oldest
 * (created_at, then id). The item gets status 'leased', a new lease_id, leased_to = hotkey,
 * lease_expires = now + ttlMs and attempts + 1.
 *
 * One statement (UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING *), atomic on its own or in
 * withTransaction. On PostgreSQL the SELECT takes the row with FOR UPDATE SKIP LOCKED, so
 * concurrent pickers never get the same item and never wait on one another's rows; on SQLite
 * statements run one at a time.
 */
export async function pickAvailableItem(trx: Kysely<Database>, o: PickOptions): Promise<WorkItemRow | null> {
  const next = trx
    .selectFrom('work_items')
    .select('id')
    .where('run_id', '=', o.runId)
    .where('stage', '=', o.stage)
    .where((eb) => eb.or([eb('status', '=', 'pending'), eb.and([eb('status', '=', 'leased'), eb('lease_expires', '<=', o.now)])]))
    .where((eb) => eb.or([eb('required_hotkey', 'is', null), eb('required_hotkey', '=', o.hotkey)]))
    .orderBy(sql`case when direction = 'backward' then 0 else 1 end`)
    .orderBy(sql`case when required_hotkey is null then 1 else 0 end`)
    .orderBy('created_at')
    .orderBy('id')
    .limit(1)
    .$if(isPostgres(trx), (qb) => qb.forUpdate().skipLocked());
  const row = await trx
    .updateTable('work_items')
    .set((eb) => ({
      status: 'leased',
      lease_id: newLeaseId(),
      leased_to: o.hotkey,
      lease_expires: o.now + o.ttlMs,
      attempts: eb('attempts', '+', 1),
    }))
    .where('id', '=', next)
    .returningAll()
    .executeTakeFirst();
  return row ?? null;
}
