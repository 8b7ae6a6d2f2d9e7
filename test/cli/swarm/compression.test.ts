// Compressed stage boundaries in a real swarm (orchestrator and `tah miner` processes over HTTP,
// SQLite and the local blob store): a bottleneck after every stage but the last, activations
// sent as int4 blocks and their gradients as int8 rows. The codec is part of the model's
// computation, so the swarm must still end with the weights of one process computing the same
// model — and, as a check that the comparison can fail, not with the uncompressed model's.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { LocalSwarm } from '../../../cli/swarm/local-swarm.ts';
import { OrchestratorClient } from '../../../orchestrator-client/client.ts';
import { encode } from '../../../orchestrator-client/codecs.ts';
import { keypairFromSeed, ready } from '../../../orchestrator-client/signing.ts';
import { blobSha256, uploadToUrl } from '../../../orchestrator-client/transfer.ts';
import { openDatabase } from '../../../orchestrator/db/open.ts';
import { encodeSafetensors } from '../../../worker/checkpoint/safetensors.ts';
import { jsonLines, runTah, show, tempDir } from '../run-tah.ts';
import { type SwarmCase, assertEqualWeights, caseSpec, compareWithSingle, killMidRound, runCase, singleProcessWeights } from './helpers.ts';

const COMPRESSED: SwarmCase = { preset: 'tiny', stages: 3, samples: 4, rows: 2, rounds: 6, seed: 12, lr: 3e-3, compression: { bottleneck_dim: 8, forward: 'int4', backward: 'int8' } };

test('compressed boundaries, a miner killed mid-round and another joining: the run ends equal to one process with the same bottlenecks and codecs', { timeout: 300_000 }, async () => {
  const { dir, cleanup } = await tempDir('tah-compressed-kill-');
  try {
    const reference = await singleProcessWeights(COMPRESSED);
    const fault = killMidRound();
    const { swarm, status, events } = await runCase(COMPRESSED, dir, [{}, {}, {}, {}, {}, {}], fault.onEvent);
    const killed = fault.killed();
    assert.equal(status.status, 'finished');
    assert.ok(killed >= 0 && fault.joined(), 'a miner was killed and another joined');
    assert.ok(events.some((e) => e.kind === 'gone' && e.hotkey === swarm.miners[killed].hotkey), 'the killed miner was reaped');
    const errors = await compareWithSingle(COMPRESSED, dir, status, reference);
    assertEqualWeights(errors);
    assert.ok([...errors.keys()].some((n) => n.includes('.bottleneck.')), 'the bottlenecks were trained and compared');
    // The same run uncompressed ends elsewhere: the comparison above tells the models apart.
    const plain = await singleProcessWeights({ ...COMPRESSED, compression: { bottleneck_dim: 8, forward: 'f32', backward: 'f32' } });
    const apart = await compareWithSingle(COMPRESSED, dir, status, plain);
    assert.ok(Math.max(...apart.values()) > 1e-3, `the codecs changed the result (${Math.max(...apart.values()).toExponential(2)})`);
  } finally {
    await cleanup();
  }
});

