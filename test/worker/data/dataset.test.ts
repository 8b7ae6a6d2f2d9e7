import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadBrownCorpus } from '../../../worker/data/brown.ts';
import { byteTokenizer } from '../../../worker/data/tokenizer.ts';
import {
  buildDataset,
  hashInts,
  heldoutBatches,
  sampleWindow,
  trainBatch,
  type Dataset,
} from '../../../worker/data/dataset.ts';

const corpus = loadBrownCorpus();
const dataset = buildDataset(corpus, byteTokenizer);

// Token i has value i, so a window's first value is its offset.
function identityDataset(trainLength: number, shards: number, heldoutLength = 0): Dataset {
  return {
    train: Int32Array.from({ length: trainLength }, (_, i) => i),
    heldout: Int32Array.from({ length: heldoutLength }, (_, i) => i),
    trainShards: Array.from({ length: shards }, (_, i) => ({
      start: Math.floor((i * trainLength) / shards),
      end: Math.floor(((i + 1) * trainLength) / shards),
    })),
    vocabSize: trainLength,
    trainIds: [],
    heldoutIds: [],
  };
}

test(`Brown byte dataset: ${dataset.train.length} train tokens, ${dataset.heldout.length} held-out tokens`, () => {
  assert.ok(dataset.train.length > 5_000_000 && dataset.train.length < 6_500_000);
  assert.ok(dataset.heldout.length > 100_000);
  assert.equal(dataset.vocabSize, 256);
  const total = corpus.documents.reduce((n, d) => n + Buffer.byteLength(d.text), 0) + 2 * (corpus.documents.length - 2);
  assert.equal(dataset.train.length + dataset.heldout.length, total, 'every document once, "\\n\\n" between');
});

test('train documents are separated by a blank line', () => {
  const first = corpus.documents.find((d) => d.id === dataset.trainIds[0])!;
  const head = byteTokenizer.decode(dataset.train.subarray(0, Buffer.byteLength(first.text) + 2));
  assert.equal(head, first.text + '\n\n');
});

test('held-out and train splits are disjoint whole documents, and stable', () => {
  const { trainIds, heldoutIds } = dataset;
  assert.equal(trainIds.length + heldoutIds.length, corpus.documents.length);
  assert.ok(heldoutIds.every((id) => !trainIds.includes(id)));
  // Pinned: changing this list silently mixes old held-out text into training.
  assert.equal(
    heldoutIds.join(' '),
    'ca30 ca39 cb19 cc02 cd01 ce29 cf25 cf34 cg07 cg19 cg24 cg33 cg37 cg61 cg67 cj38 cj47 ck13 cl02 cl10 cm01 cn10 cn22 cp12 cp14 cp20 cr09',
  );
  // Membership depends on the id only, not on corpus order.
  const reversed = buildDataset({ documents: [...corpus.documents].reverse() }, byteTokenizer);
  assert.deepEqual([...reversed.heldoutIds].sort(), heldoutIds);
  // A larger fraction only adds documents.
  const more = buildDataset(corpus, byteTokenizer, { heldoutFraction: 0.2 });
  assert.ok(heldoutIds.every((id) => more.heldoutIds.includes(id)));
  // No held-out text leaks into the train tokens.
  const trainText = byteTokenizer.decode(dataset.train);
  for (const id of heldoutIds) {
    const text = corpus.documents.find((d) => d.id === id)!.text;
    assert.ok(!trainText.includes(text.slice(0, 300)), id);
  }
});

test('train shards are contiguous and of equal size', () => {
  const shards = dataset.trainShards;
  assert.equal(shards.length, 16);
  assert.equal(shards[0].start, 0);
  assert.equal(shards.at(-1)!.end, dataset.train.length);
  shards.slice(1).forEach((s, i) => assert.equal(s.start, shards[i].end));
  const sizes = shards.map((s) => s.end - s.start);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
  assert.equal(buildDataset(corpus, byteTokenizer, { shards: 4 }).trainShards.length, 4);
});

