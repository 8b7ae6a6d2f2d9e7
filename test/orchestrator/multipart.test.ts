// Blobs that may be larger than the store's part size are uploaded in parts: the lease hands out
// one URL per part, the miner sends them in parallel and reports each part's ETag, and the
// orchestrator has the store join them before it checks the blob like any other upload.
// The real orchestrator over HTTP on loopback, SQLite and the local blob store, with 4 KiB parts.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { OrchestratorClient, OrchestratorError } from '../../orchestrator-client/client.ts';
import type { Hardware, Lease } from '../../orchestrator-client/protocol.ts';
import { keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { uploadBlob } from '../../orchestrator-client/transfer.ts';
import { type Orchestrator, startOrchestrator } from '../../orchestrator/service.ts';
import { encodeBlob } from '../../worker/miner/blobs.ts';

const now = (): number => Date.UTC(2026, 10, 22);
const hardware: Hardware = { device: 'cpu', cores: 2, memory_bytes: 8 * 2 ** 30, tokens_per_s: 1000 };
// The tiny preset, two rows a sample: an activation is F32 [2, 64, 64], 32 KiB and a header.
const dims = { rows: 2, seqLen: 64, dModel: 64, length: 0 };
const PART = 4096;

let dir = '';
let orch: Orchestrator;
let miner: OrchestratorClient;

before(async () => {
  await ready();
  dir = await mkdtemp(join(tmpdir(), 'tah-multipart-'));
  orch = await startOrchestrator({ db: `sqlite:${join(dir, 'o.db')}`, storage: `local:${join(dir, 'blobs')}`, partBytes: PART, operator: keypairFromSeed(new Uint8Array(32).fill(1)).address, now, reapIntervalMs: 3_600_000 });
  const client = (seed: number): OrchestratorClient => new OrchestratorClient({ baseUrl: orch.url, keypair: keypairFromSeed(new Uint8Array(32).fill(seed)), now, attempts: 1 });
  await client(1).createRun({ id: 'run1', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 2, rows_per_sample: 2 });
  miner = client(2);
  assert.equal((await miner.register({ role: 'miner', hardware })).stage, 0);
});

after(async () => {
  await orch?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function forward(): Promise<Lease> {
  const task = (await miner.lease()).lease;
  assert.ok(task?.kind === 'work' && task.direction === 'forward', `a forward item, got ${JSON.stringify(task)?.slice(0, 200)}`);
  return task;
}

const activation = (fill: number): Uint8Array => encodeBlob('activation', dims, { activation: new Float32Array(2 * 64 * 64).fill(fill) });

test('an activation goes up in parts; a completion with a wrong ETag is refused, the right one is accepted and the blob is whole', async () => {
  const lease = await forward();
  const mp = lease.output.multipart;
  assert.ok(mp, 'the lease asks for an upload in parts');
  assert.equal(lease.output.url, '');
  assert.equal(mp.part_bytes, PART);
  assert.equal(mp.part_urls.length, Math.ceil(lease.output.max_bytes / PART));

  const blob = activation(0.25);
  const sent = await uploadBlob(lease.output, blob);
  assert.equal(sent.multipart!.parts.length, Math.ceil(blob.length / PART));
  const forged = { ...sent, multipart: { ...sent.multipart!, parts: sent.multipart!.parts.map((p, i) => (i === 2 ? { ...p, etag: '"' + '0'.repeat(32) + '"' } : p)) } };
  await assert.rejects(miner.complete({ lease_id: lease.id, output: forged }), (e: unknown) => {
    assert.ok(e instanceof OrchestratorError && e.status === 400, String(e));
    assert.match(e.message, /^upload in parts refused: .*part 3's ETag is not that of the part stored$/);
    return true;
  });
  await assert.rejects(miner.complete({ lease_id: lease.id, output: { ...sent, multipart: { ...sent.multipart!, upload_id: 'not-an-id' } } }), /upload in parts refused: invalid upload id/);
  assert.deepEqual(await miner.complete({ lease_id: lease.id, output: sent }), { status: 'accepted' });
  assert.deepEqual(await miner.complete({ lease_id: lease.id, output: sent }), { status: 'duplicate' });
  const stored = await orch.database.db.selectFrom('work_items').select('output_bytes').where('lease_id', '=', lease.id).executeTakeFirstOrThrow();
  assert.equal(stored.output_bytes, blob.length);
  const names = await readdir(join(dir, 'blobs'));
  assert.deepEqual(names.filter((n) => n.startsWith('~') && n !== '~store-id'), [], 'the parts are gone once joined');
});

test('a blob joined from parts is checked like any upload: the wrong shape is refused and deleted, the lease stays held', async () => {
  const lease = await forward();
  const wrong = encodeBlob('activation', { ...dims, rows: 1 }, { activation: new Float32Array(64 * 64) });
  const sent = await uploadBlob(lease.output, wrong);
  await assert.rejects(miner.complete({ lease_id: lease.id, output: sent }), /upload refused: .* expected shape \[128, 64\], got \[64,64\]/);
  assert.equal(await orch.coordinator['store'].head(lease.output.key), null);
  assert.equal((await miner.heartbeat()).leases_held, 1);
});
