// Tokenized train / held-out splits and deterministic batch sampling. Every
// choice is a pure function of its arguments so that any machine, at any time,
// reproduces exactly the same batches for the same (seed, step).
import type { Corpus } from './brown.ts';
import type { Tokenizer } from './tokenizer.ts';

export interface Dataset {
  /** Token ids of the train documents, joined by the encoding of "\n\n". */
  train: Int32Array;
  /** Token ids of the held-out documents, joined the same way. */
  heldout: Int32Array;
  /** Contiguous [start, end) ranges of `train` of (nearly) equal size. */
  trainShards: { start: number; end: number }[];
  vocabSize: number;
  /** Document ids in each split, in corpus order. */
  trainIds: string[];
  heldoutIds: string[];
}

export interface Batch {
  /** [batchSize, seqLen], row-major. */
  inputs: BigInt64Array;
  /** `inputs` shifted left by one token. */
  targets: BigInt64Array;
}

// ---- counter-based hashing (splitmix64 in BigInt: identical everywhere) ----

const MASK64 = (1n << 64n) - 1n;

function mix64(x: bigint): bigint {
  x = (x + 0x9e3779b97f4a7c15n) & MASK64;
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return x ^ (x >> 31n);
}

/** 64-bit hash of a sequence of non-negative integers. */
export function hashInts(...values: number[]): bigint {
  let h = 0n;
  for (const v of values) h = mix64(h ^ BigInt(v));
  return h;
}

/** A number in [0, 1) from a string, stable forever (depends only on `s`). */
export function stringUnit(s: string): number {
  let h = 0n;
  for (let i = 0; i < s.length; i++) h = mix64(h ^ BigInt(s.charCodeAt(i)));
  return Number(mix64(h) >> 11n) / 2 ** 53;
}

// Domain tags keep the hash streams for offsets and shard choice independent.
const WINDOW_STREAM = 1;
const SHARD_STREAM = 2;

// ---- building ----

export interface BuildOptions {
  /** Expected fraction of documents held out (chosen by hash of the id). */
  heldoutFraction?: number;
  /** Number of train shards. */
  shards?: number;
}

/** Whether a document belongs to the held-out split: a pure function of its id. */
export const isHeldout = (docId: string, heldoutFraction = 0.05): boolean => stringUnit(docId) < heldoutFraction;

/**
 * Tokenize the corpus into train / held-out splits. A document is held out
 * when the hash of its id falls below `heldoutFraction`, so the split depends on
 * nothing but the id and the fraction.
 */
export function buildDataset(corpus: Corpus, tokenizer: Tokenizer, options: BuildOptions = {}): Dataset {
  const { heldoutFraction = 0.05, shards = 16 } = options;
  if (!(heldoutFraction >= 0 && heldoutFraction < 1)) {
    throw new RangeError(`buildDataset: heldoutFraction must be in [0, 1), got ${heldoutFraction}`);
  }
  checkInt('buildDataset', 'shards', shards, 1);
  const separator = tokenizer.encode('\n\n');
  const split = { train: [] as string[], heldout: [] as string[] };
  const encoded = { train: [] as ArrayLike<number>[], heldout: [] as ArrayLike<number>[] };
  for (const doc of corpus.documents) {
    const side = isHeldout(doc.id, heldoutFraction) ? 'heldout' : 'train';
    split[side].push(doc.id);
    encoded[side].push(tokenizer.encode(doc.text));
  }
  const train = join(encoded.train, separator);
  if (train.length < shards) {
    throw new RangeError(`buildDataset: ${train.length} train tokens cannot fill ${shards} shards`);
  }
  const trainShards = Array.from({ length: shards }, (_, i) => ({
    start: Math.floor((i * train.length) / shards),
    end: Math.floor(((i + 1) * train.length) / shards),
  }));
  return {
    train,
    heldout: join(encoded.heldout, separator),
    trainShards,
    vocabSize: tokenizer.vocabSize,
    trainIds: split.train,
    heldoutIds: split.heldout,
  };
}

function join(parts: ArrayLike<number>[], separator: ArrayLike<number>): Int32Array {
  const total = parts.reduce((n, p) => n + p.length, 0) + Math.max(0, parts.length - 1) * separator.length;
  const out = new Int32Array(total);
  let at = 0;
  parts.forEach((part, i) => {
    if (i > 0) {
      out.set(separator, at);
      at += separator.length;
    }
    out.set(part, at);
    at += part.length;
  });
  return out;
}

// ---- sampling ----

