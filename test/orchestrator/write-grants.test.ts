// The write gate: which uploads the local store may still take. A URL's grant is a lease (or a
// snapshot assignment); it writes its own keys while it stands, and nothing writes an accepted key.
// On an SQLite database in memory, rows as the coordinator writes them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Db, openDatabase } from '../../orchestrator/db/open.ts';
import type { NewWorkItem } from '../../orchestrator/db/schema.ts';
import { writeRefusal } from '../../orchestrator/write-grants.ts';

const T0 = Date.UTC(2026, 11, 7);
let database: Db;

const item = (id: string, over: Partial<NewWorkItem>): NewWorkItem => ({
  id,
  run_id: 'run1',
  sample_id: 's0',
  stage: 0,
  direction: 'forward',
  status: 'leased',
  input_key: null,
  output_key: `out/${id}`,
  required_hotkey: null,
  lease_id: `lease-${id}`,
  leased_to: 'miner',
  lease_expires: T0 + 60_000,
  completed_by: null,
  completed_at: null,
  output_bytes: null,
  created_at: T0,
  ...over,
});

before(async () => {
  database = await openDatabase('sqlite::memory:');
  const db = database.db;
  await db.insertInto('runs').values({ id: 'run1', spec_json: '{}', created_at: T0 }).execute();
  await db.insertInto('samples').values({ run_id: 'run1', id: 's0', round: 0, seed: 0, shard: 0, idx: 0, loss: null, created_at: T0 }).execute();
  // One statement each: in a multi-row insert SQLite fills a column some rows leave out with null, not its default.
  for (const row of [
    item('leased', {}),
    item('done', { status: 'done' }),
    item('released', { status: 'pending', lease_id: null }),
    item('share', { direction: 'share', output_key: '', detail_json: JSON.stringify({ slices: [[0, 4], [4, 8]], keys: ['share/0', 'share/1'] }) }),
  ])
    await db.insertInto('work_items').values(row).execute();
  await db.insertInto('snapshots').values([
    { run_id: 'run1', stage: 0, rounds: 5, key: 'snap/5-g1', bytes: null, status: 'assigned', holder: 'miner', assigned_at: T0, lease_id: 'g1' },
    { run_id: 'run1', stage: 0, rounds: 10, key: 'snap/10-g2', bytes: 1, status: 'done', holder: 'miner', assigned_at: T0, lease_id: 'g2' },
  ]).execute();
  await db.insertInto('blobs').values({ key: 'out/leased-accepted', run_id: 'run1', sha256: 'ab'.repeat(32), bytes: 1, producer: 'miner', accepted_at: T0 }).execute();
});

after(async () => {
  await database?.close();
});

test('a standing lease writes its own output key, and no other', async () => {
  assert.equal(await writeRefusal(database.db, 'out/leased', 'lease-leased'), null);
  assert.match((await writeRefusal(database.db, 'out/done', 'lease-leased'))!, /lease lease-leased no longer writes out\/done/);
});

test('a share lease writes each of its slices', async () => {
  assert.equal(await writeRefusal(database.db, 'share/0', 'lease-share'), null);
  assert.equal(await writeRefusal(database.db, 'share/1', 'lease-share'), null);
  assert.notEqual(await writeRefusal(database.db, 'share/2', 'lease-share'), null);
});

test('a completed, released or unknown lease writes nothing', async () => {
  assert.match((await writeRefusal(database.db, 'out/done', 'lease-done'))!, /completed, released or passed to another miner/);
  assert.match((await writeRefusal(database.db, 'out/released', 'lease-released'))!, /no longer writes/);
  assert.match((await writeRefusal(database.db, 'out/leased', 'lease-nobody'))!, /no longer writes/);
  assert.match((await writeRefusal(database.db, 'out/leased', undefined))!, /names no lease/);
});

test("a snapshot assignment writes its state until it is stored; an accepted key is written by nobody", async () => {
  assert.equal(await writeRefusal(database.db, 'snap/5-g1', 'g1'), null);
  assert.match((await writeRefusal(database.db, 'snap/10-g2', 'g2'))!, /no longer this uploader's to write/);
  assert.notEqual(await writeRefusal(database.db, 'snap/5-g1', 'g2'), null);
  await database.db.insertInto('work_items').values(item('accepted', { output_key: 'out/leased-accepted', lease_id: 'lease-accepted' })).execute();
  assert.match((await writeRefusal(database.db, 'out/leased-accepted', 'lease-accepted'))!, /was accepted already/);
});
