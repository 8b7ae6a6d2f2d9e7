// The real orchestrator over HTTP on loopback, with real sr25519 signatures and the local blob
// store, on SQLite and on PostgreSQL (a throwaway cluster, where Debian's postgresql is
// installed). A settable clock stands in for waiting: server and clients read the same one.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OrchestratorClient, OrchestratorError } from '../../orchestrator-client/client.ts';
import { type Hardware, type Lease } from '../../orchestrator-client/protocol.ts';
import { type Keypair, keypairFromSeed, ready, signRequest } from '../../orchestrator-client/signing.ts';
import { type Orchestrator, startOrchestrator } from '../../orchestrator/service.ts';
import { downloadFromUrl, uploadToUrl } from '../../orchestrator-client/transfer.ts';
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

/** Uploads a payload to the lease's output and completes it. */
async function finish(c: OrchestratorClient, lease: Lease, payload: Uint8Array, loss?: number) {
  if (lease.output.kind !== 'none') await uploadToUrl(lease.output.url, payload);
  return c.complete({ lease_id: lease.id, ...(lease.output.kind !== 'none' ? { output: { key: lease.output.key, bytes: payload.length } } : {}), ...(loss !== undefined ? { loss } : {}) });
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
      const f0 = (await a.lease()).lease!;
      assert.equal(f0.direction, 'forward');
      assert.deepEqual(f0.input.kind, 'sample');
      const activation = new Uint8Array([1, 2, 3, 4, 5]);
      assert.deepEqual(await finish(a, f0, activation), { status: 'accepted' });
      assert.deepEqual(await a.complete({ lease_id: f0.id, output: { key: f0.output.key, bytes: 5 } }), { status: 'duplicate' }, 'a second completion is acknowledged, not applied');

      const f1 = (await b.lease()).lease!;
      assert.equal(f1.sample_id, f0.sample_id);
      assert.equal(f1.output.kind, 'gradient');
      assert.ok(f1.input.kind === 'blob');
      assert.deepEqual(await downloadFromUrl(f1.input.url, { maxBytes: 100 }), activation);
      await finish(b, f1, new Uint8Array([9, 9]), 5.25);

      const b0 = (await a.lease()).lease!;
      assert.equal(b0.direction, 'backward', 'backward work comes before new forward work');
      assert.equal(b0.sample_id, f0.sample_id);
      assert.equal(b0.forward_input?.kind, 'sample');
      assert.equal(b0.output.kind, 'none');
      await finish(a, b0, new Uint8Array());

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
      const lease = (await c.lease()).lease!;
      assert.equal(lease.stage, 0);
      const other = lease.output.url.replace(encodeURIComponent(lease.output.key).replace(/%2F/g, '/'), 'runs/run1/samples/elsewhere.safetensors');
      assert.notEqual(other, lease.output.url);
      const put = await fetch(other, { method: 'PUT', body: new Uint8Array([1]), headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(put.status, 403, 'a PUT URL for one key cannot write another');
      const get = await fetch(lease.output.url);
      assert.ok(get.status === 403 || get.status === 400, `a PUT URL cannot read (got ${get.status})`);
      await uploadToUrl(lease.output.url, new Uint8Array([7]));
      await rejects(c.complete({ lease_id: lease.id, output: { key: 'runs/run1/samples/elsewhere.safetensors', bytes: 1 } }), 'forbidden', 403);
      await rejects(c.complete({ lease_id: lease.id, output: { key: lease.output.key, bytes: 2 } }), 'bad_request', 400);
      assert.deepEqual(await c.complete({ lease_id: lease.id, output: { key: lease.output.key, bytes: 1 } }), { status: 'accepted' });
    });

    test('an expired lease is offered to another miner; the first holder can no longer complete it', async () => {
      const d = client('d');
      const e = client('e');
      await d.register({ role: 'miner', hardware });
      await d.move(0);
      await e.register({ role: 'miner', hardware });
      await e.move(0);
      const first = (await d.lease()).lease!;
      clock += 61_000;
      // Ask until e gets the same work item (other items of the stage may come first).
      let second: Lease | null = null;
      for (let i = 0; i < 10 && second?.sample_id !== first.sample_id; i++) second = (await e.lease()).lease;
      assert.equal(second?.sample_id, first.sample_id);
      assert.equal(second?.direction, first.direction);
      await uploadToUrl(first.output.url, new Uint8Array([1]));
      await rejects(d.complete({ lease_id: first.id, output: { key: first.output.key, bytes: 1 } }), 'lease_expired', 410);
      assert.deepEqual(await finish(e, second!, new Uint8Array([2])), { status: 'accepted' });
    });

    test('a lease past its time that nobody else took still completes (uploads in flight are not lost)', async () => {
      const f = client('f');
      await f.register({ role: 'miner', hardware });
      await f.move(0);
      const lease = (await f.lease()).lease!;
      await uploadToUrl(lease.output.url, new Uint8Array([3]));
      clock += 120_000;
      assert.deepEqual(await f.complete({ lease_id: lease.id, output: { key: lease.output.key, bytes: 1 } }), { status: 'accepted' });
    });

    test('a silent miner is reaped and its work goes back to the queue', async () => {
      const g = client('g');
      await g.register({ role: 'miner', hardware });
      await g.move(0);
      const lease = (await g.lease()).lease!;
      // Everyone else keeps talking; g falls silent past the heartbeat timeout.
      clock += 91_000;
      for (const n of ['a', 'b', 'c', 'd', 'e', 'f', 'validator']) await client(n).heartbeat();
      const gone = await orch.coordinator.reap();
      assert.deepEqual(gone, [key('g').address]);
      const item = await orch.database.db.selectFrom('work_items').select(['status', 'leased_to']).where('lease_id', '=', lease.id).executeTakeFirst();
      assert.equal(item, undefined, 'the lease is gone');
      // Nothing waits on the vanished miner: the same work goes to the next miner that asks.
      let again: Lease | null = null;
      for (let i = 0; i < 20 && !(again?.sample_id === lease.sample_id && again.direction === lease.direction); i++) again = (await client('a').lease()).lease;
      assert.equal(again?.sample_id, lease.sample_id);
      await rejects(g.lease(), 'not_registered', 403);
      await g.register({ role: 'miner', hardware });
      assert.ok((await g.heartbeat()).server_time > 0, 'registering again brings it back');
    });
  });
}
