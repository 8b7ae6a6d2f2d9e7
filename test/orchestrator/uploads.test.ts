// What a completion reports uploading is checked before the work counts: the blob must be a
// safetensors file holding exactly the tensor its kind calls for (name, dtype F32, shape, size).
// A wrong blob is refused with a 400 that says what is wrong, it is deleted so that nobody
// downstream can read it, and the lease stays with its miner, who can upload again and complete.
// The real orchestrator over HTTP on loopback, SQLite and the local blob store.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { OrchestratorClient, OrchestratorError } from '../../orchestrator-client/client.ts';
import type { Hardware, Lease, ShareTask, Task } from '../../orchestrator-client/protocol.ts';
import { keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { blobSha256, uploadToUrl } from '../../orchestrator-client/transfer.ts';
import { type Orchestrator, startOrchestrator } from '../../orchestrator/service.ts';
import { LocalBlobStore } from '../../orchestrator/storage/local.ts';
import { encodeSafetensors } from '../../worker/checkpoint/safetensors.ts';
import { encodeBlob } from '../../worker/miner/blobs.ts';

const clock = Date.UTC(2026, 10, 22);
const now = (): number => clock;
const hardware: Hardware = { device: 'cpu', cores: 2, memory_bytes: 8 * 2 ** 30, tokens_per_s: 1000 };
// The tiny preset (seq_len 64, d_model 64), two rows a sample: activations are F32 [2, 64, 64].
const ROWS = 2;
const SEQ = 64;
const WIDTH = 64;
const dims = { rows: ROWS, seqLen: SEQ, dModel: WIDTH, length: 0 };

let dir = '';
let orch: Orchestrator;
let store: LocalBlobStore;
let a: OrchestratorClient;
let b: OrchestratorClient;

const client = (seed: number): OrchestratorClient => new OrchestratorClient({ baseUrl: orch.url, keypair: keypairFromSeed(new Uint8Array(32).fill(seed)), now, attempts: 1 });

before(async () => {
  await ready();
  dir = await mkdtemp(join(tmpdir(), 'tah-uploads-'));
  orch = await startOrchestrator({ db: `sqlite:${join(dir, 'o.db')}`, storage: `local:${join(dir, 'blobs')}`, operator: keypairFromSeed(new Uint8Array(32).fill(1)).address, now, reapIntervalMs: 3_600_000 });
  // A second handle on the server's blob directory (its URL key is in the kv table), to look at what is stored.
  const secret = (await orch.database.db.selectFrom('kv').select('value').where('key', '=', 'local_blob_secret').executeTakeFirstOrThrow()).value;
  store = new LocalBlobStore({ dir: join(dir, 'blobs'), secret: Buffer.from(secret, 'hex'), now, baseUrl: orch.url });
  await client(1).createRun({ id: 'run1', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 2, rows_per_sample: ROWS });
  a = client(2);
  b = client(3);
  assert.equal((await a.register({ role: 'miner', hardware })).stage, 0);
  assert.equal((await b.register({ role: 'miner', hardware })).stage, 1);
});

after(async () => {
  await orch?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function next(c: OrchestratorClient): Promise<Task> {
  const task = (await c.lease()).lease;
  assert.ok(task, 'a task is offered');
  return task;
}

async function work(c: OrchestratorClient): Promise<Lease> {
  const task = await next(c);
  assert.equal(task.kind, 'work');
  return task as Lease;
}

const u8 = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
/** What a completion reports for `payload` uploaded to `key`. */
const uploaded = (key: string, payload: Uint8Array) => ({ key, bytes: payload.length, sha256: blobSha256(payload) });

/** A completion reporting `payload` at the lease's output is refused with a 400 whose message matches `why`. */
async function refused(c: OrchestratorClient, lease: Lease, payload: Uint8Array, why: RegExp, extra: { loss?: number } = {}): Promise<void> {
  await uploadToUrl(lease.output.url, payload);
  assert.ok(await store.head(lease.output.key), 'the upload arrived');
  await assert.rejects(c.complete({ lease_id: lease.id, output: uploaded(lease.output.key, payload), ...extra }), (e: unknown) => {
    assert.ok(e instanceof OrchestratorError, String(e));
    assert.equal(e.status, 400, e.message);
    assert.equal(e.code, 'bad_request');
    assert.ok(e.message.startsWith(`upload refused: ${lease.output.key} is not a valid ${lease.output.kind} blob: `), e.message);
    assert.match(e.message, why);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
  assert.equal(await store.head(lease.output.key), null, 'the refused blob is deleted');
  const row = await orch.database.db.selectFrom('work_items').select(['status', 'lease_id', 'leased_to', 'completed_by']).where('lease_id', '=', lease.id).executeTakeFirst();
  assert.deepEqual(row, { status: 'leased', lease_id: lease.id, leased_to: c.hotkey, completed_by: null }, 'the lease is still held');
}

test('an activation upload with the wrong shape, dtype, tensor name, size or no safetensors at all is refused, deleted, and the lease stays held', async () => {
  const lease = await work(a);
  assert.equal(lease.direction, 'forward');
  assert.equal(lease.output.kind, 'activation');
  assert.equal(lease.sample.rows, ROWS);
  const n = ROWS * SEQ * WIDTH;

  // One row where the run has two.
  await refused(a, lease, encodeBlob('activation', { ...dims, rows: 1 }, { activation: new Float32Array(SEQ * WIDTH) }), /tensor activation: expected shape \[128, 64\], got \[64,64\]/);
  // Width and sequence swapped for a flat shape of the same size.
  await refused(a, lease, encodeSafetensors({ activation: { dtype: 'F32', shape: [ROWS, SEQ * WIDTH], data: new Float32Array(n) } }), /expected shape \[128, 64\]/);
  // The right shape in float64 and in float16.
  await refused(a, lease, encodeSafetensors({ activation: { dtype: 'F64', shape: [ROWS, SEQ, WIDTH], data: new Float64Array(n) } }), /tensor activation: expected dtype F32, got "F64"/);
  await refused(a, lease, encodeSafetensors({ activation: { dtype: 'F16', shape: [ROWS, SEQ, WIDTH], data: new Uint16Array(n) } }), /expected dtype F32, got "F16"/);
  // A gradient where an activation belongs, and an extra tensor beside the activation.
  await refused(a, lease, encodeBlob('gradient', dims, { gradient: new Float32Array(n) }), /expected tensors \[activation\], the blob has \[gradient\]/);
  await refused(
    a,
    lease,
    encodeSafetensors({ activation: { dtype: 'F32', shape: [ROWS, SEQ, WIDTH], data: new Float32Array(n) }, extra: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }),
    /expected tensors \[activation\], the blob has \[activation, extra\]/,
  );
  // Not safetensors at all: text, a few bytes, a header that is not JSON.
  await refused(a, lease, new TextEncoder().encode('these are not the tensors you are looking for'), /header length \d+ is over 65536 bytes: not a blob of this run/);
  await refused(a, lease, new Uint8Array([1, 2, 3]), /3 bytes is too short for a safetensors file/);
  const notJson = new Uint8Array(8 + 16);
  new DataView(notJson.buffer).setBigUint64(0, 16n, true);
  notJson.set(new TextEncoder().encode('{not json at all'), 8);
  await refused(a, lease, notJson, /the header is not valid JSON/);
  // A good header over data cut short.
  const whole = u8(encodeBlob('activation', dims, { activation: new Float32Array(n) }));
  await refused(a, lease, whole.subarray(0, whole.length - 4), /the blob has \d+ bytes; its header describes \d+/);

  const beat = await a.heartbeat();
  assert.equal(beat.leases_held, 1, 'after all that the miner still holds its lease');
  assert.equal(await orch.database.db.selectFrom('work_items').select('id').where('stage', '=', 1).executeTakeFirst(), undefined, 'nothing was passed on to stage 1');

  // The same PUT URL takes a correct upload, and the completion goes through.
  const good = encodeBlob('activation', dims, { activation: new Float32Array(n).fill(0.5) });
  await uploadToUrl(lease.output.url, good);
  assert.deepEqual(await a.complete({ lease_id: lease.id, output: uploaded(lease.output.key, good) }), { status: 'accepted' });
  assert.deepEqual(u8(await store.get(lease.output.key)), u8(good), 'the accepted blob is kept as uploaded');

  const downstream = await orch.database.db.selectFrom('work_items').select(['sample_id', 'input_key']).where('stage', '=', 1).execute();
  assert.deepEqual(downstream, [{ sample_id: lease.sample_id, input_key: lease.output.key }], 'stage 1 reads the accepted activation');
});

test('a gradient upload must be a gradient of the sample shape; the refusal comes before the loss is recorded', async () => {
  const lease = await work(b);
  assert.equal(lease.output.kind, 'gradient');
  const n = ROWS * SEQ * WIDTH;
  await refused(b, lease, encodeBlob('activation', dims, { activation: new Float32Array(n) }), /expected tensors \[gradient\], the blob has \[activation\]/, { loss: 5 });
  await refused(b, lease, encodeBlob('gradient', { ...dims, dModel: 32 }, { gradient: new Float32Array(ROWS * SEQ * 32) }), /tensor gradient: expected shape \[128, 64\], got \[128,32\]/, { loss: 5 });
  const sample = await orch.database.db.selectFrom('samples').select('loss').where('id', '=', lease.sample_id).executeTakeFirstOrThrow();
  assert.equal(sample.loss, null, 'no loss recorded for a refused completion');

  const good = encodeBlob('gradient', dims, { gradient: new Float32Array(n) });
  await uploadToUrl(lease.output.url, good);
  assert.deepEqual(await b.complete({ lease_id: lease.id, output: uploaded(lease.output.key, good), loss: 5 }), { status: 'accepted' });
  assert.equal((await b.pathway('run1', lease.sample_id)).loss, 5);
});

/** Where round 0's share was accepted. */
let sharedAt = '';

/** Finishes the round's compute (both samples forward and back through both stages) up to stage 0's share. */
async function computeToShare(): Promise<ShareTask> {
  for (;;) {
    const task = await next(a);
    if (task.kind === 'share') return task;
    assert.equal(task.kind, 'work');
    const lease = task as Lease;
    if (lease.direction === 'forward') {
      const blob = encodeBlob('activation', dims, { activation: new Float32Array(ROWS * SEQ * WIDTH) });
      await uploadToUrl(lease.output.url, blob);
      await a.complete({ lease_id: lease.id, output: uploaded(lease.output.key, blob) });
      const last = await work(b);
      const grad = encodeBlob('gradient', dims, { gradient: new Float32Array(ROWS * SEQ * WIDTH) });
      await uploadToUrl(last.output.url, grad);
      await b.complete({ lease_id: last.id, output: uploaded(last.output.key, grad), loss: 4 });
    } else {
      assert.equal(lease.output.kind, 'none');
      await a.complete({ lease_id: lease.id });
    }
  }
}

test("a share of the round's gradient sum must be a 'grad' tensor of its slice's length", async () => {
  sharedAt = await shareChecks(await computeToShare());
});

test('after a rollback the round is shared again under new keys: the discarded share, deleted behind the rollback, is not the new one', async () => {
  assert.ok(sharedAt, 'round 0 was shared');
  await client(1).rollback('run1', { to: 0, reason: 'again' });
  for (const c of [a, b]) assert.equal((await next(c)).kind, 'sync', 'each replica reloads the initial state');
  const share = await computeToShare();
  const [{ range, upload }] = share.slices;
  assert.notEqual(upload.key, sharedAt);
  const good = encodeBlob('share', { ...dims, length: range[1] - range[0] }, { grad: new Float32Array(range[1] - range[0]).fill(1) });
  await uploadToUrl(upload.url, good);
  assert.deepEqual(await a.complete({ lease_id: share.id, outputs: [uploaded(upload.key, good)] }), { status: 'accepted' });
  assert.equal(await store.head(sharedAt), null, 'the discarded share is gone');
  assert.deepEqual(u8(await store.get(upload.key)), u8(good), 'the new one is kept as uploaded');
});

async function shareChecks(share: ShareTask): Promise<string> {
  assert.equal(share.slices.length, 1, 'one replica: one slice, the whole stage');
  const [{ range, upload }] = share.slices;
  const length = range[1] - range[0];
  const wrong = encodeBlob('share', { ...dims, length: length - 1 }, { grad: new Float32Array(length - 1) });
  await uploadToUrl(upload.url, wrong);
  await assert.rejects(a.complete({ lease_id: share.id, outputs: [uploaded(upload.key, wrong)] }), (e: unknown) => {
    assert.ok(e instanceof OrchestratorError && e.status === 400 && e.code === 'bad_request', String(e));
    assert.match(e.message, new RegExp(`^upload refused: ${upload.key} is not a valid share blob: tensor grad: expected shape \\[${length}\\], got \\[${length - 1}\\]$`));
    return true;
  });
  assert.equal(await store.head(upload.key), null, 'the refused share is deleted');
  const good = encodeBlob('share', { ...dims, length }, { grad: new Float32Array(length) });
  await uploadToUrl(upload.url, good);
  assert.deepEqual(await a.complete({ lease_id: share.id, outputs: [uploaded(upload.key, good)] }), { status: 'accepted' });
  return upload.key;
}
