// The orchestrator's database: one code path for SQLite and PostgreSQL.
export * from './schema.ts';
export { MIGRATIONS, migrationProvider, migrateToLatest, appliedMigrations, isPostgres } from './migrations.ts';
export { openDatabase, parseDatabaseUrl, redactUrl } from './open.ts';
export type { Db, DbDialect, OpenOptions, ParsedDbUrl } from './open.ts';
export { withTransaction } from './transaction.ts';
export { pickAvailableItem, newLeaseId } from './work-items.ts';
export type { PickOptions } from './work-items.ts';
