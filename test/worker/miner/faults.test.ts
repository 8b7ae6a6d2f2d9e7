// The adversarial miner's tampering, mode by mode: each must really change what is sent in the way
// its name says (the swarm's defences are tested against these), and leave alone what it says it
// leaves alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CodecName } from '../../../orchestrator-client/codecs.ts';
import { BadBlobError, decodeWire, encodeWire } from '../../../worker/miner/blobs.ts';
import { ADVERSARIES, AdversaryState, parseFaults } from '../../../worker/miner/faults.ts';
import { rng } from '../../helpers/gradcheck.ts';

const sample = (n: number, seed: number): Float32Array => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() - 0.5);
};
const norm = (x: Float32Array): number => Math.sqrt(x.reduce((a, v) => a + v * v, 0));
const diff = (a: Float32Array, b: Float32Array): Float32Array => a.map((v, i) => v - b[i]);
const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, v, i) => s + v * b[i], 0);

test('TAH_FAULTS names an adversary; an unknown one is refused with the list', () => {
  for (const mode of ADVERSARIES) assert.equal(parseFaults(`adversary:${mode}`).adversary, mode);
  assert.throws(() => parseFaults('adversary:sneaky'), /unknown fault 'adversary:sneaky'.*adversary:\(random\|scaled/);
  assert.deepEqual(parseFaults('store-delay:2000, share:6'), { storeDelayMs: 2000, blowUpShare: 6 });
  assert.throws(() => parseFaults('store-delay:soon'), /unknown fault 'store-delay:soon'/);
});

test('random: values of the honest scale that carry nothing of it', () => {
  const honest = sample(4096, 1);
  const sent = new AdversaryState('random').output('activation', honest, sample(4096, 2));
  assert.ok(Math.abs(norm(sent) / norm(honest) - 1) < 0.1, `norm ratio ${norm(sent) / norm(honest)}`);
  assert.ok(Math.abs(dot(sent, honest)) / (norm(sent) * norm(honest)) < 0.1, 'uncorrelated with the honest output');
});

test('scaled: gradients and gradient sums ×10, activations untouched', () => {
  const a = new AdversaryState('scaled');
  const honest = sample(64, 3);
  assert.equal(a.output('activation', honest, honest), honest);
  assert.deepEqual(a.output('gradient', honest, honest), honest.map((v) => v * 10));
  assert.deepEqual(a.share(honest), honest.map((v) => v * 10));
  assert.equal(new AdversaryState('subtle').share(honest), honest, 'other modes share what they computed');
});

test('stale: the first output of each kind, replayed for every later item', () => {
  const a = new AdversaryState('stale');
  const first = sample(64, 4);
  assert.deepEqual(a.output('gradient', first, first), first);
  const later = sample(64, 5);
  assert.deepEqual(a.output('gradient', later, later), first);
  assert.deepEqual(a.output('activation', later, later), later, 'kinds are remembered apart');
});

test('lazy: passes its input on where the widths match, else replays', () => {
  const a = new AdversaryState('lazy');
  const input = sample(64, 6);
  assert.deepEqual(a.output('activation', sample(64, 7), input), input);
  const tokens = new BigInt64Array(16);
  const first = sample(64, 8);
  assert.deepEqual(a.output('activation', first, tokens), first);
  assert.deepEqual(a.output('activation', sample(64, 9), tokens), first);
});

test('subtle: noise of 1 % of the norm', () => {
  const honest = sample(8192, 10);
  const sent = new AdversaryState('subtle').output('gradient', honest, honest);
  const rel = norm(diff(sent, honest)) / norm(honest);
  assert.ok(rel > 0.008 && rel < 0.012, `relative change ${rel}`);
});

test('nan: the blob it sends holds a NaN, whatever the codec, and a receiver refuses it', () => {
  const dims = { rows: 2, seqLen: 4, dModel: 64, length: 0 };
  for (const codec of ['f32', 'f16', 'bf16', 'int8', 'int4'] as CodecName[]) {
    const d = { ...dims, codecs: { forward: codec, backward: codec } };
    const honest = encodeWire('activation', d, sample(2 * 4 * 64, 11));
    const sent = new AdversaryState('nan').blob(honest);
    assert.equal(sent.length, honest.length);
    assert.doesNotThrow(() => decodeWire('k', honest, 'activation', d));
    assert.throws(() => decodeWire('k', sent, 'activation', d), (e: unknown) => e instanceof BadBlobError && /NaN/.test(e.message), codec);
  }
  assert.equal(new AdversaryState('subtle').blob(new Uint8Array([1, 2, 3, 4])).join(), '1,2,3,4');
});