test('a compressed activation with a bad header or size is refused at completion; one with bad scales is refused by its receiver and the work re-issued', { timeout: 300_000 }, async () => {
  await ready();
  const c: SwarmCase = { ...COMPRESSED, stages: 2, rounds: 3, seed: 13 };
  const { dir, cleanup } = await tempDir('tah-compressed-bad-');
  const swarm = new LocalSwarm({ dir, spec: caseSpec(c, { heartbeat_timeout_s: 30, lease_ttl_s: 30 }), threadsPerMiner: 1 });
  try {
    const reference = await singleProcessWeights(c);
    await swarm.start();
    const bad = new OrchestratorClient({ baseUrl: swarm.url, keypair: keypairFromSeed(new Uint8Array(32).fill(67)), attempts: 1 });
    const seat = await bad.register({ role: 'miner', run_id: 'case', hardware: { device: 'cpu', cores: 1, memory_bytes: 8 * 2 ** 30, tokens_per_s: 0 } });
    assert.equal(seat.stage, 0);
    const task = (await bad.lease({ version: 0 })).lease;
    assert.ok(task && task.kind === 'work' && task.direction === 'forward' && task.output.kind === 'activation');
    const tokens = c.rows * 64;
    const width = c.compression!.bottleneck_dim!;
    const payload = encode('int4', Float32Array.from({ length: tokens * width }, (_, i) => Math.sin(i)), tokens, width);
    const blob = (p: typeof payload, rename: (n: string) => string = (n) => `activation.${n}`): Uint8Array =>
      encodeSafetensors(Object.fromEntries(Object.entries(p).map(([n, t]) => [rename(n), { dtype: t.dtype, shape: t.shape, data: t.data }])));
    const refused = async (b: Uint8Array, why: RegExp): Promise<void> => {
      await uploadToUrl(task.output.url, b);
      await assert.rejects(bad.complete({ lease_id: task.id, output: { key: task.output.key, bytes: b.length, sha256: blobSha256(b) } }), (e: Error) => why.test(e.message));
    };
    // Header: the scales as float16, a block missing, the data sent as float32 in the clear.
    await refused(blob({ ...payload, scale: { dtype: 'F16', shape: payload.scale.shape, data: new Uint16Array(payload.scale.data.length) } }), /tensor activation\.scale: expected dtype F32, got "F16"/);
    await refused(blob({ ...payload, q: { ...payload.q, shape: [payload.q.data.length - 1], data: payload.q.data.subarray(1) } }), /tensor activation\.q: expected shape \[\d+\], got/);
    await refused(encodeSafetensors({ activation: { dtype: 'F32', shape: [tokens, width], data: new Float32Array(tokens * width) } }), /expected tensors \[activation\.q, activation\.scale\]/);
    // Size: a valid blob with bytes beyond its header's end.
    const good = blob(payload);
    const padded = new Uint8Array(good.length + 4);
    padded.set(good);
    await refused(padded, /the blob has \d+ bytes; its header describes \d+/);

    // Scales: a negative one passes the header check; the next stage's miner refuses it.
    const scale = Float32Array.from(payload.scale.data as Float32Array);
    scale[3] = -1;
    const spoiled = blob({ ...payload, scale: { ...payload.scale, data: scale } });
    await uploadToUrl(task.output.url, spoiled);
    assert.equal((await bad.complete({ lease_id: task.id, output: { key: task.output.key, bytes: spoiled.length, sha256: blobSha256(spoiled) } })).status, 'accepted');

    await swarm.addMiner();
    await swarm.addMiner();
    const status = await swarm.waitFinished(undefined, 250);
    assert.equal(status.status, 'finished');
    assertEqualWeights(await compareWithSingle(c, dir, status, reference));
    const db = await openDatabase(`sqlite:${join(dir, 'orchestrator.db')}`);
    try {
      const reported = await db.db.selectFrom('events').select(['hotkey', 'details_json']).where('kind', '=', 'bad_upload').execute();
      assert.equal(reported.length, 1, 'one bad upload was reported');
      assert.equal(reported[0].hotkey, bad.hotkey);
      assert.match(reported[0].details_json, /int4: scale 3 is -1: scales must be finite and not negative/);
    } finally {
      await db.close();
    }
  } finally {
    await swarm.close();
    await cleanup();
  }
});

// Activations of a 16-sequence sample at the bottleneck of 4 channels as int4 blocks of 32 (with
// a float32 scale a block), written out by hand: 8,192 values, 4,096 bytes of nibbles, 256
// blocks. Gradients go the same way under the name `gradient`.
function int4BlobBytes(kind: string): number {
  const header = JSON.stringify({
    [`${kind}.q`]: { dtype: 'U8', shape: [4096], data_offsets: [0, 4096] },
    [`${kind}.scale`]: { dtype: 'F32', shape: [256], data_offsets: [4096, 5120] },
  });
  return 8 + Math.ceil(header.length / 8) * 8 + 5120;
}

test('tah swarm --bottleneck 4 --codec int4 on demo: the summary counts every byte that crossed a boundary, exactly, and it is over 128x less than float32', { timeout: 300_000 }, async () => {
  const { dir, cleanup } = await tempDir('tah-compressed-bytes-');
  try {
    const args = ['swarm', '--preset', 'demo', '--stages', '3', '--replicas', '1', '--rounds', '2', '--batch', '16', '--samples-per-round', '1', '--bottleneck', '4', '--codec', 'int4'];
    const r = await runTah([...args, '--no-baseline', '--eval-batches', '1', '--dir', join(dir, 'swarm'), '--json'], { cwd: dir, timeoutMs: 280_000 });
    assert.equal(r.code, 0, show(r));
    const summary = jsonLines(r.stdout).at(-1)!;
    assert.deepEqual(summary.compression, { bottleneck_dim: 4, forward: 'int4', backward: 'int4' });
    // Two rounds of one 16 × 128-token sample, two boundaries, each crossed once each way.
    const perToken = (int4BlobBytes('activation') + int4BlobBytes('gradient')) / (16 * 128);
    assert.equal(summary.activation_bytes, 2 * 2 * (int4BlobBytes('activation') + int4BlobBytes('gradient')));
    assert.equal(summary.activation_bytes_per_token, Number(perToken.toPrecision(6)));
    assert.ok((summary.activation_compression_ratio as number) >= 128, `ratio ${summary.activation_compression_ratio}`);
    assert.ok(Number.isFinite(summary.heldout_loss));
  } finally {
    await cleanup();
  }
});
