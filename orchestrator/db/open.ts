// Opens the orchestrator's database from a URL and brings it up to the newest migration:
//   sqlite:PATH, a bare PATH ending in .db/.sqlite/.sqlite3   an SQLite file (the default, embedded)
//   sqlite::memory:                                           an SQLite database in memory (tests)
//   postgres://… or postgresql://…                            a PostgreSQL server (hosted runs)
// Everything above this module is the same code on both.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, SqliteDriver } from 'kysely';
import type { DatabaseConnection, Driver, SqliteDialectConfig } from 'kysely';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import type { Database } from './schema.ts';
import { migrateToLatest } from './migrations.ts';

// Callers import these from here or from index.ts.
export { withTransaction } from './transaction.ts';
export { anyAvailableItem, pickAvailableItem } from './work-items.ts';
export type { PickOptions } from './work-items.ts';

export type DbDialect = 'sqlite' | 'postgres';

export interface Db {
  db: Kysely<Database>;
  dialect: DbDialect;
  /** Closes the database (the SQLite file, or every connection of the pool). */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** PostgreSQL: connections in the pool at most (default 10). */
  poolSize?: number;
  /** PostgreSQL: how long to wait for a connection, in ms (default 10 000). */
  connectTimeoutMs?: number;
  /** PostgreSQL: errors of idle pooled connections (the server went away); ignored by default. */
  onPoolError?: (err: Error) => void;
  /** SQLite: how long a statement waits for another process's lock, in ms (default 5 000). */
  busyTimeoutMs?: number;
}

export type ParsedDbUrl = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; url: string };

const SQLITE_EXTENSIONS = /\.(db|sqlite|sqlite3)$/i;

/** What a database URL names; throws a one-line error for anything else. */
export function parseDatabaseUrl(url: string): ParsedDbUrl {
  const trimmed = url.trim();
  if (/^postgres(ql)?:\/\//i.test(trimmed)) return { dialect: 'postgres', url: trimmed };
  if (/^sqlite:/i.test(trimmed)) {
    let path = trimmed.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2); // sqlite:///abs/path, sqlite://rel/path
    if (path === '') throw new Error(`database URL 'sqlite:' names no file: use sqlite:PATH or sqlite::memory:`);
    return { dialect: 'sqlite', path };
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) && SQLITE_EXTENSIONS.test(trimmed)) return { dialect: 'sqlite', path: trimmed };
  throw new Error(
    `unknown database URL '${redactUrl(trimmed)}': use sqlite:PATH, sqlite::memory:, a path ending in .db or .sqlite, or postgres://USER@HOST/DB`,
  );
}

/** The URL with its password (if any) replaced by '***', for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:***@');
}

/** Opens the database `url` names and runs its pending migrations. */
export async function openDatabase(url: string, opts: OpenOptions = {}): Promise<Db> {
  const target = parseDatabaseUrl(url);
  return target.dialect === 'sqlite' ? openSqlite(target.path, opts) : openPostgres(target.url, opts);
}

async function openSqlite(path: string, opts: OpenOptions): Promise<Db> {
  const memory = path === ':memory:';
  const shown = memory ? 'sqlite::memory:' : `sqlite:${path}`;
  if (!memory) {
    try {
      makeDirs(dirname(resolve(path)));
    } catch (err) {
      throw new Error(`cannot create the directory of ${shown}: ${(err as Error).message}`, { cause: err });
    }
  }
  let handle: SqliteDatabase.Database;
  try {
    handle = new SqliteDatabase(path);
  } catch (err) {
    throw new Error(`cannot open ${shown}: ${(err as Error).message}`, { cause: err });
  }
  try {
    // The first statement reads the header: a file that is not a database fails here.
    if (!memory) handle.pragma('journal_mode = WAL');
    handle.pragma('synchronous = NORMAL');
    handle.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    handle.pragma('foreign_keys = ON');
  } catch (err) {
    handle.close();
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') throw new Error(`${shown} is not an SQLite database`, { cause: err });
    throw new Error(`cannot open ${shown}: ${(err as Error).message}`, { cause: err });
  }
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: cachingStatements(handle) }, handle) });
  return finishOpen(db, 'sqlite', shown);
}

