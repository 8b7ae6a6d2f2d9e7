// The int8 blocks merges can move in local mode: how close they come back, and their size.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Q8_BLOCK, blobBytes, blobTensors, dequantizeInt8, quantizeInt8 } from '../../orchestrator-client/blobs.ts';

test('int8 blocks come back within half a step of their block, exactly for zeros and block maxima', () => {
  let x = 3;
  const rand = (): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const n = 3 * Q8_BLOCK + 17;
  const v = Float32Array.from({ length: n }, (_, i) => (i < Q8_BLOCK ? 0 : rand() * (i < 2 * Q8_BLOCK ? 1e-6 : 5)));
  const { q, scale } = quantizeInt8(v);
  assert.equal(q.length, n);
  assert.equal(scale.length, 4);
  assert.equal(scale[0], 0, 'an all-zero block has scale 0');
  const back = dequantizeInt8(q, scale);
  for (let i = 0; i < n; i++) {
    const step = scale[Math.floor(i / Q8_BLOCK)];
    assert.ok(Math.abs(back[i] - v[i]) <= step / 2 + 1e-12 * Math.abs(v[i]), `element ${i}: ${v[i]} came back as ${back[i]} (step ${step})`);
  }
  for (let b = 1; b < 4; b++) {
    const block = [...v.subarray(b * Q8_BLOCK, (b + 1) * Q8_BLOCK)];
    const at = b * Q8_BLOCK + block.map(Math.abs).indexOf(Math.max(...block.map(Math.abs)));
    assert.equal(Math.abs(q[at]), 127, 'the largest value of a block is ±127 steps');
  }
});

test('an int8 share is about a quarter the bytes of a float32 one', () => {
  const dims = { rows: 1, seqLen: 1, dModel: 1, length: 1_000_000 };
  const f32 = blobBytes(blobTensors('share', dims), 100);
  const q8 = blobBytes(blobTensors('share_q8', dims), 100);
  assert.ok(q8 / f32 < 0.26 && q8 / f32 > 0.25, `${q8} / ${f32}`);
});
