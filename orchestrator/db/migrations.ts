// The database's migrations, in order, in code: nothing is read from disk at run time. Each is
// written with kysely's schema builder so that the same migration runs on SQLite and PostgreSQL.
// A migration, once released, never changes: changes to the schema are new migrations appended
// to the list (names sort in the order they run).
import { Migrator, PostgresAdapter, sql } from 'kysely';
import type { Kysely, Migration, MigrationProvider, MigrationResult, QueryExecutorProvider } from 'kysely';

/** Whether a Kysely instance (or transaction) talks to PostgreSQL. */
export function isPostgres(db: QueryExecutorProvider): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- migrations describe tables that the
   Database type may no longer have, so they work on an untyped Kysely. */
const initial: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('runs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('spec_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
      .execute();

    await db.schema
      .createTable('participants')
      .addColumn('hotkey', 'text', (c) => c.primaryKey())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('stage', 'integer')
      .addColumn('hardware_json', 'text', (c) => c.notNull())
      .addColumn('registered_at', 'bigint', (c) => c.notNull())
      .addColumn('last_seen', 'bigint', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('participants_by_stage').on('participants').columns(['run_id', 'role', 'stage', 'status']).execute();

    await db.schema
      .createTable('samples')
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('round', 'integer', (c) => c.notNull())
      .addColumn('seed', 'bigint', (c) => c.notNull())
      .addColumn('shard', 'integer', (c) => c.notNull())
      .addColumn('idx', 'integer', (c) => c.notNull())
      // 'double precision': 8-byte floats on both (PostgreSQL's 'real' is 4 bytes).
      .addColumn('loss', 'double precision')
      .addColumn('done', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('samples_pk', ['run_id', 'id'])
      .execute();
    await db.schema.createIndex('samples_by_round').on('samples').columns(['run_id', 'round']).execute();

    await db.schema
      .createTable('work_items')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('sample_id', 'text', (c) => c.notNull())
      .addColumn('stage', 'integer', (c) => c.notNull())
      .addColumn('direction', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('input_key', 'text')
      .addColumn('output_key', 'text', (c) => c.notNull())
      .addColumn('required_hotkey', 'text')
      .addColumn('lease_id', 'text', (c) => c.unique())
      .addColumn('leased_to', 'text')
      .addColumn('lease_expires', 'bigint')
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('completed_by', 'text')
      .addColumn('completed_at', 'bigint')
      .addColumn('output_bytes', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addForeignKeyConstraint('work_items_sample_fk', ['run_id', 'sample_id'], 'samples', ['run_id', 'id'], (fk) => fk.onDelete('cascade'))
      .execute();
    // The oldest available item of a stage: pickAvailableItem filters on these, in this order.
    await db.schema
      .createIndex('work_items_available')
      .on('work_items')
      .columns(['run_id', 'stage', 'direction', 'status', 'created_at'])
      .execute();
    await db.schema.createIndex('work_items_by_leased_to').on('work_items').column('leased_to').execute();
    // A sample's pathway: its items, stage by stage (also serves the foreign key to samples).
    await db.schema.createIndex('work_items_by_sample').on('work_items').columns(['run_id', 'sample_id', 'stage']).execute();
    // (lease_id is unique, which indexes it.)

    // An identity column is the one place the dialects differ.
    await db.schema
      .createTable('events')
      .addColumn('id', isPostgres(db) ? 'bigint' : 'integer', (c) =>
        isPostgres(db) ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
      )
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('hotkey', 'text')
      .addColumn('run_id', 'text')
      .addColumn('details_json', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute();
    await db.schema.createIndex('events_by_run').on('events').columns(['run_id', 'at']).execute();

    await db.schema
      .createTable('kv')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute();
  },

  async down(db: Kysely<any>) {
    for (const table of ['kv', 'events', 'work_items', 'samples', 'participants', 'runs']) {
      await db.schema.dropTable(table).execute();
    }
  },
};

/**
 * Leasing looks up the oldest item of a stage per (direction, status, required hotkey): with the
 * hotkey in the index both `= ?` and `IS NULL` are range scans in age order, where before every
 * pending item of the stage was read to find none required for the asking miner.
 */
const leaseIndex: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createIndex('work_items_lease_order')
      .on('work_items')
      .columns(['run_id', 'stage', 'direction', 'status', 'required_hotkey', 'created_at'])
      .execute();
    await db.schema.dropIndex('work_items_available').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.createIndex('work_items_available').on('work_items').columns(['run_id', 'stage', 'direction', 'status', 'created_at']).execute();
    await db.schema.dropIndex('work_items_lease_order').execute();
  },
};
/**
 * Rounds: a round is one optimizer step of the whole model. Per stage it moves through compute
 * (forward/backward items), share (each replica uploads its gradient sum in slices), reduce (each
 * slice summed over replicas) and done; snapshots are stored stage states for newcomers.
 */
const rounds: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('work_items').addColumn('round', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('work_items').addColumn('detail_json', 'text', (c) => c.notNull().defaultTo('{}')).execute();
    await db.schema.alterTable('work_items').addColumn('sumsq', 'double precision').execute();
    await db.schema.alterTable('work_items').addColumn('not_hotkey', 'text').execute();
    await db.schema.createIndex('work_items_by_round').on('work_items').columns(['run_id', 'round', 'stage', 'direction', 'status']).execute();
    await db.schema.alterTable('participants').addColumn('version', 'integer', (c) => c.notNull().defaultTo(0)).execute();

    await db.schema
      .createTable('rounds')
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('round', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('reduced_at', 'bigint')
      .addColumn('grad_sumsq', 'double precision')
      .addColumn('clip', 'double precision')
      .addColumn('lr', 'double precision')
      .addPrimaryKeyConstraint('rounds_pk', ['run_id', 'round'])
      .execute();

    await db.schema
      .createTable('stage_rounds')
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('round', 'integer', (c) => c.notNull())
      .addColumn('stage', 'integer', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('phase', 'text', (c) => c.notNull())
      .addColumn('contributors_json', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('sumsq', 'double precision')
      .addPrimaryKeyConstraint('stage_rounds_pk', ['run_id', 'round', 'stage'])
      .execute();

    await db.schema
      .createTable('snapshots')
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('stage', 'integer', (c) => c.notNull())
      .addColumn('rounds', 'integer', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('bytes', 'bigint')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('holder', 'text')
      .addColumn('assigned_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('snapshots_pk', ['run_id', 'stage', 'rounds'])
      .execute();
  },
  async down(db: Kysely<any>) {
    for (const table of ['snapshots', 'stage_rounds', 'rounds']) await db.schema.dropTable(table).execute();
    await db.schema.dropIndex('work_items_by_round').execute();
    for (const column of ['not_hotkey', 'sumsq', 'detail_json', 'round']) await db.schema.alterTable('work_items').dropColumn(column).execute();
    await db.schema.alterTable('participants').dropColumn('version').execute();
  },
};
/**
 * Redundant reduction: a miner's reduce copies of any stage are found by hotkey (a third reducer
 * may hold another stage), and participants caught doing wrong are flagged with evidence.
 */
const flags: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createIndex('work_items_by_required').on('work_items').columns(['run_id', 'required_hotkey', 'direction', 'status']).execute();
    await db.schema
      .createTable('flags')
      .addColumn('id', isPostgres(db) ? 'bigint' : 'integer', (c) =>
        isPostgres(db) ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
      )
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('hotkey', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('round', 'integer')
      .addColumn('stage', 'integer')
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('evidence_json', 'text', (c) => c.notNull().defaultTo('{}'))
      .execute();
    await db.schema.createIndex('flags_by_run').on('flags').columns(['run_id', 'hotkey']).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('flags').execute();
    await db.schema.dropIndex('work_items_by_required').execute();
  },
};
/**
 * Versions: every round's resulting stage state, with the hash each replica reported; stored
 * states carry their hash; a replica whose state diverged is resynchronised.
 */
const versions: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('versions')
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('stage', 'integer', (c) => c.notNull())
      .addColumn('rounds', 'integer', (c) => c.notNull())
      .addColumn('reports_json', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('versions_pk', ['run_id', 'stage', 'rounds'])
      .execute();
    await db.schema.alterTable('snapshots').addColumn('hash', 'text').execute();
    await db.schema.alterTable('participants').addColumn('resync', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.alterTable('participants').dropColumn('resync').execute();
    await db.schema.alterTable('snapshots').dropColumn('hash').execute();
    await db.schema.dropTable('versions').execute();
  },
};
/**
 * Validation and rewards: sampled checks of miners' work (with the blobs they keep alive and the
 * signed verdict), and the ledger — closed epochs and each miner's reward share — which the
 * database itself keeps append-only: rows are inserted once and never updated or deleted.
 */
const ledger: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('checks')
      .addColumn('id', isPostgres(db) ? 'bigint' : 'integer', (c) =>
        isPostgres(db) ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
      )
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('round', 'integer', (c) => c.notNull())
      .addColumn('stage', 'integer', (c) => c.notNull())
      .addColumn('miner', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('detail_json', 'text', (c) => c.notNull())
      .addColumn('keys_json', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('lease_id', 'text', (c) => c.unique())
      .addColumn('leased_to', 'text')
      .addColumn('lease_expires', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('decided_at', 'bigint')
      .addColumn('validator', 'text')
      .addColumn('error', 'double precision')
      .addColumn('loss_diff', 'double precision')
      .addColumn('reason', 'text')
      .addColumn('signature', 'text')
      .execute();
    await db.schema.createIndex('checks_by_stage').on('checks').columns(['run_id', 'stage', 'status', 'round']).execute();
    await db.schema.createIndex('checks_by_miner').on('checks').columns(['run_id', 'miner', 'status']).execute();
    await db.schema
      .createTable('epochs')
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id'))
      .addColumn('epoch', 'integer', (c) => c.notNull())
      .addColumn('from_round', 'integer', (c) => c.notNull())
      .addColumn('to_round', 'integer', (c) => c.notNull())
      .addColumn('closed_at', 'bigint', (c) => c.notNull())
      .addColumn('total_score', 'double precision', (c) => c.notNull())
      .addColumn('miners', 'integer', (c) => c.notNull())
      .addColumn('excluded_json', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('epochs_pk', ['run_id', 'epoch'])
      .execute();
    await db.schema
      .createTable('rewards')
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id'))
      .addColumn('epoch', 'integer', (c) => c.notNull())
      .addColumn('hotkey', 'text', (c) => c.notNull())
      .addColumn('work', 'double precision', (c) => c.notNull())
      .addColumn('passed', 'integer', (c) => c.notNull())
      .addColumn('failed', 'integer', (c) => c.notNull())
      .addColumn('liveness', 'double precision', (c) => c.notNull())
      .addColumn('score', 'double precision', (c) => c.notNull())
      .addColumn('share', 'double precision', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addPrimaryKeyConstraint('rewards_pk', ['run_id', 'epoch', 'hotkey'])
      .execute();
    await db.schema.alterTable('rounds').addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.createIndex('rewards_by_hotkey').on('rewards').columns(['run_id', 'hotkey']).execute();
    // Append-only, enforced by the database: no code path (or operator's query) rewrites a paid epoch.
    for (const table of ['epochs', 'rewards']) {
      if (isPostgres(db)) {
        await sql`create or replace function tah_append_only() returns trigger language plpgsql as $$ begin raise exception '% is append-only', TG_TABLE_NAME; end $$`.execute(db);
        await sql.raw(`create trigger ${table}_append_only before update or delete on ${table} for each row execute function tah_append_only()`).execute(db);
      } else {
        for (const op of ['update', 'delete']) await sql.raw(`create trigger ${table}_no_${op} before ${op} on ${table} begin select raise(abort, '${table} is append-only'); end`).execute(db);
      }
    }
  },
  async down(db: Kysely<any>) {
    for (const table of ['rewards', 'epochs', 'checks']) await db.schema.dropTable(table).execute();
    await db.schema.alterTable('rounds').dropColumn('generation').execute();
    if (isPostgres(db)) await sql`drop function if exists tah_append_only()`.execute(db);
  },
};
/**
 * Replay protection that survives restarts and is shared by every orchestrator process on the
 * database: the nonce of each accepted signed request, kept until its timestamp leaves the window.
 */
const requestNonces: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('request_nonces')
      .addColumn('hotkey', 'text', (c) => c.notNull())
      .addColumn('nonce', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('request_nonces_pk', ['hotkey', 'nonce'])
      .execute();
    await db.schema.createIndex('request_nonces_by_expiry').on('request_nonces').column('expires_at').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('request_nonces').execute();
  },
};
/**
 * What was accepted cannot change: every accepted blob's SHA-256 (handed to its readers with each
 * URL), and a write grant per snapshot assignment, so that a replica whose duty passed to another
 * can no longer write.
 */
const blobDigests: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('blobs')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('run_id', 'text', (c) => c.notNull().references('runs.id').onDelete('cascade'))
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('bytes', 'bigint', (c) => c.notNull())
      .addColumn('producer', 'text', (c) => c.notNull())
      .addColumn('accepted_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.alterTable('snapshots').addColumn('lease_id', 'text').execute();
    // Refusals name a blob by key: its producer is found by the item that output it.
    await db.schema.createIndex('work_items_by_output').on('work_items').column('output_key').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropIndex('work_items_by_output').execute();
    await db.schema.alterTable('snapshots').dropColumn('lease_id').execute();
    await db.schema.dropTable('blobs').execute();
  },
};
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Every migration, by name; names sort in the order they run. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_initial': initial,
  '0002_lease_index': leaseIndex,
  '0003_rounds': rounds,
  '0004_flags': flags,
  '0005_versions': versions,
  '0006_ledger': ledger,
  '0007_request_nonces': requestNonces,
  '0008_blob_digests': blobDigests,
});

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve({ ...MIGRATIONS }),
};

/**
 * Brings the database up to the newest migration; returns the names of the migrations it ran
 * (none when it was up to date). Concurrent callers are safe: kysely's migrator takes a lock
 * (an advisory lock on PostgreSQL; SQLite's single writer on SQLite).
 */
export async function migrateToLatest<DB>(db: Kysely<DB>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r: MigrationResult) => r.status === 'Error')?.migrationName;
    const message = error instanceof Error ? error.message : String(error);
    if (/previously executed migration .* is missing/i.test(message)) {
      throw new Error(`the database was migrated by a newer version of the orchestrator (${message})`, { cause: error });
    }
    throw new Error(`database migration ${failed ?? ''} failed: ${message}`.replace('  ', ' '), { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** The names of the migrations this database has run, in order. */
export async function appliedMigrations<DB>(db: Kysely<DB>): Promise<string[]> {
  const rows = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db);
  return rows.rows.map((r) => r.name);
}
