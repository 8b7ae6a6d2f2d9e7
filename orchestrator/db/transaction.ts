// Transactions that behave the same on both dialects.
import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.ts';

/**
 * Runs `fn` in a transaction: committed when it resolves, rolled back when it throws (the error
 * is rethrown). Called with a transaction, `fn` joins that one.
 *
 * PostgreSQL: one pooled connection at READ COMMITTED; rows locked with FOR UPDATE stay locked
 * until the end. SQLite: BEGIN IMMEDIATE (see open.ts), so the write lock is taken up front and
 * the transaction cannot fail half-way because another process wrote meanwhile; the database
 * has one connection, so transactions and every other statement of the process run one after
 * the other — keep `fn` short and free of network calls.
 */
export async function withTransaction<T>(db: Kysely<Database>, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  if (db.isTransaction) return fn(db as Transaction<Database>);
  return db.transaction().execute(fn);
}
