// Puts the orchestrator together: database, blob store, coordinator and HTTP server, plus the
// reaper that releases the work of miners that stopped sending heartbeats and forgets the
// nonces of requests whose window has passed.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { sql } from 'kysely';
import { Coordinator, type MetagraphAdmission } from './coordinator.ts';
import { type Db, openDatabase, redactUrl } from './db/open.ts';
import { databaseNonces } from './nonces.ts';
import { buildServer } from './server.ts';
import { LocalBlobStore } from './storage/local.ts';
import { registerLocalBlobRoutes } from './storage/local-routes.ts';
import { openBlobStore } from './storage/open.ts';
import type { S3BlobStore } from './storage/s3.ts';

export interface OrchestratorOptions {
  /** sqlite:PATH, sqlite::memory: or postgres://… */
  db: string;
  /** local:DIR or s3://BUCKET[/PREFIX] */
  storage: string;
  /** Uploads that may exceed this go in parts of this size (default: the store's, 64 MiB). */
  partBytes?: number;
  /** local:DIR: an upload that delivers no byte for this long is aborted (default 60 s; see registerLocalBlobRoutes). */
  uploadIdleMs?: number;
  host?: string;
  port?: number;
  /** A RunSpec JSON file: the run is created at start unless it exists. */
  runFile?: string;
  operator?: string;
  now?: () => number;
  logger?: FastifyServerOptions['logger'];
  reapIntervalMs?: number;
  rateLimitPerMinute?: number;
  metagraph?: MetagraphAdmission;
  version?: string;
  /** The built renderer, served at / as the public dashboard. */
  uiDir?: string;
}

export interface Orchestrator {
  url: string;
  app: FastifyInstance;
  coordinator: Coordinator;
  /** The blob store the coordinator signs URLs for. */
  store: LocalBlobStore | S3BlobStore;
  database: Db;
  close(): Promise<void>;
}

/** The local store's URL key lives in the database, so URLs handed out survive a restart. */
async function localSecret(database: Db): Promise<Buffer> {
  const row = await database.db.selectFrom('kv').select('value').where('key', '=', 'local_blob_secret').executeTakeFirst();
  if (row) return Buffer.from(row.value, 'hex');
  const secret = randomBytes(32);
  await database.db.insertInto('kv').values({ key: 'local_blob_secret', value: secret.toString('hex') }).execute();
  return secret;
}

/** How long past its expiry a nonce claim is kept: one signature window (the server's default). */
export const SWEEP_MARGIN_MS = 60_000;

export async function startOrchestrator(opts: OrchestratorOptions): Promise<Orchestrator> {
  const database = await openDatabase(opts.db);
  try {
    const store = await openBlobStore(opts.storage, { secret: opts.storage.startsWith('local:') ? await localSecret(database) : undefined, now: opts.now, partBytes: opts.partBytes });
    const coordinator = new Coordinator({ db: database.db, store, now: opts.now, metagraph: opts.metagraph });
    // The local store asks the coordinator whether an upload's lease still stands.
    if (store instanceof LocalBlobStore) store.setWriteGate((key, grant) => coordinator.writeRefusal(key, grant));
    const nonces = databaseNonces(database.db);
    const app = await buildServer({
      coordinator,
      nonces,
      operator: opts.operator,
      now: opts.now,
      logger: opts.logger,
      rateLimitPerMinute: opts.rateLimitPerMinute,
      version: opts.version,
      uiDir: opts.uiDir,
      plugins: store instanceof LocalBlobStore ? [(a) => registerLocalBlobRoutes(a, store, { uploadIdleMs: opts.uploadIdleMs })] : [],
      localStoreId: store instanceof LocalBlobStore ? await store.id() : undefined,
      isReady: async () => {
        await sql`select 1`.execute(database.db);
        return true;
      },
    });
    const address = await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
    const url = address.replace('[::1]', 'localhost');
    if (store instanceof LocalBlobStore) store.setBaseUrl(url);

    if (opts.runFile) {
      let spec: { id?: unknown };
      try {
        spec = JSON.parse(await readFile(opts.runFile, 'utf8'));
      } catch (e) {
        throw new Error(`run file ${opts.runFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
      }
      const exists = typeof spec.id === 'string' && (await database.db.selectFrom('runs').select('id').where('id', '=', spec.id).executeTakeFirst());
      if (!exists) await coordinator.createRun(spec);
    }

    const reaper = setInterval(() => {
      coordinator.reap().catch((e) => app.log.error({ err: e }, 'reaping silent miners failed'));
      // A window late: another orchestrator on the database whose clock runs behind this one's
      // (by up to a window) still refuses a replay of a claim this one thinks expired.
      nonces.sweep((opts.now ?? Date.now)() - SWEEP_MARGIN_MS).catch((e) => app.log.error({ err: e }, 'forgetting expired nonces failed'));
    }, opts.reapIntervalMs ?? 5000);
    reaper.unref();
    return {
      url,
      app,
      coordinator,
      store,
      database,
      close: async () => {
        clearInterval(reaper);
        await app.close();
        await database.close();
      },
    };
  } catch (e) {
    await database.close();
    throw new Error(`orchestrator (${redactUrl(opts.db)}, ${opts.storage}): ${(e as Error).message}`, { cause: e });
  }
}