function checkInt(fn: string, name: string, value: unknown, min = 0): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw new RangeError(`${fn}: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}

/** Start (in `dataset.train`) of the window for (seed, shard, index), validated. */
function windowStart(fn: string, dataset: Dataset, seed: number, shard: number, index: number, length: number): number {
  checkInt(fn, 'seed', seed);
  checkInt(fn, 'index', index);
  checkInt(fn, 'length', length, 1);
  const count = dataset.trainShards.length;
  if (!Number.isInteger(shard) || shard < 0 || shard >= count) {
    throw new RangeError(`${fn}: shard must be an integer in [0, ${count}), got ${String(shard)}`);
  }
  const { start, end } = dataset.trainShards[shard];
  if (length > end - start) {
    throw new RangeError(`${fn}: length ${length} exceeds the ${end - start} tokens of shard ${shard}`);
  }
  // Modulo bias is < 2^-40 for shard sizes in the millions.
  const offsets = BigInt(end - start - length + 1);
  return start + Number(hashInts(WINDOW_STREAM, seed, shard, index) % offsets);
}

export interface WindowArgs {
  seed: number;
  shard: number;
  index: number;
  length: number;
}

/**
 * `length` consecutive train tokens from `shard`, at an offset that is a pure
 * function of (seed, shard, index). May span documents, never leaves the shard.
 */
export function sampleWindow(dataset: Dataset, { seed, shard, index, length }: WindowArgs): Int32Array {
  const start = windowStart('sampleWindow', dataset, seed, shard, index, length);
  return dataset.train.slice(start, start + length);
}

/** Write tokens [start, start + seqLen] of `src` as row `row` of inputs/targets. */
function fillRow(batch: Batch, row: number, src: Int32Array, start: number, seqLen: number): void {
  const base = row * seqLen;
  for (let t = 0; t < seqLen; t++) {
    batch.inputs[base + t] = BigInt(src[start + t]);
    batch.targets[base + t] = BigInt(src[start + t + 1]);
  }
}

function emptyBatch(batchSize: number, seqLen: number): Batch {
  return { inputs: new BigInt64Array(batchSize * seqLen), targets: new BigInt64Array(batchSize * seqLen) };
}

export interface TrainBatchArgs {
  seed: number;
  step: number;
  batchSize: number;
  seqLen: number;
  /** Draw every sample from this shard; by default samples rotate over all shards. */
  shard?: number;
}

/**
 * The training batch for `step`: sample b uses window index step*batchSize + b
 * of length seqLen+1. Without `shard`, sample b comes from shard (r + b) mod
 * shards, with r a hash of (seed, step), so each batch covers the shards evenly.
 */
export function trainBatch(dataset: Dataset, { seed, step, batchSize, seqLen, shard }: TrainBatchArgs): Batch {
  checkInt('trainBatch', 'seed', seed);
  checkInt('trainBatch', 'step', step);
  checkInt('trainBatch', 'batchSize', batchSize, 1);
  checkInt('trainBatch', 'seqLen', seqLen, 1);
  if (!Number.isSafeInteger((step + 1) * batchSize)) {
    throw new RangeError(`trainBatch: window index step * batchSize (${step} * ${batchSize}) is too large`);
  }
  const count = dataset.trainShards.length;
  const rotation = Number(hashInts(SHARD_STREAM, seed, step) % BigInt(count));
  const batch = emptyBatch(batchSize, seqLen);
  for (let b = 0; b < batchSize; b++) {
    const s = shard ?? (rotation + b) % count;
    const start = windowStart('trainBatch', dataset, seed, s, step * batchSize + b, seqLen + 1);
    fillRow(batch, b, dataset.train, start, seqLen);
  }
  return batch;
}

export interface HeldoutArgs {
  batchSize: number;
  seqLen: number;
  maxBatches: number;
}

/**
 * Up to `maxBatches` batches of non-overlapping windows spread evenly over the
 * held-out split (the same every call). Throws if not even one batch fits.
 */
export function heldoutBatches(dataset: Dataset, { batchSize, seqLen, maxBatches }: HeldoutArgs): Batch[] {
  checkInt('heldoutBatches', 'batchSize', batchSize, 1);
  checkInt('heldoutBatches', 'seqLen', seqLen, 1);
  checkInt('heldoutBatches', 'maxBatches', maxBatches, 1);
  const { heldout } = dataset;
  const span = seqLen + 1;
  const batches = Math.min(maxBatches, Math.floor(Math.floor(heldout.length / span) / batchSize));
  if (batches === 0) {
    throw new RangeError(
      `heldoutBatches: ${heldout.length} held-out tokens cannot fill one batch of ${batchSize} x ${span}`,
    );
  }
  // Window j starts at floor(j * last / (windows - 1)): first at 0, last at the
  // end, and consecutive starts at least `span` apart because all windows fit.
  const windows = batches * batchSize;
  const last = heldout.length - span;
  const startOf = (j: number) => (windows > 1 ? Math.floor((j * last) / (windows - 1)) : 0);
  return Array.from({ length: batches }, (_, i) => {
    const batch = emptyBatch(batchSize, seqLen);
    for (let b = 0; b < batchSize; b++) fillRow(batch, b, heldout, startOf(i * batchSize + b), seqLen);
    return batch;
  });
}
