// Handing out work items: the one query whose atomicity the lease logic relies on.
import { randomBytes } from 'node:crypto';
import type { ExpressionBuilder, Kysely } from 'kysely';
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
 * `now`), and required_hotkey null or `hotkey`, and not_hotkey not `hotkey`. Order: a reduction
 * of another stage asked of this miner, then by PRIORITY (round steps, backward, redo, forward),
 * within a class items required for this miner before others, then oldest (created_at, then id).
 * The item gets status 'leased', a new lease_id, leased_to = hotkey, lease_expires = now + ttlMs
 * and attempts + 1.
 *
 * The candidates come from one indexed query (only a stage's unfinished items are read) and are
 * ordered here; each is then taken by an UPDATE that re-checks availability, so two pickers never
 * get the same item. SQLite runs statements one at a time; on PostgreSQL the candidate is first
 * locked with FOR UPDATE SKIP LOCKED, so a picker skips a row another picker's transaction holds
 * instead of waiting for it, and only the row it takes stays locked.
 */
export async function pickAvailableItem(trx: Kysely<Database>, o: PickOptions): Promise<WorkItemRow | null> {
  const candidates = [...(await foreignReduction(trx, o)), ...(await availableQuery(trx, o).execute()).sort(byLeaseOrder(o.hotkey))];
  const stillAvailable = (eb: ExpressionBuilder<Database, 'work_items'>) => eb.or([eb('status', '=', 'pending'), eb.and([eb('status', '=', 'leased'), eb('lease_expires', '<=', o.now)])]);
  for (const pick of candidates) {
    // PostgreSQL: a candidate another picker's open transaction holds is skipped, not waited for.
    if (isPostgres(trx) && !(await trx.selectFrom('work_items').select('id').where('id', '=', pick.id).where(stillAvailable).forUpdate().skipLocked().executeTakeFirst())) continue;
    const row = await trx
      .updateTable('work_items')
      .set((eb) => ({
        status: 'leased',
        lease_id: newLeaseId(),
        leased_to: o.hotkey,
        lease_expires: o.now + o.ttlMs,
        attempts: eb('attempts', '+', 1),
      }))
      .where('id', '=', pick.id)
      .where(stillAvailable)
      .returningAll()
      .executeTakeFirst();
    if (row) return row;
  }
  return null;
}

type Candidate = Pick<WorkItemRow, 'id' | 'direction' | 'required_hotkey' | 'created_at'>;

/** The lease order of pickAvailableItem: priority class, required for this miner first, then age. */
function byLeaseOrder(hotkey: string): (a: Candidate, b: Candidate) => number {
  const rank = (c: Candidate): number => 2 * PRIORITY.indexOf(c.direction) + (c.required_hotkey === hotkey ? 0 : 1);
  return (a, b) => rank(a) - rank(b) || Number(a.created_at) - Number(b.created_at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Every item of the stage that `hotkey` could lease now (unordered). */
function availableQuery(db: Kysely<Database>, o: PickOptions) {
  return db
    .selectFrom('work_items')
    .select(['id', 'direction', 'required_hotkey', 'created_at'])
    .where('run_id', '=', o.runId)
    .where('stage', '=', o.stage)
    // Listing the directions and statuses lets the index be probed for just those (done items,
    // the bulk of a stage, are never read).
    .where('direction', 'in', PRIORITY)
    .where('status', 'in', ['pending', 'leased'])
    .where((eb) => eb.or([eb('status', '=', 'pending'), eb('lease_expires', '<=', o.now)]))
    .where((eb) => eb.or([eb('required_hotkey', 'is', null), eb('required_hotkey', '=', o.hotkey)]))
    .where((eb) => eb.or([eb('not_hotkey', 'is', null), eb('not_hotkey', '!=', o.hotkey)]));
}

/** Reduce items of another stage than the miner's that are asked of it and available, oldest first. */
async function foreignReduction(db: Kysely<Database>, o: PickOptions): Promise<{ id: string }[]> {
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
    .orderBy('id')
    .execute();
}

/**
 * Whether pickAvailableItem would find anything: one indexed query, so that miners polling an
 * empty queue cost the database one statement, not one per priority class.
 */
export async function anyAvailableItem(db: Kysely<Database>, o: PickOptions): Promise<boolean> {
  const row = await availableQuery(db, o).limit(1).executeTakeFirst();
  return row !== undefined || (await foreignReduction(db, o)).length > 0;
}
