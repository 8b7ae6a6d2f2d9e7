// Tensors from other miners: every blob is checked in full before use, and no byte sequence makes
// the reader fail in any other way than a BadBlobError naming the blob.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeSafetensors } from '../../../worker/checkpoint/safetensors.ts';
import { BadBlobError, decodeBlob, encodeBlob } from '../../../worker/miner/blobs.ts';
import { rng } from '../../helpers/gradcheck.ts';

const dims = { rows: 2, seqLen: 4, dModel: 3, length: 5 };
const activation = (): Float32Array => Float32Array.from({ length: 24 }, (_, i) => i / 10 - 1);

test('a blob round-trips: the same values come back, checked', () => {
  const values = activation();
  const { tensors } = decodeBlob('k', encodeBlob('activation', dims, { activation: values }), 'activation', dims);
  assert.deepEqual(tensors.get('activation'), values);
  const snap = { params: new Float32Array(5).fill(1), m: new Float32Array(5).fill(2), v: new Float32Array(5).fill(3) };
  const back = decodeBlob('s', encodeBlob('snapshot', dims, snap, { rounds: '7' }), 'snapshot', dims);
  assert.deepEqual(back.tensors.get('v'), snap.v);
  assert.equal(back.metadata.rounds, '7');
});

test('wrong names, dtypes, shapes and non-finite values are refused with the key and the problem', () => {
  const refuse = (bytes: Uint8Array, problem: RegExp): void => {
    assert.throws(() => decodeBlob('runs/r/x.safetensors', bytes, 'activation', dims), (e: unknown) => e instanceof BadBlobError && e.key === 'runs/r/x.safetensors' && problem.test(e.message));
  };
  refuse(encodeSafetensors({ gradient: { dtype: 'F32', shape: [2, 4, 3], data: activation() } }), /expected tensors \[activation\], got \[gradient\]/);
  refuse(encodeSafetensors({ activation: { dtype: 'F64', shape: [2, 4, 3], data: new Float64Array(24) } }), /is F64, expected F32/);
  refuse(encodeSafetensors({ activation: { dtype: 'F32', shape: [1, 4, 3], data: new Float32Array(12) } }), /shape \[1, 4, 3\], expected \[2, 4, 3\]/);
  for (const bad of [NaN, Infinity, -Infinity]) {
    const v = activation();
    v[17] = bad;
    refuse(encodeBlob('activation', dims, { activation: v }), new RegExp(`holds ${bad} at element 17`));
  }
  refuse(new Uint8Array(0), /empty/);
  refuse(new TextEncoder().encode('<html>not found</html>'), /header/);
});

test('fuzz: 3,000 mutated blobs are either read correctly or refused with a BadBlobError', () => {
  const next = rng(11);
  const good = encodeBlob('activation', dims, { activation: activation() });
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    let bytes = Uint8Array.from(good);
    const kind = Math.floor(next() * 5);
    if (kind === 0) bytes = bytes.subarray(0, Math.floor(next() * bytes.length));
    else if (kind === 1) for (let f = 0; f < 1 + next() * 8; f++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
    else if (kind === 2) bytes[Math.floor(next() * Math.min(bytes.length, 8 + 120))] ^= 1 << Math.floor(next() * 8);
    else if (kind === 3) bytes = Uint8Array.from([...bytes, ...Array.from({ length: 1 + Math.floor(next() * 16) }, () => Math.floor(next() * 256))]);
    else new DataView(bytes.buffer).setBigUint64(0, BigInt(Math.floor(next() * 2 ** 40)), true);
    try {
      const { tensors } = decodeBlob('fuzz', bytes, 'activation', dims);
      // Accepted: then it really is a finite [2, 4, 3] float32 tensor.
      const v = tensors.get('activation')!;
      assert.equal(v.length, 24);
      assert.ok(v.every(Number.isFinite));
    } catch (e) {
      assert.ok(e instanceof BadBlobError, `mutation ${i} (kind ${kind}) threw ${String(e)}`);
      refused++;
    }
  }
  assert.ok(refused > 1500, `most mutations are refused (${refused})`);
});