test('hash is splitmix64 (same on every machine)', () => {
  // First output of the reference splitmix64 generator seeded with 0.
  assert.equal(hashInts(0), 0xe220a8397b1dcdafn);
  assert.equal(hashInts(1, 2, 3), hashInts(1, 2, 3));
  assert.notEqual(hashInts(1, 2, 3), hashInts(1, 3, 2));
});

test('sampleWindow is deterministic', () => {
  const args = { seed: 7, shard: 3, index: 42, length: 128 };
  const a = sampleWindow(dataset, args);
  assert.equal(a.length, 128);
  assert.deepEqual(sampleWindow(dataset, args), a);
  assert.notDeepEqual(sampleWindow(dataset, { ...args, index: 43 }), a);
  assert.notDeepEqual(sampleWindow(dataset, { ...args, seed: 8 }), a);
  assert.notDeepEqual(sampleWindow(dataset, { ...args, shard: 4 }), a);
  const windows = new Set(Array.from({ length: 200 }, (_, index) => sampleWindow(dataset, { ...args, index }).join()));
  assert.equal(windows.size, 200);
});

test('windows stay inside their shard and cover it', () => {
  const small = identityDataset(1000, 4);
  for (let shard = 0; shard < 4; shard++) {
    const { start, end } = small.trainShards[shard];
    const offsets = new Set<number>();
    for (let index = 0; index < 2000; index++) {
      const w = sampleWindow(small, { seed: 1, shard, index, length: 50 });
      assert.ok(w[0] >= start && w[49] < end);
      assert.ok(w.every((v, i) => v === w[0] + i), 'consecutive tokens');
      offsets.add(w[0]);
    }
    assert.ok(offsets.has(start) && offsets.has(end - 50), 'both ends reachable');
    assert.equal(sampleWindow(small, { seed: 1, shard, index: 0, length: 250 })[0], start, 'full-shard window');
  }
});

test('trainBatch: shapes, shifted targets, determinism', () => {
  const args = { seed: 3, step: 5, batchSize: 8, seqLen: 64 };
  const { inputs, targets } = trainBatch(dataset, args);
  assert.ok(inputs instanceof BigInt64Array && targets instanceof BigInt64Array);
  assert.equal(inputs.length, 8 * 64);
  assert.equal(targets.length, 8 * 64);
  for (let b = 0; b < 8; b++) {
    for (let t = 0; t < 63; t++) assert.equal(targets[b * 64 + t], inputs[b * 64 + t + 1]);
  }
  assert.deepEqual(trainBatch(dataset, args), { inputs, targets });
  assert.notDeepEqual(trainBatch(dataset, { ...args, step: 6 }).inputs, inputs);
});

test('trainBatch rows are sampleWindow(index = step * batchSize + b), spread over shards', () => {
  const small = identityDataset(16_000, 16);
  const args = { seed: 9, step: 3, batchSize: 32, seqLen: 20 };
  const { inputs, targets } = trainBatch(small, args);
  const used: number[] = [];
  for (let b = 0; b < 32; b++) {
    const row = Array.from(inputs.subarray(b * 20, (b + 1) * 20), Number);
    const shard = small.trainShards.findIndex((s) => row[0] >= s.start && row[0] < s.end);
    used.push(shard);
    const window = sampleWindow(small, { seed: 9, shard, index: 3 * 32 + b, length: 21 });
    assert.deepEqual(row, Array.from(window.subarray(0, 20)));
    assert.deepEqual(Array.from(targets.subarray(b * 20, (b + 1) * 20), Number), Array.from(window.subarray(1)));
  }
  // 32 samples over 16 shards: each shard exactly twice.
  assert.deepEqual([...used].sort((x, y) => x - y), Array.from({ length: 32 }, (_, i) => i >> 1));
  const pinned = trainBatch(small, { ...args, shard: 5 });
  const { start, end } = small.trainShards[5];
  assert.ok(Array.from(pinned.inputs).every((v) => v >= start && v < end));
});

