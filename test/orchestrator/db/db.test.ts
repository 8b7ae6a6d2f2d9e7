// The orchestrator's database: the same tests on SQLite (always) and PostgreSQL (when Debian's
// postgresql package is installed; a throwaway cluster is started for this file).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { openDatabase, parseDatabaseUrl, pickAvailableItem, redactUrl, withTransaction } from '../../../orchestrator/db/open.ts';
import type { Db } from '../../../orchestrator/db/open.ts';
import { appliedMigrations, migrateToLatest, MIGRATIONS } from '../../../orchestrator/db/migrations.ts';
import type { Database, NewWorkItem, WorkItemRow } from '../../../orchestrator/db/schema.ts';
import { postgresMissing, startPostgres } from '../../helpers/postgres.ts';

const OPEN_TS = new URL('../../../orchestrator/db/open.ts', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'tah-db-test-'));
const cluster = await startPostgres();
after(async () => {
  await cluster?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

let files = 0;
const targets: { name: string; skip: string | false; fresh(): Promise<string> }[] = [
  { name: 'sqlite', skip: false, fresh: async () => `sqlite:${join(tmp, `t${++files}.db`)}` },
  { name: 'postgres', skip: cluster ? false : (postgresMissing() ?? 'no PostgreSQL'), fresh: () => cluster!.createDatabase() },
];

const TABLES = ['blobs', 'checks', 'epochs', 'events', 'flags', 'kv', 'participants', 'request_nonces', 'rewards', 'rounds', 'runs', 'samples', 'snapshots', 'stage_rounds', 'versions', 'work_items'];
const T0 = 1_760_000_000_000; // ms timestamps past 2^32 (and 2^31) on purpose
const HOTKEY_A = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const HOTKEY_B = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';

async function withDb<T>(url: string, fn: (d: Db) => Promise<T>, opts?: Parameters<typeof openDatabase>[1]): Promise<T> {
  const d = await openDatabase(url, opts);
  try {
    return await fn(d);
  } finally {
    await d.close();
  }
}

async function seedRun(db: Kysely<Database>, runId = 'run1', samples = 40): Promise<void> {
  await db.insertInto('runs').values({ id: runId, spec_json: '{"id":"run1"}', created_at: T0 }).execute();
  const rows = Array.from({ length: samples }, (_, i) => ({ run_id: runId, id: `s${i}`, round: 0, seed: 7, shard: i % 4, idx: i, loss: null, created_at: T0 }));
  await db.insertInto('samples').values(rows).execute();
}

function item(id: string, over: Partial<NewWorkItem> = {}): NewWorkItem {
  return {
    id,
    run_id: 'run1',
    sample_id: 's0',
    stage: 1,
    direction: 'forward',
    status: 'pending',
    input_key: null,
    output_key: `out/${id}`,
    required_hotkey: null,
    lease_id: null,
    leased_to: null,
    lease_expires: null,
    completed_by: null,
    completed_at: null,
    output_bytes: null,
    created_at: T0,
    ...over,
  };
}

/** Resolves once `n` callers have arrived; rejects everyone after `timeoutMs`. */
function barrier(n: number, timeoutMs: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  let fail!: (e: Error) => void;
  const all = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  const timer = setTimeout(() => fail(new Error(`only ${arrived} of ${n} pickers got through: pickers waited on one another`)), timeoutMs);
  void all.then(() => clearTimeout(timer), () => {});
  return () => {
    if (++arrived === n) open();
    return all;
  };
}

for (const target of targets) {
  describe(target.name, { skip: target.skip }, () => {
    test('migrations apply once, and reopening is a no-op', async () => {
      const url = await target.fresh();
      await withDb(url, async ({ db, dialect }) => {
        assert.equal(dialect, target.name);
        assert.deepEqual(await appliedMigrations(db), Object.keys(MIGRATIONS));
        const tables = (await db.introspection.getTables()).map((t) => t.name).filter((n) => !n.startsWith('kysely_'));
        assert.deepEqual(tables.sort(), TABLES);
        await db.insertInto('kv').values({ key: 'k', value: 'v' }).execute();
      });
      await withDb(url, async ({ db }) => {
        assert.deepEqual(await appliedMigrations(db), Object.keys(MIGRATIONS));
        assert.deepEqual(await migrateToLatest(db), []);
        assert.equal((await db.selectFrom('kv').selectAll().executeTakeFirst())?.value, 'v');
      });
      if (target.name === 'postgres') {
        // Servers starting side by side on an empty database: the migrator's lock serialises them.
        const fresh = await target.fresh();
        const opened = await Promise.all([0, 1, 2].map(() => openDatabase(fresh)));
        assert.deepEqual(await appliedMigrations(opened[0].db), Object.keys(MIGRATIONS));
        await Promise.all(opened.map((d) => d.close()));
      }
    });

    test('every table round-trips, with numbers as numbers', async () => {
      await withDb(await target.fresh(), async ({ db }) => {
        const run = { id: 'run1', spec_json: '{"id":"run1","stages":[[0,3]]}', created_at: T0, status: 'active' };
        await db.insertInto('runs').values({ id: run.id, spec_json: run.spec_json, created_at: run.created_at }).execute();
        assert.deepEqual(await db.selectFrom('runs').selectAll().execute(), [run]);

        const miner = { hotkey: HOTKEY_A, role: 'miner' as const, run_id: 'run1', stage: 2, hardware_json: '{"device":"cpu"}', registered_at: T0 + 1, last_seen: T0 + 2, status: 'active' as const };
        const validator = { ...miner, hotkey: HOTKEY_B, role: 'validator' as const, stage: null, status: 'gone' as const };
        // One statement each: in a multi-row insert SQLite fills a column some rows leave out with null, not its default.
        await db.insertInto('participants').values({ ...miner, version: 2 ** 31 - 1 }).execute();
        await db.insertInto('participants').values(validator).execute();
        assert.deepEqual(
          await db.selectFrom('participants').selectAll().orderBy('hotkey').execute(),
          [{ ...validator, version: 0, resync: 0 }, { ...miner, version: 2 ** 31 - 1, resync: 0 }].sort((a, b) => (a.hotkey < b.hotkey ? -1 : 1)),
        );

        const sample = { run_id: 'run1', id: 's0', round: 3, seed: 2 ** 40 + 1, shard: 5, idx: 123_456, loss: 2.302585092994046, done: 1, created_at: T0 + 3 };
        await db.insertInto('samples').values(sample).execute();
        await db.insertInto('samples').values({ ...sample, id: 's1', loss: null, done: undefined }).execute();
        assert.deepEqual(await db.selectFrom('samples').selectAll().orderBy('id').execute(), [sample, { ...sample, id: 's1', loss: null, done: 0 }]);

        const full: WorkItemRow = {
          ...(item('w1', { status: 'done', direction: 'backward', input_key: 'in/w1', required_hotkey: HOTKEY_A, lease_id: 'lease-1', leased_to: HOTKEY_A, lease_expires: T0 + 60_000, completed_by: HOTKEY_A, completed_at: T0 + 5, output_bytes: 5 * 2 ** 32 }) as WorkItemRow),
          attempts: 2,
          round: 7,
          detail_json: '{"range":[0,10]}',
          sumsq: Math.PI / 1e7, // all 17 digits of a double survive
          not_hotkey: HOTKEY_B,
        };
        await db.insertInto('work_items').values(full).execute();
        await db.insertInto('work_items').values(item('w2')).execute();
        const [w1, w2] = await db.selectFrom('work_items').selectAll().orderBy('id').execute();
        assert.deepEqual(w1, full);
        assert.deepEqual(w2, { ...item('w2'), attempts: 0, round: 0, detail_json: '{}', sumsq: null, not_hotkey: null });

        const round = { run_id: 'run1', round: 3, status: 'reduced' as const, created_at: T0 + 6, reduced_at: T0 + 7, grad_sumsq: 0.1234567890123, clip: 0.5, lr: 3e-3, generation: 1 };
        await db.insertInto('rounds').values([round, { ...round, round: 4, status: 'compute', reduced_at: null, grad_sumsq: null, clip: null, lr: null }]).execute();
        assert.deepEqual(await db.selectFrom('rounds').selectAll().orderBy('round').execute(), [round, { ...round, round: 4, status: 'compute', reduced_at: null, grad_sumsq: null, clip: null, lr: null }]);

        const stageRound = { run_id: 'run1', round: 3, stage: 1, attempt: 2, phase: 'done' as const, contributors_json: `["${HOTKEY_A}"]`, sumsq: 2.5 };
        await db.insertInto('stage_rounds').values(stageRound).execute();
        await db.insertInto('stage_rounds').values({ run_id: 'run1', round: 4, stage: 0, phase: 'compute', sumsq: null }).execute();
        assert.deepEqual(await db.selectFrom('stage_rounds').selectAll().orderBy('round').execute(), [
          stageRound,
          { run_id: 'run1', round: 4, stage: 0, attempt: 0, phase: 'compute', contributors_json: '[]', sumsq: null },
        ]);

        const snapshot = { run_id: 'run1', stage: 1, rounds: 25, key: 'runs/run1/snapshots/stage-1/25.safetensors', bytes: 3 * 2 ** 32, status: 'done' as const, holder: HOTKEY_A, assigned_at: T0 + 8, hash: 'ab'.repeat(32), lease_id: 'grant-1' };
        await db.insertInto('snapshots').values(snapshot).execute();
        await db.insertInto('snapshots').values({ ...snapshot, rounds: 50, bytes: null, status: 'assigned', holder: null, hash: null, lease_id: undefined }).execute();
        assert.deepEqual(await db.selectFrom('snapshots').selectAll().orderBy('rounds').execute(), [snapshot, { ...snapshot, rounds: 50, bytes: null, status: 'assigned', holder: null, hash: null, lease_id: null }]);

        const blob = { key: 'runs/run1/samples/s0/0-forward-L.safetensors', run_id: 'run1', sha256: 'cd'.repeat(32), bytes: 5 * 2 ** 32, producer: HOTKEY_A, accepted_at: T0 + 9 };
        await db.insertInto('blobs').values(blob).execute();
        assert.deepEqual(await db.selectFrom('blobs').selectAll().execute(), [blob]);
        const nonce = { hotkey: HOTKEY_A, nonce: 'ef'.repeat(16), expires_at: T0 + 60_000 };
        await db.insertInto('request_nonces').values(nonce).execute();
        assert.deepEqual(await db.selectFrom('request_nonces').selectAll().execute(), [nonce]);
        await assert.rejects(db.insertInto('request_nonces').values(nonce).execute(), /unique|duplicate/i, 'a nonce is claimed once per hotkey');

        await db.insertInto('events').values({ at: T0, kind: 'registered', hotkey: HOTKEY_A, run_id: 'run1', details_json: '{"stage":2}' }).execute();
        await db.insertInto('events').values({ at: T0 + 1, kind: 'started', hotkey: null, run_id: null }).execute();
        assert.deepEqual(await db.selectFrom('events').selectAll().orderBy('id').execute(), [
          { id: 1, at: T0, kind: 'registered', hotkey: HOTKEY_A, run_id: 'run1', details_json: '{"stage":2}' },
          { id: 2, at: T0 + 1, kind: 'started', hotkey: null, run_id: null, details_json: '{}' },
        ]);

        const put = (key: string, value: string) =>
          db.insertInto('kv').values({ key, value }).onConflict((oc) => oc.column('key').doUpdateSet({ value: (eb) => eb.ref('excluded.value') })).execute();
        await put('store_secret', 'a');
        await put('store_secret', 'b');
        assert.deepEqual(await db.selectFrom('kv').selectAll().execute(), [{ key: 'store_secret', value: 'b' }]);

        // Aggregates come back as numbers on both dialects too.
        const agg = await db
          .selectFrom('work_items')
          .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('output_bytes').as('bytes'), eb.fn.max<number>('created_at').as('latest')])
          .executeTakeFirstOrThrow();
        assert.deepEqual(agg, { n: 2, bytes: 5 * 2 ** 32, latest: T0 });
      });
    });

    test('constraints: foreign keys, cascades and the unique lease id', async () => {
      await withDb(await target.fresh(), async ({ db }) => {
        await seedRun(db, 'run1', 2);
        const participant = { hotkey: HOTKEY_A, role: 'miner' as const, run_id: 'nope', stage: 0, hardware_json: '{}', registered_at: T0, last_seen: T0, status: 'active' as const };
        await assert.rejects(db.insertInto('participants').values(participant).execute(), /foreign key/i);
        await assert.rejects(db.insertInto('work_items').values(item('w0', { sample_id: 'no-such-sample' })).execute(), /foreign key/i);
        await db.insertInto('participants').values({ ...participant, run_id: 'run1' }).execute();
        await db.insertInto('work_items').values([item('w1', { lease_id: 'L' }), item('w2'), item('w3')]).execute(); // many null lease ids
        await assert.rejects(db.insertInto('work_items').values(item('w4', { lease_id: 'L' })).execute(), /unique/i);
        await db.insertInto('rounds').values({ run_id: 'run1', round: 0, status: 'compute', created_at: T0, reduced_at: null, grad_sumsq: null, clip: null, lr: null }).execute();
        await db.insertInto('stage_rounds').values({ run_id: 'run1', round: 0, stage: 0, phase: 'compute', sumsq: null }).execute();
        await db.insertInto('snapshots').values({ run_id: 'run1', stage: 0, rounds: 25, key: 'k', bytes: null, status: 'assigned', holder: null, assigned_at: T0 }).execute();
        await assert.rejects(db.insertInto('rounds').values({ run_id: 'run1', round: 0, status: 'compute', created_at: T0, reduced_at: null, grad_sumsq: null, clip: null, lr: null }).execute(), /unique|duplicate/i);
        await db.deleteFrom('runs').where('id', '=', 'run1').execute();
        for (const table of ['participants', 'samples', 'work_items', 'rounds', 'stage_rounds', 'snapshots'] as const) {
          assert.equal((await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n, 0, table);
        }
      });
    });

    test('withTransaction commits, rolls back on a throw, and joins an outer transaction', async () => {
      await withDb(await target.fresh(), async ({ db }) => {
        await withTransaction(db, async (trx) => {
          await trx.insertInto('kv').values({ key: 'a', value: '1' }).execute();
          await withTransaction(trx, (inner) => inner.insertInto('kv').values({ key: 'b', value: '2' }).execute());
        });
        await assert.rejects(
          withTransaction(db, async (trx) => {
            await trx.insertInto('kv').values({ key: 'c', value: '3' }).execute();
            throw new Error('changed my mind');
          }),
          /changed my mind/,
        );
        // A statement that fails inside: the transaction's error is the one reported.
        await assert.rejects(
          withTransaction(db, async (trx) => {
            await trx.insertInto('kv').values({ key: 'd', value: '4' }).execute();
            await trx.insertInto('kv').values({ key: 'a', value: 'dup' }).execute();
          }),
          /unique|duplicate/i,
        );
        assert.deepEqual((await db.selectFrom('kv').select('key').orderBy('key').execute()).map((r) => r.key), ['a', 'b']);
      });
    });

    test('data survives closing and reopening, and a process that is killed', async () => {
      const url = await target.fresh();
      await withDb(url, async ({ db }) => {
        await seedRun(db, 'run1', 3);
        await db.insertInto('work_items').values(item('w1', { status: 'leased', lease_id: 'L1', leased_to: HOTKEY_A, lease_expires: T0 + 1 })).execute();
        await db.insertInto('kv').values({ key: 'store_secret', value: 's3cr3t' }).execute();
      });
      // A server that dies without closing anything: what it committed is there.
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `const { openDatabase } = await import(${JSON.stringify(OPEN_TS)});
           const { db } = await openDatabase(process.argv[1]);
           await db.insertInto('events').values({ at: 1, kind: 'committed', hotkey: null, run_id: null }).execute();
           await db.updateTable('work_items').set({ status: 'done', completed_by: 'x', completed_at: 2 }).where('id', '=', 'w1').execute();
           process.stdout.write('ready\\n');
           setInterval(() => {}, 1000);`,
          url,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => (chunk.toString().includes('ready') ? resolve() : undefined));
        child.on('exit', (code) => reject(new Error(`child exited with ${code} before writing`)));
      });
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));

      await withDb(url, async ({ db, dialect }) => {
        assert.deepEqual(await db.selectFrom('runs').select(['id', 'created_at']).execute(), [{ id: 'run1', created_at: T0 }]);
        assert.equal((await db.selectFrom('samples').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n, 3);
        const w1 = await db.selectFrom('work_items').selectAll().where('id', '=', 'w1').executeTakeFirstOrThrow();
        assert.deepEqual([w1.status, w1.completed_by, w1.completed_at, w1.lease_id], ['done', 'x', 2, 'L1']);
        assert.deepEqual(await db.selectFrom('events').select(['kind']).execute(), [{ kind: 'committed' }]);
        assert.equal((await db.selectFrom('kv').select('value').where('key', '=', 'store_secret').executeTakeFirst())?.value, 's3cr3t');
        if (dialect === 'sqlite') {
          const pragma = async (name: string) => Object.values((await sql.raw(`pragma ${name}`).execute(db)).rows[0] as object)[0] as unknown;
          assert.equal(await pragma('journal_mode'), 'wal');
          assert.equal(await pragma('synchronous'), 1); // NORMAL
          assert.equal(await pragma('foreign_keys'), 1);
          assert.equal(await pragma('busy_timeout'), 5000);
        }
      });
    });

    test('pickAvailableItem: oldest first, lease fields set, done and other stages untouched', async () => {
      await withDb(await target.fresh(), async ({ db }) => {
        await seedRun(db);
        await db.insertInto('runs').values({ id: 'run2', spec_json: '{}', created_at: T0 }).execute();
        await db.insertInto('samples').values({ run_id: 'run2', id: 's0', round: 0, seed: 0, shard: 0, idx: 0, loss: null, created_at: T0 }).execute();
        await db
          .insertInto('work_items')
          .values([
            item('b', { created_at: T0 + 20 }),
            item('a', { created_at: T0 + 10 }),
            item('c', { created_at: T0 + 20 }), // same time as b: the id decides
            item('done', { created_at: T0, status: 'done' }),
            item('other-stage', { created_at: T0, stage: 2 }),
            item('other-run', { created_at: T0, run_id: 'run2' }),
          ])
          .execute();
        const now = T0 + 1000;
        const pick = () => withTransaction(db, (trx) => pickAvailableItem(trx, { runId: 'run1', stage: 1, hotkey: HOTKEY_A, now, ttlMs: 60_000 }));
        const picked: WorkItemRow[] = [];
        for (let i = 0; i < 3; i++) picked.push((await pick())!);
        assert.deepEqual(picked.map((p) => p.id), ['a', 'b', 'c']);
        assert.equal(await pick(), null);
        for (const p of picked) {
          assert.equal(p.status, 'leased');
          assert.equal(p.leased_to, HOTKEY_A);
          assert.equal(p.lease_expires, now + 60_000);
          assert.equal(p.attempts, 1);
          assert.match(p.lease_id!, /^[0-9a-f]{32}$/);
          assert.deepEqual(await db.selectFrom('work_items').selectAll().where('id', '=', p.id).executeTakeFirst(), p);
        }
        assert.equal(new Set(picked.map((p) => p.lease_id)).size, 3);
        // Outside withTransaction the single statement is atomic too.
        assert.equal((await pickAvailableItem(db, { runId: 'run1', stage: 2, hotkey: HOTKEY_A, now, ttlMs: 1 }))?.id, 'other-stage');
      });
    });

    test('pickAvailableItem: backward and required items first, never items required for another miner', async () => {
      await withDb(await target.fresh(), async ({ db }) => {
        await seedRun(db);
        await db
          .insertInto('work_items')
          .values([
            item('fwd-old', { created_at: T0 }),
            item('fwd-for-a', { created_at: T0 + 5, required_hotkey: HOTKEY_A }),
            item('bwd-for-a', { created_at: T0 + 10, direction: 'backward', required_hotkey: HOTKEY_A }),
            item('bwd-for-b', { created_at: T0 + 1, direction: 'backward', required_hotkey: HOTKEY_B }),
          ])
          .execute();
        const pick = (hotkey: string) => pickAvailableItem(db, { runId: 'run1', stage: 1, hotkey, now: T0 + 100, ttlMs: 1000 });
        const C = '5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy';
        assert.equal((await pick(C))?.id, 'fwd-old'); // C may take neither backward item
        assert.equal(await pick(C), null);
        assert.equal((await pick(HOTKEY_A))?.id, 'bwd-for-a');
        assert.equal((await pick(HOTKEY_A))?.id, 'fwd-for-a');
        assert.equal(await pick(HOTKEY_A), null);
        assert.equal((await pick(HOTKEY_B))?.id, 'bwd-for-b');
      });
    });

    test('pickAvailableItem: round steps before compute work, and never to the miner an item excludes', async () => {
      await withDb(await target.fresh(), async ({ db }) => {
        await seedRun(db);
        await db
          .insertInto('work_items')
          .values([
            item('fwd', { created_at: T0 }),
            item('redo', { created_at: T0 + 1, direction: 'redo' }),
            item('bwd', { created_at: T0 + 2, direction: 'backward' }),
            item('share-a', { created_at: T0 + 3, direction: 'share', required_hotkey: HOTKEY_A }),
            item('reduce', { created_at: T0 + 4, direction: 'reduce', not_hotkey: HOTKEY_A }),
          ])
          .execute();
        const pick = (hotkey: string) => pickAvailableItem(db, { runId: 'run1', stage: 1, hotkey, now: T0 + 100, ttlMs: 1000 });
        assert.equal((await pick(HOTKEY_A))?.id, 'share-a', 'the reduce excludes A; its own share comes next');
        assert.equal((await pick(HOTKEY_A))?.id, 'bwd');
        assert.equal((await pick(HOTKEY_B))?.id, 'reduce');
        assert.equal((await pick(HOTKEY_B))?.id, 'redo');
        assert.equal((await pick(HOTKEY_B))?.id, 'fwd');
        assert.equal(await pick(HOTKEY_A), null);
      });
    });

    test('pickAvailableItem: an expired lease is taken over with a new lease id', async () => {
      await withDb(await target.fresh(), async ({ db }) => {
        await seedRun(db);
        await db.insertInto('work_items').values(item('w1')).execute();
        const pick = (hotkey: string, now: number) => pickAvailableItem(db, { runId: 'run1', stage: 1, hotkey, now, ttlMs: 500 });
        const first = (await pick(HOTKEY_A, T0))!;
        assert.equal(first.lease_expires, T0 + 500);
        assert.equal(await pick(HOTKEY_B, T0 + 499), null); // still held
        const second = (await pick(HOTKEY_B, T0 + 500))!; // expired at T0 + 500
        assert.equal(second.id, 'w1');
        assert.equal(second.leased_to, HOTKEY_B);
        assert.equal(second.attempts, 2);
        assert.equal(second.lease_expires, T0 + 1000);
        assert.notEqual(second.lease_id, first.lease_id);
        assert.equal(await db.selectFrom('work_items').select('id').where('lease_id', '=', first.lease_id).executeTakeFirst(), undefined);
      });
    });

    test('pickAvailableItem: 50 concurrent pickers never get the same item', async () => {
      const PICKERS = 50;
      const ITEMS = 30;
      const REQUIRED = 10; // backward items for pickers 0..9, each for one of them
      await withDb(
        await target.fresh(),
        async ({ db, dialect }) => {
          await seedRun(db, 'run1', ITEMS);
          const hotkeys = Array.from({ length: PICKERS }, (_, i) => `miner-${String(i).padStart(2, '0')}`);
          await db
            .insertInto('work_items')
            .values(
              Array.from({ length: ITEMS }, (_, i) =>
                i < REQUIRED
                  ? item(`w${i}`, { sample_id: `s${i}`, created_at: T0 + i, direction: 'backward', required_hotkey: hotkeys[i] })
                  : item(`w${i}`, { sample_id: `s${i}`, created_at: T0 + i }),
              ),
            )
            .execute();
          // PostgreSQL: each picker keeps its transaction (and its row lock) open until all 50 have
          // picked, so they really run side by side and must skip one another's rows, not wait.
          // SQLite runs transactions one at a time, so there the pickers just queue.
          const arrive = dialect === 'postgres' ? barrier(PICKERS, 15_000) : async () => {};
          const results = await Promise.all(
            hotkeys.map((hotkey) =>
              withTransaction(db, async (trx) => {
                const got = await pickAvailableItem(trx, { runId: 'run1', stage: 1, hotkey, now: T0 + 1000, ttlMs: 60_000 });
                await arrive();
                return { hotkey, got };
              }),
            ),
          );
          const won = results.filter((r) => r.got !== null);
          assert.equal(won.length, ITEMS);
          assert.equal(new Set(won.map((r) => r.got!.id)).size, ITEMS);
          assert.equal(new Set(won.map((r) => r.got!.lease_id)).size, ITEMS);
          for (const { hotkey, got } of won) {
            assert.equal(got!.leased_to, hotkey);
            if (got!.required_hotkey !== null) assert.equal(got!.required_hotkey, hotkey);
          }
          for (let i = 0; i < REQUIRED; i++) assert.equal(results[i].got?.id, `w${i}`, `picker ${i} gets its backward item`);
          const rows = await db.selectFrom('work_items').selectAll().orderBy('id').execute();
          assert.ok(rows.every((r) => r.status === 'leased' && r.attempts === 1));
          const byId = new Map(won.map((r) => [r.got!.id, r]));
          for (const r of rows) assert.equal(r.lease_id, byId.get(r.id)!.got!.lease_id);
        },
        { poolSize: PICKERS + 5 },
      );
    });
  });
}

