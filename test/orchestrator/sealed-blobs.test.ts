// What was accepted cannot change, on both stores. A miner whose output was accepted tries to
// write over it through its still-valid PUT URL: the local store refuses (the key is sealed);
// S3 takes it (a presigned URL cannot be revoked), but every reader is handed the SHA-256
// recorded on acceptance and refuses other bytes, and its refusal, once the orchestrator has
// hashed the stored blob itself, flags the producer with the evidence and re-issues its work. A
// reader's claim that does not hold blames nobody. The real orchestrator over HTTP, SQLite, the
// local store or a real S3 server (s3rver).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OrchestratorClient, OrchestratorError } from '../../orchestrator-client/client.ts';
import type { BlobRef, Hardware, Lease, Task } from '../../orchestrator-client/protocol.ts';
import { keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { blobSha256, downloadFromUrl, uploadBlob, uploadToUrl } from '../../orchestrator-client/transfer.ts';
import { type Orchestrator, startOrchestrator } from '../../orchestrator/service.ts';
import { ChangedBlobError, checkAccepted, encodeBlob } from '../../worker/miner/blobs.ts';
import { type TestS3, startS3rver } from '../helpers/s3rver.ts';

const clock = Date.UTC(2026, 11, 7);
const now = (): number => clock;
const hardware: Hardware = { device: 'cpu', cores: 2, memory_bytes: 8 * 2 ** 30, tokens_per_s: 1000 };
// The tiny preset (seq_len 64, d_model 64), one row a sample.
const dims = { rows: 1, seqLen: 64, dModel: 64, length: 0 };
const u8 = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const activation = (fill: number): Uint8Array => u8(encodeBlob('activation', dims, { activation: new Float32Array(64 * 64).fill(fill) }));

for (const backend of ['local', 's3'] as const) {
  describe(`${backend} store`, () => {
    let dir = '';
    let s3: TestS3 | null = null;
    let orch: Orchestrator;
    const saved = { ...process.env };
    const client = (seed: number): OrchestratorClient => new OrchestratorClient({ baseUrl: orch.url, keypair: keypairFromSeed(new Uint8Array(32).fill(seed)), now, attempts: 1 });
    let producer: OrchestratorClient;
    let honest: OrchestratorClient;
    let consumer: OrchestratorClient;
    let validator: OrchestratorClient;

    before(async () => {
      await ready();
      dir = await mkdtemp(join(tmpdir(), `tah-sealed-${backend}-`));
      if (backend === 's3') {
        s3 = await startS3rver();
        Object.assign(process.env, { AWS_ENDPOINT_URL: s3.endpoint, AWS_REGION: 'auto', AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey });
      }
      const storage = backend === 's3' ? `s3://${s3!.bucket}/sealed` : `local:${join(dir, 'blobs')}`;
      orch = await startOrchestrator({ db: `sqlite:${join(dir, 'o.db')}`, storage, operator: keypairFromSeed(new Uint8Array(32).fill(1)).address, now, reapIntervalMs: 3_600_000 });
      await client(1).createRun({ id: 'run1', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 8, lease_ttl_s: 600, heartbeat_timeout_s: 900 });
      producer = client(2);
      consumer = client(3);
      honest = client(4);
      validator = client(5);
      assert.equal((await producer.register({ role: 'miner', hardware })).stage, 0);
      assert.equal((await consumer.register({ role: 'miner', hardware })).stage, 1);
      assert.equal((await honest.register({ role: 'miner', hardware })).stage, 0);
      await validator.register({ role: 'validator', hardware });
    });

    after(async () => {
      await orch?.close();
      await s3?.close();
      for (const k of ['AWS_ENDPOINT_URL', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const work = async (c: OrchestratorClient): Promise<Lease> => {
      const task: Task | null = (await c.lease()).lease;
      assert.equal(task?.kind, 'work', `a work item, got ${JSON.stringify(task).slice(0, 200)}`);
      return task as Lease;
    };
    /** A forward at stage 0, uploaded and accepted: the lease and the bytes accepted. */
    const produced = async (c: OrchestratorClient, fill: number): Promise<{ lease: Lease; bytes: Uint8Array }> => {
      const lease = await work(c);
      assert.equal(lease.output.kind, 'activation');
      const bytes = activation(fill);
      assert.deepEqual(await c.complete({ lease_id: lease.id, output: await uploadBlob(lease.output, bytes) }), { status: 'accepted' });
      return { lease, bytes };
    };
    /** The next stage's lease reading `key`. */
    const reading = async (key: string): Promise<Lease & { input: BlobRef & { kind: 'blob' } }> => {
      // Others are held until it comes (given back, they would come first again), then given back.
      const others: Lease[] = [];
      try {
        for (let i = 0; i < 10; i++) {
          const lease = await work(consumer);
          if (lease.input.kind === 'blob' && lease.input.key === key) return lease as Lease & { input: BlobRef & { kind: 'blob' } };
          others.push(lease);
        }
      } finally {
        for (const o of others) await consumer.release(o.id);
      }
      throw new Error(`no lease of stage 1 reads ${key}`);
    };
    const flagsOf = async (hotkey: string) => (await client(1).flags('run1')).filter((f) => f.hotkey === hotkey);
    const row = (id: string) => orch.database.db.selectFrom('work_items').select(['status', 'not_hotkey', 'completed_by']).where('id', '=', id).executeTakeFirst();

    test('a write over an accepted upload: refused by the local store; taken by S3, then refused by its reader, which gets the producer flagged with the evidence and its work re-issued', async () => {
      const { lease, bytes } = await produced(producer, 0.5);
      const record = await orch.database.db.selectFrom('blobs').selectAll().where('key', '=', lease.output.key).executeTakeFirstOrThrow();
      assert.deepEqual({ sha256: record.sha256, bytes: record.bytes, producer: record.producer }, { sha256: blobSha256(bytes), bytes: bytes.length, producer: producer.hotkey }, 'the accepted digest is recorded');

      const changed = activation(0.25);
      if (backend === 'local') {
        await assert.rejects(uploadToUrl(lease.output.url, changed), (e: Error) => /403/.test(e.message) && /accepted already/.test(e.message));
        const next = await reading(lease.output.key);
        assert.equal(next.input.sha256, blobSha256(bytes), 'the reader is handed the accepted digest');
        assert.deepEqual(u8(checkAccepted(next.input.key, await downloadFromUrl(next.input.url, { maxBytes: 1 << 20 }), next.input.sha256)), bytes, 'and reads exactly what was accepted');
        await consumer.release(next.id);
        return;
      }
      // S3: the URL still writes. What nobody checked must not be used.
      await uploadToUrl(lease.output.url, changed);
      const next = await reading(lease.output.key);
      assert.equal(next.input.sha256, blobSha256(bytes), 'the reader is handed the accepted digest');
      const got = u8(await downloadFromUrl(next.input.url, { maxBytes: 1 << 20 }));
      assert.deepEqual(got, changed, 'S3 serves the changed bytes');
      const refused = (() => {
        try {
          checkAccepted(next.input.key, got, next.input.sha256);
        } catch (e) {
          return e;
        }
        return null;
      })();
      assert.ok(refused instanceof ChangedBlobError, 'the reader refuses them');
      assert.equal(refused.found, blobSha256(changed));
      await consumer.reject(next.id, refused.message, { key: refused.key, sha256: refused.found });

      const [flag] = await flagsOf(producer.hotkey);
      assert.equal(flag?.kind, 'bad_blob');
      assert.deepEqual({ key: flag.evidence.key, accepted: flag.evidence.accepted_sha256, stored: flag.evidence.stored_sha256, by: flag.evidence.found_by }, { key: lease.output.key, accepted: blobSha256(bytes), stored: blobSha256(changed), by: consumer.hotkey });
      const p = await orch.database.db.selectFrom('participants').select('status').where('hotkey', '=', producer.hotkey).executeTakeFirstOrThrow();
      assert.equal(p.status, 'excluded', 'the producer takes no further part');
      assert.deepEqual(await row(`run1.${lease.sample_id}.0.f`), { status: 'pending', not_hotkey: producer.hotkey, completed_by: null }, "the producer's work is offered again, not to it");
      assert.equal(await row(`run1.${lease.sample_id}.1.f`), undefined, 'the reader\'s item goes; the redone forward makes it again');
      assert.equal(await orch.store.head(lease.output.key), null, 'the changed blob is gone');
      await assert.rejects(producer.heartbeat(), (e: unknown) => e instanceof OrchestratorError && e.code === 'not_registered');
    });

    test("a reader's claim that the stored blob does not bear out blames nobody: its lease goes to another reader", async () => {
      const { lease, bytes } = await produced(honest, 0.75);
      const next = await reading(lease.output.key);
      await consumer.reject(next.id, 'its content is not what was accepted', { key: next.input.key, sha256: blobSha256(activation(9)) });
      assert.deepEqual(await flagsOf(honest.hotkey), [], 'the producer is not flagged');
      assert.deepEqual(await row(`run1.${lease.sample_id}.1.f`), { status: 'pending', not_hotkey: consumer.hotkey, completed_by: null }, 'the item waits for another reader');
      assert.deepEqual(u8(await orch.store.get(lease.output.key)), bytes, 'the accepted blob stays as accepted');
      const events = await orch.database.db.selectFrom('events').select(['kind', 'hotkey']).where('kind', '=', 'bad_blob_unconfirmed').execute();
      assert.deepEqual(events, [{ kind: 'bad_blob_unconfirmed', hotkey: consumer.hotkey }]);
    });

    test('a validator that finds a checked blob changed reports it: confirmed only where the stored bytes differ, and the checks that read it are void', async () => {
      // The honest miner's first work is checked (a newcomer's always is).
      const { lease, bytes } = await produced(honest, 0.125);
      const checks = await orch.database.db.selectFrom('checks').select(['id', 'status', 'keys_json']).where('miner', '=', honest.hotkey).execute();
      const reads = checks.filter((c) => (JSON.parse(c.keys_json) as string[]).includes(lease.output.key));
      assert.ok(reads.length > 0, 'a check reads the output');
      // Unchanged: the claim is not borne out.
      assert.deepEqual(await validator.refusal({ key: lease.output.key, sha256: blobSha256(activation(3)), reason: 'not as accepted' }), { status: 'unconfirmed' });
      assert.deepEqual(await flagsOf(honest.hotkey), []);
      if (backend === 'local') {
        await assert.rejects(uploadToUrl(lease.output.url, activation(2)), (e: Error) => /403/.test(e.message));
        return;
      }
      await uploadToUrl(lease.output.url, activation(2));
      assert.deepEqual(await validator.refusal({ key: lease.output.key, sha256: blobSha256(activation(2)), reason: 'not as accepted' }), { status: 'confirmed' });
      const [flag] = await flagsOf(honest.hotkey);
      assert.equal(flag?.kind, 'bad_blob');
      assert.equal(flag.evidence.accepted_sha256, blobSha256(bytes));
      const after = await orch.database.db.selectFrom('checks').select(['id', 'status']).where('id', 'in', reads.map((c) => c.id)).execute();
      assert.ok(after.every((c) => c.status === 'expired'), 'the checks that read it are void');
    });
  });
}
