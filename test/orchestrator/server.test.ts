// The real orchestrator over HTTP on loopback, with real sr25519 signatures and the local blob
// store, on SQLite and on PostgreSQL (a throwaway cluster, where Debian's postgresql is
// installed). A settable clock stands in for waiting: server and clients read the same one.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OrchestratorClient, OrchestratorError } from '../../orchestrator-client/client.ts';
import { type Hardware, type Lease, type LeaseRequest } from '../../orchestrator-client/protocol.ts';
import { type Keypair, keypairFromSeed, ready, signRequest } from '../../orchestrator-client/signing.ts';
import { type Orchestrator, startOrchestrator } from '../../orchestrator/service.ts';
import { blobSha256, downloadFromUrl, uploadToUrl } from '../../orchestrator-client/transfer.ts';
import { encodeBlob } from '../../worker/miner/blobs.ts';
import { postgresMissing, startPostgres } from '../helpers/postgres.ts';

let clock = Date.UTC(2026, 10, 22);
const now = (): number => clock;
let dir = '';
let orch: Orchestrator;
const keys = new Map<string, Keypair>();
const hardware: Hardware = { device: 'cpu', cores: 2, memory_bytes: 8 * 2 ** 30, tokens_per_s: 1000 };

function key(name: string): Keypair {
  if (!keys.has(name)) keys.set(name, keypairFromSeed(new Uint8Array(32).fill(keys.size + 1)));
  return keys.get(name)!;
}
const client = (name: string): OrchestratorClient => new OrchestratorClient({ baseUrl: orch.url, keypair: key(name), now, attempts: 1 });

const errorOf = async (r: Response): Promise<string> => ((await r.json()) as { error: { code: string } }).error.code;

async function rejects(p: Promise<unknown>, code: string, status: number): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof OrchestratorError, String(e));
    assert.equal(e.code, code, e.message);
    assert.equal(e.status, status);
    return true;
  });
}

const cluster = await startPostgres();
after(async () => {
  await cluster?.stop();
});

const targets = [
  { name: 'sqlite', skip: false as string | false, db: async () => `sqlite:${join(dir, 'o.db')}` },
  { name: 'postgres', skip: cluster ? (false as const) : (postgresMissing() ?? 'no PostgreSQL'), db: () => cluster!.createDatabase() },
];

/** A well-formed blob of the run's tiny preset (seq_len 64, d_model 64, one row a sample), filled with `fill`. */
function blob(kind: 'activation' | 'gradient', fill = 0): Uint8Array {
  // A plain Uint8Array (encodeBlob hands back a Buffer), to compare with what downloads return.
  return new Uint8Array(encodeBlob(kind, { rows: 1, seqLen: 64, dModel: 64, length: 0 }, { [kind]: new Float32Array(64 * 64).fill(fill) }));
}

/** The next task for `c`, which must be a sample's work item (or null when there is none). */
async function work(c: OrchestratorClient, req?: LeaseRequest): Promise<Lease | null> {
  const task = (await c.lease(req)).lease;
  if (task === null) return null;
  assert.equal(task.kind, 'work', `expected a work item, got ${JSON.stringify(task).slice(0, 300)}`);
  return task as Lease;
}

/** What a completion reports for `payload` uploaded to `key`. */
const uploaded = (key: string, payload: Uint8Array) => ({ key, bytes: payload.length, sha256: blobSha256(payload) });

/** Uploads the blob the lease's output asks for (a valid one unless `payload` is given) and completes it. */
async function finish(c: OrchestratorClient, lease: Lease, loss?: number, payload?: Uint8Array, next?: LeaseRequest) {
  const out = lease.output.kind === 'none' ? undefined : (payload ?? blob(lease.output.kind));
  if (out) await uploadToUrl(lease.output.url, out);
  return c.complete({ lease_id: lease.id, ...(out ? { output: uploaded(lease.output.key, out) } : {}), ...(loss !== undefined ? { loss } : {}), ...(next ? { next } : {}) });
}

/** An upload the store refuses (the lease it belongs to no longer stands). */
async function refusedUpload(url: string, payload: Uint8Array): Promise<void> {
  await assert.rejects(uploadToUrl(url, payload), (e: Error) => /403/.test(e.message) && /no longer writes/.test(e.message));
}