describe('database URLs', () => {
  test('parses the accepted forms', () => {
    assert.deepEqual(parseDatabaseUrl('sqlite:runs/orch.db'), { dialect: 'sqlite', path: 'runs/orch.db' });
    assert.deepEqual(parseDatabaseUrl('sqlite:///var/lib/tah/orch.db'), { dialect: 'sqlite', path: '/var/lib/tah/orch.db' });
    assert.deepEqual(parseDatabaseUrl('sqlite::memory:'), { dialect: 'sqlite', path: ':memory:' });
    assert.deepEqual(parseDatabaseUrl('./orch.sqlite'), { dialect: 'sqlite', path: './orch.sqlite' });
    assert.deepEqual(parseDatabaseUrl('postgres://u:p@h/db'), { dialect: 'postgres', url: 'postgres://u:p@h/db' });
    assert.deepEqual(parseDatabaseUrl('postgresql://h:5433/db?sslmode=require'), { dialect: 'postgres', url: 'postgresql://h:5433/db?sslmode=require' });
    assert.equal(redactUrl('postgres://user:hunter2@db.example:5432/tah'), 'postgres://user:***@db.example:5432/tah');
    assert.equal(redactUrl('postgres://user@db.example/tah'), 'postgres://user@db.example/tah');
  });

  test('an in-memory SQLite database works', async () => {
    await withDb('sqlite::memory:', async ({ db, dialect }) => {
      assert.equal(dialect, 'sqlite');
      await db.insertInto('kv').values({ key: 'k', value: 'v' }).execute();
      assert.equal((await db.selectFrom('kv').select('value').executeTakeFirst())?.value, 'v');
    });
  });

  const oneLine = (re: RegExp) => (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.doesNotMatch(err.message, /\n/);
    assert.match(err.message, re);
    return true;
  };

  test('clear one-line errors', async () => {
    await assert.rejects(openDatabase('mysql://root@localhost/tah'), oneLine(/^unknown database URL 'mysql:\/\/root@localhost\/tah': use sqlite:PATH/));
    await assert.rejects(openDatabase('orchestrator-state'), oneLine(/^unknown database URL 'orchestrator-state'/));
    await assert.rejects(openDatabase('http://x/y.db'), oneLine(/^unknown database URL/));
    await assert.rejects(openDatabase('sqlite:'), oneLine(/names no file/));

    const notDb = join(tmp, 'notes.db');
    writeFileSync(notDb, 'these are notes, not a database\n'.repeat(200));
    await assert.rejects(openDatabase(`sqlite:${notDb}`), oneLine(new RegExp(`^sqlite:${notDb} is not an SQLite database$`)));
    await assert.rejects(openDatabase(`sqlite:${tmp}`), oneLine(/^cannot open sqlite:/)); // a directory

    const refused = openDatabase('postgres://tah:hunter2@127.0.0.1:1/tah', { connectTimeoutMs: 2000 });
    await assert.rejects(refused, oneLine(/^cannot connect to PostgreSQL at postgres:\/\/tah:\*\*\*@127\.0\.0\.1:1\/tah: .*ECONNREFUSED/));
    await assert.rejects(openDatabase('postgres://tah:hunter2@127.0.0.1:1/tah'), (err: Error) => !err.message.includes('hunter2'));
  });

  test('clear errors from a PostgreSQL server', { skip: cluster ? false : (postgresMissing() ?? 'no PostgreSQL') }, async () => {
    const missing = cluster!.url.replace(/\/postgres$/, '/no_such_db');
    await assert.rejects(openDatabase(missing), oneLine(/^cannot connect to PostgreSQL at .*\/no_such_db: database "no_such_db" does not exist$/));
    // A bigint past 2^53 is refused rather than rounded.
    await withDb(await cluster!.createDatabase(), async ({ db }) => {
      await assert.rejects(sql`select 9007199254740993::int8 as n`.execute(db), /too large for a JS number/);
      assert.deepEqual((await sql<{ n: number }>`select 9007199254740991::int8 as n`.execute(db)).rows, [{ n: 9007199254740991 }]);
    });
  });
});