/**
 * Prepared statements reused by SQL text: preparing cost more than running most of the
 * orchestrator's statements (11–20 µs against ~6 µs). The cache is bounded; kysely's queries
 * have a small set of distinct texts.
 */
function cachingStatements(handle: SqliteDatabase.Database): SqliteDialectConfig['database'] & object {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => handle.close(),
    prepare: (text: string) => {
      let stmt = cache.get(text);
      if (!stmt) {
        if (cache.size >= 1000) cache.clear();
        stmt = handle.prepare(text);
        cache.set(text, stmt);
      }
      return stmt;
    },
  } as SqliteDialectConfig['database'] & object;
}

/**
 * kysely's SQLite driver, with transactions that start with BEGIN IMMEDIATE (the write lock up
 * front: a deferred transaction that reads, then writes, fails with SQLITE_BUSY when another
 * process wrote in between) and a rollback that tolerates SQLite having rolled back already
 * (some errors end the transaction; a failing ROLLBACK would hide the error that mattered).
 */
class ImmediateSqliteDriver extends SqliteDriver {
  readonly #handle: SqliteDatabase.Database;
  constructor(config: SqliteDialectConfig, handle: SqliteDatabase.Database) {
    super(config);
    this.#handle = handle;
  }
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.#handle.inTransaction) await super.rollbackTransaction(connection);
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  readonly #handle: SqliteDatabase.Database;
  constructor(config: SqliteDialectConfig, handle: SqliteDatabase.Database) {
    super(config);
    this.#config = config;
    this.#handle = handle;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config, this.#handle);
  }
}

/** mkdir -p, one level at a time (Node's recursive mkdirSync can spin forever on /proc paths). */
function makeDirs(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) makeDirs(parent);
  mkdirSync(dir);
}

/** int8 as a JS number, refusing values that a number cannot hold exactly. */
function parseInt8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`bigint ${value} is too large for a JS number`);
  return n;
}

const PG_INT8 = 20;
const PG_NUMERIC = 1700;

/**
 * Type parsers for this pool only (the pg module's global parsers stay as they are): int8
 * (bigint columns, count(*)) and numeric (sum() and avg() over integers) come back as numbers,
 * as they do from SQLite, instead of strings.
 */
const pgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format !== 'binary' && oid === PG_INT8) return parseInt8;
    if (format !== 'binary' && oid === PG_NUMERIC) return Number;
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};

async function openPostgres(url: string, opts: OpenOptions): Promise<Db> {
  const shown = redactUrl(url);
  const pool = new pg.Pool({
    connectionString: url,
    types: pgTypes,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
  });
  // An idle connection that the server drops emits 'error' on the pool; with no listener that
  // would end the process. The pool discards the connection either way.
  pool.on('error', (err) => opts.onPoolError?.(err));
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => {});
    const e = err as Error & { code?: string; errors?: Error[] };
    // Connecting to a name with several addresses fails with an AggregateError and no message.
    const why = e.message || e.errors?.map((x) => x.message).join('; ') || e.code || String(err);
    throw new Error(`cannot connect to PostgreSQL at ${shown}: ${why.replace(/\s+/g, ' ')}`, { cause: err });
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return finishOpen(db, 'postgres', shown);
}

async function finishOpen(db: Kysely<Database>, dialect: DbDialect, shown: string): Promise<Db> {
  try {
    await migrateToLatest(db);
  } catch (err) {
    await db.destroy().catch(() => {});
    throw new Error(`${shown}: ${(err as Error).message}`, { cause: err });
  }
  let closed: Promise<void> | undefined;
  return { db, dialect, close: () => (closed ??= db.destroy()) };
}