for (const target of targets) {
  describe(target.name, { skip: target.skip }, () => {
    before(async () => {
      await ready();
      keys.clear();
      dir = await mkdtemp(join(tmpdir(), 'tah-orch-'));
      orch = await startOrchestrator({ db: await target.db(), storage: `local:${join(dir, 'blobs')}`, operator: key('operator').address, now, reapIntervalMs: 3_600_000 });
      await client('operator').createRun({ id: 'run1', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 8, lease_ttl_s: 60, heartbeat_timeout_s: 90 });
    });
    after(async () => {
      await orch.close();
      await rm(dir, { recursive: true, force: true });
    });

    test('a sample travels the pipeline forward and back; its pathway and loss are recorded', async () => {
      const a = client('a');
      const b = client('b');
      assert.equal((await a.register({ role: 'miner', hardware })).stage, 0);
      assert.equal((await b.register({ role: 'miner', hardware })).stage, 1);
      const f0 = (await work(a))!;
      assert.equal(f0.direction, 'forward');
      assert.equal(f0.round, 0);
      assert.equal(f0.output.kind, 'activation');
      // The sample is a slice of round 0's single-process batch: 8 samples of one row each.
      assert.deepEqual(f0.sample, { seed: 0, step: 0, batch_size: 8, first_row: f0.sample.first_row, rows: 1 });
      assert.deepEqual(f0.input, { kind: 'sample', ...f0.sample });
      const activation = blob('activation', 1.5);
      assert.deepEqual(await finish(a, f0, undefined, activation), { status: 'accepted' });
      assert.deepEqual(await a.complete({ lease_id: f0.id, output: uploaded(f0.output.key, activation) }), { status: 'duplicate' }, 'a second completion is acknowledged, not applied');

      const f1 = (await work(b))!;
      assert.equal(f1.sample_id, f0.sample_id);
      assert.deepEqual(f1.sample, f0.sample);
      assert.equal(f1.output.kind, 'gradient');
      assert.ok(f1.input.kind === 'blob');
      assert.deepEqual(await downloadFromUrl(f1.input.url, { maxBytes: activation.length }), activation);
      await finish(b, f1, 5.25);

      const b0 = (await work(a))!;
      assert.equal(b0.direction, 'backward', 'backward work comes before new forward work');
      assert.equal(b0.sample_id, f0.sample_id);
      assert.equal(b0.forward_input?.kind, 'sample');
      assert.equal(b0.output.kind, 'none');
      await finish(a, b0);

      const path = await a.pathway('run1', f0.sample_id);
      assert.deepEqual(path, {
        sample_id: f0.sample_id,
        run_id: 'run1',
        loss: 5.25,
        done: true,
        stages: [
          { stage: 0, forward_miner: key('a').address, backward_miner: key('a').address },
          { stage: 1, forward_miner: key('b').address, backward_miner: key('b').address },
        ],
      });
      const stage1Items = await orch.database.db.selectFrom('work_items').select('id').where('sample_id', '=', f0.sample_id).where('stage', '=', 1).execute();
      assert.equal(stage1Items.length, 1, 'the duplicate completion created no second item');
    });

    test('forged, stale, replayed and wrong-role requests are refused', async () => {
      const raw = async (headers: Record<string, string>, body = '{}', path = '/v1/leases/next') =>
        fetch(`${orch.url}${path}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body });
      const sign = (k: Keypair, body = '{}', at = clock, path = '/v1/leases/next') => signRequest(k, { method: 'POST', path, body: new TextEncoder().encode(body) }, { now: at });

      const forged = { ...sign(key('mallory')), 'x-tah-hotkey': key('a').address };
      const r1 = await raw(forged);
      assert.equal(r1.status, 401);
      assert.equal((await errorOf(r1)), 'unauthorized');

      const r2 = await raw(sign(key('a'), '{}', clock - 120_000));
      assert.equal(r2.status, 401);
      assert.equal((await errorOf(r2)), 'stale_request');

      const once = sign(key('a'));
      assert.equal((await raw(once)).status, 200);
      const r3 = await raw(once);
      assert.equal(r3.status, 401);
      assert.equal((await errorOf(r3)), 'replayed_request');

      const r4 = await raw(sign(key('a'), '{"x":1}'), '{"x":2}');
      assert.equal(r4.status, 401, 'a body changed after signing is refused');

      await rejects(client('stranger').lease(), 'not_registered', 403);
      await client('validator').register({ role: 'validator', hardware });
      await rejects(client('validator').lease(), 'forbidden', 403);
      await rejects(client('a').createRun({ id: 'x', preset: 'tiny', stages: [[0, 3]], samples_per_round: 1 }), 'forbidden', 403);
    });

    test('a lease only reaches its own keys, also through the blob URLs', async () => {
      const c = client('c');
      await c.register({ role: 'miner', hardware });
      await c.move(0);
      const lease = (await work(c))!;
      assert.equal(lease.stage, 0);
      const other = lease.output.url.replace(encodeURIComponent(lease.output.key).replace(/%2F/g, '/'), 'runs/run1/samples/elsewhere.safetensors');
      assert.notEqual(other, lease.output.url);
      const put = await fetch(other, { method: 'PUT', body: new Uint8Array([1]), headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(put.status, 403, 'a PUT URL for one key cannot write another');
      const get = await fetch(lease.output.url);
      assert.ok(get.status === 403 || get.status === 400, `a PUT URL cannot read (got ${get.status})`);
      const payload = blob('activation');
      await uploadToUrl(lease.output.url, payload);
      await rejects(c.complete({ lease_id: lease.id, output: uploaded('runs/run1/samples/elsewhere.safetensors', payload) }), 'forbidden', 403);
      await rejects(c.complete({ lease_id: lease.id, output: { ...uploaded(lease.output.key, payload), bytes: payload.length + 1 } }), 'bad_request', 400);
      // A refused upload is removed; the lease (still its holder's) uploads again and completes.
      await uploadToUrl(lease.output.url, payload);
      assert.deepEqual(await c.complete({ lease_id: lease.id, output: uploaded(lease.output.key, payload) }), { status: 'accepted' });
      await assert.rejects(uploadToUrl(lease.output.url, blob('activation', 2)), (e: Error) => /403/.test(e.message), 'an accepted upload cannot be written again');
    });

    test('an expired lease is offered to another miner; the first holder can no longer complete it', async () => {
      const d = client('d');
      const e = client('e');
      await d.register({ role: 'miner', hardware });
      await d.move(0);
      await e.register({ role: 'miner', hardware });
      await e.move(0);
      const first = (await work(d))!;
      clock += 61_000;
      // Ask until e gets the same work item (other items of the stage may come first).
      let second: Lease | null = null;
      for (let i = 0; i < 10 && second?.sample_id !== first.sample_id; i++) second = await work(e);
      assert.equal(second?.sample_id, first.sample_id);
      assert.equal(second?.direction, first.direction);
      const late = blob('activation');
      await refusedUpload(first.output.url, late);
      await rejects(d.complete({ lease_id: first.id, output: uploaded(first.output.key, late) }), 'lease_expired', 410);
      assert.deepEqual(await finish(e, second!), { status: 'accepted' });
    });

    test('a lease past its time that nobody else took still completes (uploads in flight are not lost)', async () => {
      const f = client('f');
      await f.register({ role: 'miner', hardware });
      await f.move(0);
      const lease = (await work(f))!;
      const payload = blob('activation');
      await uploadToUrl(lease.output.url, payload);
      clock += 120_000;
      assert.deepEqual(await f.complete({ lease_id: lease.id, output: uploaded(lease.output.key, payload) }), { status: 'accepted' });
    });

    test('a silent miner is reaped and its work goes back to the queue', async () => {
      const g = client('g');
      await g.register({ role: 'miner', hardware });
      await g.move(0);
      const lease = (await work(g))!;
      // Everyone else keeps talking; g falls silent past the heartbeat timeout.
      clock += 91_000;
      for (const n of ['a', 'b', 'c', 'd', 'e', 'f', 'validator']) await client(n).heartbeat();
      const gone = await orch.coordinator.reap();
      assert.deepEqual(gone, [key('g').address]);
      const item = await orch.database.db.selectFrom('work_items').select(['status', 'leased_to']).where('lease_id', '=', lease.id).executeTakeFirst();
      assert.equal(item, undefined, 'the lease is gone');
      // Nothing waits on the vanished miner: the same work goes to the next miner that asks.
      let again: Lease | null = null;
      for (let i = 0; i < 20 && !(again?.sample_id === lease.sample_id && again.direction === lease.direction); i++) again = await work(client('a'));
      assert.equal(again?.sample_id, lease.sample_id);
      await rejects(g.lease(), 'not_registered', 403);
      await g.register({ role: 'miner', hardware });
      assert.ok((await g.heartbeat()).server_time > 0, 'registering again brings it back');
    });

    test('registering again (a miner restart) hands back what it held: its leases and its backward work are offered again', async () => {
      const h = client('h');
      const c = client('c');
      const b = client('b');
      await h.register({ role: 'miner', hardware });
      await h.move(0);
      // h takes a sample forward and holds another forward; stage 1 finishes the first sample,
      // so its backward waits for h.
      const fwd = (await work(h))!;
      assert.equal(fwd.direction, 'forward');
      assert.deepEqual(await finish(h, fwd), { status: 'accepted' });
      const held = (await work(h))!;
      assert.equal(held.direction, 'forward');
      let last: Lease | null = null;
      for (let i = 0; i < 20 && last?.sample_id !== fwd.sample_id; i++) last = await work(b);
      assert.equal(last?.sample_id, fwd.sample_id);
      await finish(b, last!, 4.25);
      const backwardId = `run1.${fwd.sample_id}.0.b`;
      const requiredHotkey = async () => (await orch.database.db.selectFrom('work_items').select('required_hotkey').where('id', '=', backwardId).executeTakeFirstOrThrow()).required_hotkey;
      assert.equal(await requiredHotkey(), key('h').address, 'the backward waits for the miner that ran the forward');
      assert.equal((await h.heartbeat()).leases_held, 1);

      const again = await h.register({ role: 'miner', hardware });
      assert.equal(again.stage, 0, 'it keeps its stage');
      assert.equal((await h.heartbeat()).leases_held, 0, 'it holds nothing any more');
      const item = await orch.database.db.selectFrom('work_items').select(['status', 'lease_id', 'leased_to']).where('id', '=', `run1.${held.sample_id}.0.f`).executeTakeFirstOrThrow();
      assert.deepEqual(item, { status: 'pending', lease_id: null, leased_to: null }, 'its lease went back to the queue');
      assert.equal(await requiredHotkey(), null, 'its backward work is anyone’s now');
      await refusedUpload(held.output.url, blob('activation'));
      await rejects(h.complete({ lease_id: held.id, output: uploaded(held.output.key, blob('activation')) }), 'lease_expired', 410);

      // Another miner of the stage gets the backward (before any forward work), and completes it.
      const bwd = (await work(c))!;
      assert.equal(bwd.direction, 'backward');
      assert.equal(bwd.sample_id, fwd.sample_id);
      assert.deepEqual(await finish(c, bwd), { status: 'accepted' });
      assert.deepEqual((await c.pathway('run1', fwd.sample_id)).stages[0], { stage: 0, forward_miner: key('h').address, backward_miner: key('c').address });
      assert.equal((await c.pathway('run1', fwd.sample_id)).done, true);
      // The forward h held is offered again.
      let retaken: Lease | null = null;
      for (let i = 0; i < 20 && !(retaken?.sample_id === held.sample_id && retaken.direction === 'forward'); i++) retaken = await work(h);
      assert.equal(retaken?.sample_id, held.sample_id);
      assert.notEqual(retaken?.id, held.id, 'under a new lease');
    });

    test('a miner that leaves hands back its leases at once and is no longer registered', async () => {
      const h = client('h');
      const before = (await h.run('run1')).miners_per_stage[0];
      const held = await orch.database.db.selectFrom('work_items').select('id').where('leased_to', '=', key('h').address).where('status', '=', 'leased').execute();
      assert.ok(held.length > 0, 'h holds work');
      assert.deepEqual(await h.leave(), { status: 'left' });
      for (const { id } of held) {
        const row = await orch.database.db.selectFrom('work_items').select(['status', 'leased_to']).where('id', '=', id).executeTakeFirstOrThrow();
        assert.deepEqual(row, { status: 'pending', leased_to: null });
      }
      assert.equal((await client('a').run('run1')).miners_per_stage[0], before - 1);
      await rejects(h.heartbeat(), 'not_registered', 403);
      await rejects(h.lease(), 'not_registered', 403);
      await rejects(h.leave(), 'not_registered', 403);
    });

    test('the run and its status report progress: no round reduced yet, the miners and their stages', async () => {
      const a = client('a');
      const run = await a.run('run1');
      assert.equal(run.status, 'active');
      assert.equal(run.rounds_done, 0);
      assert.equal(run.rows_per_sample, 1, 'the default');
      assert.equal(run.rounds, undefined);
      const status = await a.runStatus('run1');
      assert.equal(status.run_id, 'run1');
      assert.equal(status.status, 'active');
      assert.equal(status.rounds, null);
      assert.equal(status.rounds_done, 0);
      assert.deepEqual(status.losses, []);
      assert.deepEqual(status.snapshots, []);
      const byKey = new Map(status.miners.map((m) => [m.hotkey, m]));
      assert.equal(byKey.get(key('a').address)?.stage, 0);
      assert.equal(byKey.get(key('b').address)?.stage, 1);
      assert.equal(byKey.get(key('h').address)?.status, 'gone');
      assert.ok(!byKey.has(key('validator').address), 'validators are not listed as miners');
      await rejects(a.runStatus('no-such-run'), 'not_found', 404);
    });

    test(
      'a lease claiming more rounds applied than the run has reduced (as after a rollback) answers a sync to a stored state, and the claim is not recorded',
      async () => {
        const a = client('a');
        const version = async () => (await orch.database.db.selectFrom('participants').select('version').where('hotkey', '=', key('a').address).executeTakeFirstOrThrow()).version;
        const before = await version();
        const res = await a.lease({ version: 5 });
        assert.equal(res.lease?.kind, 'sync');
        assert.deepEqual(res.lease, { kind: 'sync', run_id: 'run1', stage: 0, rounds: 0, blob: null, hash: null }, 'no state is stored yet: the initial one');
        assert.equal(await version(), before, 'the miner’s version as it was');
      },
    );

    test('a completion or an applied report can lease the next task in the same request', async () => {
      const n = client('n');
      await n.register({ role: 'miner', hardware });
      await n.move(0);
      const first = (await work(n))!;
      assert.equal(first.direction, 'forward');
      const out = blob('activation');
      await uploadToUrl(first.output.url, out);
      const done = await n.complete({ lease_id: first.id, output: uploaded(first.output.key, out), next: { version: 0 } });
      assert.equal(done.status, 'accepted');
      const next = done.next?.lease;
      assert.ok(next?.kind === 'work', `expected a work item with the completion, got ${JSON.stringify(done).slice(0, 300)}`);
      assert.notEqual(next.sample_id, first.sample_id);
      const row = await orch.database.db.selectFrom('work_items').select(['status', 'leased_to']).where('lease_id', '=', next.id).executeTakeFirstOrThrow();
      assert.deepEqual(row, { status: 'leased', leased_to: key('n').address }, 'the task came leased');
      // Not asked: nothing leased.
      assert.deepEqual(await finish(n, next), { status: 'accepted' });
      assert.equal((await orch.database.db.selectFrom('work_items').select('id').where('leased_to', '=', key('n').address).where('status', '=', 'leased').execute()).length, 0);
      // An applied report asks the same way.
      const applied = await n.applied({ round: 0, next: { version: 0 } });
      assert.equal(applied.status, 'ok');
      assert.ok(applied.next !== undefined, 'the answer holds what /v1/leases/next would');
      const task = applied.next.lease;
      if (task && 'id' in task) await n.release(task.id);
      assert.equal((await n.applied({ round: 0 })).next, undefined);
    });

    test('a report brings no task while another miner of its stage is asking: work goes to whoever asked first', async () => {
      const n = client('n');
      const m = client('m');
      await m.register({ role: 'miner', hardware });
      await m.move(0);
      // n takes what stage 0 has (with the leases of earlier tests expired), so that m's request has to wait.
      clock += 61_000;
      const held: Lease[] = [];
      for (let task = await work(n); task; task = await work(n)) held.push(task);
      assert.ok(held.length > 0, 'n holds work');
      clock += 1000;
      const asking = m.lease({ wait_ms: 3000 });
      const seen = async () => (await orch.database.db.selectFrom('participants').select('last_seen').where('hotkey', '=', key('m').address).executeTakeFirstOrThrow()).last_seen;
      while ((await seen()) !== clock) await new Promise((r) => setImmediate(r));
      const first = await finish(n, held.pop()!, undefined, undefined, { version: 0 });
      assert.equal(first.status, 'accepted');
      assert.equal(first.next, undefined, 'm asked first');
      // m's wait ends (by the test's clock) at its next look.
      clock += 5000;
      await asking;
      // Nobody asking: the report brings the answer.
      const second = await n.applied({ round: 0, next: { version: 0 } });
      assert.ok(second.next !== undefined);
      const task = second.next.lease;
      if (task && 'id' in task) await n.release(task.id);
      for (const t of held) await n.release(t.id);
    });
  });
}