test('heldoutBatches: deterministic, non-overlapping, spread over the split', () => {
  const small = identityDataset(1000, 4, 10_000);
  const batches = heldoutBatches(small, { batchSize: 4, seqLen: 99, maxBatches: 5 });
  assert.equal(batches.length, 5);
  const starts = batches.flatMap(({ inputs, targets }) => {
    assert.equal(inputs.length, 4 * 99);
    for (let i = 0; i < inputs.length; i++) {
      if (i % 99 !== 98) assert.equal(targets[i], inputs[i + 1]);
    }
    return [0, 1, 2, 3].map((b) => Number(inputs[b * 99]));
  });
  assert.equal(starts[0], 0);
  assert.equal(starts.at(-1), 10_000 - 100, 'reaches the end');
  starts.slice(1).forEach((s, i) => assert.ok(s - starts[i] >= 100, 'no overlap'));
  assert.deepEqual(heldoutBatches(small, { batchSize: 4, seqLen: 99, maxBatches: 5 }), batches);
  // Exactly as many windows as fit: 100 windows of 100 tokens tile the split.
  const tiled = heldoutBatches(small, { batchSize: 10, seqLen: 99, maxBatches: 1000 });
  assert.equal(tiled.length, 10);
  const real = heldoutBatches(dataset, { batchSize: 8, seqLen: 256, maxBatches: 20 });
  assert.equal(real.length, 20);
});

test('bad arguments throw clear errors', () => {
  const small = identityDataset(1000, 4, 50);
  const ok = { seed: 0, shard: 0, index: 0, length: 10 };
  assert.throws(() => sampleWindow(small, { ...ok, shard: 4 }), /shard must be an integer in \[0, 4\), got 4/);
  assert.throws(() => sampleWindow(small, { ...ok, shard: -1 }), /shard must be/);
  assert.throws(() => sampleWindow(small, { ...ok, shard: 1.5 }), /shard must be/);
  assert.throws(() => sampleWindow(small, { ...ok, length: 251 }), /length 251 exceeds the 250 tokens of shard 0/);
  assert.throws(() => sampleWindow(small, { ...ok, length: 0 }), /length must be an integer >= 1, got 0/);
  assert.throws(() => sampleWindow(small, { ...ok, index: -1 }), /index must be an integer >= 0, got -1/);
  assert.throws(() => sampleWindow(small, { ...ok, seed: 0.5 }), /seed must be an integer/);
  assert.throws(() => sampleWindow(small, { ...ok, seed: NaN }), /seed must be an integer/);
  const batch = { seed: 0, step: 0, batchSize: 2, seqLen: 8 };
  assert.throws(() => trainBatch(small, { ...batch, batchSize: 0 }), /batchSize must be an integer >= 1/);
  assert.throws(() => trainBatch(small, { ...batch, step: -1 }), /step must be an integer >= 0/);
  assert.throws(() => trainBatch(small, { ...batch, seqLen: 250 }), /length 251 exceeds/);
  assert.throws(() => trainBatch(small, { ...batch, shard: 9 }), /shard must be an integer in \[0, 4\)/);
  assert.throws(() => heldoutBatches(small, { batchSize: 1, seqLen: 50, maxBatches: 1 }), /50 held-out tokens cannot fill/);
  assert.throws(() => heldoutBatches(small, { batchSize: 1, seqLen: 8, maxBatches: 0 }), /maxBatches must be/);
  assert.throws(() => buildDataset(corpus, byteTokenizer, { heldoutFraction: 1 }), /heldoutFraction must be in \[0, 1\)/);
  assert.throws(() => buildDataset(corpus, byteTokenizer, { shards: 0 }), /shards must be an integer >= 1/);
});
