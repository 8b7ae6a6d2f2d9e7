// A miner that uploads bad tensors, among honest miners (real processes): a tensor of the wrong
// shape is refused at completion with a clear error; one full of NaN passes the header check but
// is refused by the miner that downloads it, and the work is re-issued to someone else. The round
// carries on and the result is still exactly single-process training.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { LocalSwarm } from '../../../cli/swarm/local-swarm.ts';
import { OrchestratorClient, OrchestratorError } from '../../../orchestrator-client/client.ts';
import { keypairFromSeed, ready } from '../../../orchestrator-client/signing.ts';
import { blobSha256, uploadToUrl } from '../../../orchestrator-client/transfer.ts';
import { openDatabase } from '../../../orchestrator/db/open.ts';
import { encodeBlob } from '../../../worker/miner/blobs.ts';
import { tempDir } from '../run-tah.ts';
import { type SwarmCase, assertEqualWeights, caseSpec, compareWithSingle, singleProcessWeights } from './helpers.ts';

const CASE: SwarmCase = { preset: 'tiny', stages: 2, samples: 4, rows: 2, rounds: 3, seed: 5, lr: 3e-3 };

test('bad uploads are refused, the work is re-issued, and the run ends exact', { timeout: 300_000 }, async () => {
  await ready();
  const { dir, cleanup } = await tempDir('tah-swarm-bad-');
  const swarm = new LocalSwarm({ dir, spec: caseSpec(CASE, { heartbeat_timeout_s: 30, lease_ttl_s: 30 }), threadsPerMiner: 1 });
  try {
    const reference = await singleProcessWeights(CASE);
    await swarm.start();
    const bad = new OrchestratorClient({ baseUrl: swarm.url, keypair: keypairFromSeed(new Uint8Array(32).fill(66)), attempts: 1 });
    const seat = await bad.register({ role: 'miner', run_id: 'case', hardware: { device: 'cpu', cores: 1, memory_bytes: 8 * 2 ** 30, tokens_per_s: 0 } });
    assert.equal(seat.stage, 0, 'the first miner gets stage 0');
    const task = (await bad.lease({ version: 0 })).lease;
    assert.ok(task && task.kind === 'work' && task.direction === 'forward' && task.output.kind === 'activation');
    const dims = { rows: CASE.rows, seqLen: 64, dModel: 64, length: 0 };

    // Wrong shape: refused when reported, with what was expected; the lease stays held.
    const first = encodeBlob('activation', { ...dims, rows: 1 }, { activation: new Float32Array(64 * 64) });
    await uploadToUrl(task.output.url, first);
    await assert.rejects(bad.complete({ lease_id: task.id, output: { key: task.output.key, bytes: 0, sha256: blobSha256(first) } }), (e: unknown) => e instanceof OrchestratorError && e.status === 400);
    const wrong = encodeBlob('activation', { ...dims, rows: 1 }, { activation: new Float32Array(64 * 64) });
    await uploadToUrl(task.output.url, wrong);
    await assert.rejects(
      bad.complete({ lease_id: task.id, output: { key: task.output.key, bytes: wrong.length, sha256: blobSha256(wrong) } }),
      (e: unknown) => e instanceof OrchestratorError && e.code === 'bad_request' && /upload refused: .* expected shape \[128, 64\], got \[64,64\]/.test(e.message),
    );

    // Right shape, NaN inside: the header check passes it; the next stage's miner must refuse it.
    const poisoned = new Float32Array(2 * 64 * 64).fill(NaN);
    const blob = encodeBlob('activation', dims, { activation: poisoned });
    await uploadToUrl(task.output.url, blob);
    assert.equal((await bad.complete({ lease_id: task.id, output: { key: task.output.key, bytes: blob.length, sha256: blobSha256(blob) } })).status, 'accepted');

    // Honest miners: the first takes stage 1 (empty), the second stage 0.
    await swarm.addMiner();
    await swarm.addMiner();
    const status = await swarm.waitFinished(undefined, 250);
    assert.equal(status.status, 'finished');
    assertEqualWeights(await compareWithSingle(CASE, dir, status, reference));

    const db = await openDatabase(`sqlite:${join(dir, 'orchestrator.db')}`);
    try {
      const flagged = await db.db.selectFrom('events').select(['hotkey', 'details_json']).where('kind', '=', 'bad_upload').execute();
      assert.equal(flagged.length, 1, 'one bad upload was reported');
      assert.equal(flagged[0].hotkey, bad.hotkey, 'against the miner that made it');
      assert.match(flagged[0].details_json, /values must be finite/);
      const p = await db.db.selectFrom('participants').select('status').where('hotkey', '=', bad.hotkey).executeTakeFirstOrThrow();
      assert.equal(p.status, 'excluded', 'the bad miner was excluded from the run');
    } finally {
      await db.close();
    }
    await assert.rejects(bad.lease({ version: 0 }), (e: unknown) => e instanceof OrchestratorError && e.code === 'not_registered');
  } finally {
    await swarm.close();
    await cleanup();
  }
});
