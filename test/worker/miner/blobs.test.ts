// Tensors from other miners: every blob is checked in full before use, and no byte sequence makes
// the reader fail in any other way than a BadBlobError naming the blob.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeSafetensors } from '../../../worker/checkpoint/safetensors.ts';
import type { CodecName } from '../../../orchestrator-client/codecs.ts';
import { BadBlobError, boundaryBytesPerToken, decodeBlob, decodeWire, encodeBlob, encodeWire } from '../../../worker/miner/blobs.ts';
import { rng } from '../../helpers/gradcheck.ts';

const dims = { rows: 2, seqLen: 4, dModel: 3, length: 5 };
const activation = (): Float32Array => Float32Array.from({ length: 24 }, (_, i) => i / 10 - 1);

test('a blob round-trips: the same values come back, checked', () => {
  const values = activation();
  assert.deepEqual(decodeWire('k', encodeWire('activation', dims, values), 'activation', dims), values);
  const snap = { params: new Float32Array(5).fill(1), m: new Float32Array(5).fill(2), v: new Float32Array(5).fill(3) };
  const back = decodeBlob('s', encodeBlob('snapshot', dims, snap, { rounds: '7' }), 'snapshot', dims);
  assert.deepEqual(back.tensors.get('v'), snap.v);
  assert.equal(back.metadata.rounds, '7');
});

test('wrong names, dtypes, shapes and non-finite values are refused with the key and the problem', () => {
  const refuse = (bytes: Uint8Array, problem: RegExp): void => {
    assert.throws(() => decodeWire('runs/r/x.safetensors', bytes, 'activation', dims), (e: unknown) => e instanceof BadBlobError && e.key === 'runs/r/x.safetensors' && problem.test(e.message));
  };
  refuse(encodeSafetensors({ gradient: { dtype: 'F32', shape: [8, 3], data: activation() } }), /tensor gradient does not belong in a activation blob/);
  refuse(encodeSafetensors({ activation: { dtype: 'F64', shape: [8, 3], data: new Float64Array(24) } }), /tensor 'x' is F64, expected F32|dtype F64/);
  refuse(encodeSafetensors({ activation: { dtype: 'F32', shape: [4, 3], data: new Float32Array(12) } }), /has shape \[4, 3\], expected \[8, 3\]/);
  for (const bad of [NaN, Infinity, -Infinity]) {
    const v = activation();
    v[17] = bad;
    refuse(encodeSafetensors({ activation: { dtype: 'F32', shape: [8, 3], data: v } }), new RegExp(`element 17 is ${bad}: values must be finite`));
  }
  refuse(new Uint8Array(0), /empty/);
  refuse(new TextEncoder().encode('<html>not found</html>'), /header/);
});

test('fuzz: 3,000 mutated blobs are either read correctly or refused with a BadBlobError', () => {
  const next = rng(11);
  const good = encodeWire('activation', dims, activation());
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
      // Accepted: then it really is a finite [8, 3] float32 tensor.
      const v = decodeWire('fuzz', bytes, 'activation', dims);
      assert.equal(v.length, 24);
      assert.ok(v.every(Number.isFinite));
    } catch (e) {
      assert.ok(e instanceof BadBlobError, `mutation ${i} (kind ${kind}) threw ${String(e)}`);
      refused++;
    }
  }
  assert.ok(refused > 1500, `most mutations are refused (${refused})`);
});

describe('compressed activations and gradients', () => {
  const wide = { rows: 2, seqLen: 8, dModel: 16, width: 4, length: 0 };
  const x = Float32Array.from({ length: 2 * 8 * 4 }, (_, i) => Math.sin(i) * 3);
  const codecs = (forward: CodecName, backward: CodecName = forward) => ({ ...wide, codecs: { forward, backward } });

  test('each direction goes through its own codec, within the codec\'s error', () => {
    const d = codecs('int4', 'bf16');
    const fwd = decodeWire('a', encodeWire('activation', d, x), 'activation', d);
    const bwd = decodeWire('g', encodeWire('gradient', d, x), 'gradient', d);
    const worst = (y: Float32Array): number => Math.max(...y.map((v, i) => Math.abs(v - x[i])));
    assert.ok(worst(fwd) <= 3 / 7 / 2 + 1e-6, `int4: ${worst(fwd)}`);
    assert.ok(worst(bwd) <= 3 / 256, `bf16: ${worst(bwd)}`);
    // A gradient blob is not an activation blob, even of the same codec.
    assert.throws(() => decodeWire('g', encodeWire('gradient', codecs('int4'), x), 'activation', codecs('int4')), /tensor gradient\.(q|scale) does not belong in a activation blob/);
  });

  test('a bad header, size or scale is refused with the key and the problem', () => {
    const d = codecs('int8');
    const refuse = (bytes: Uint8Array, problem: RegExp): void => {
      assert.throws(() => decodeWire('runs/r/a.safetensors', bytes, 'activation', d), (e: unknown) => e instanceof BadBlobError && e.key === 'runs/r/a.safetensors' && problem.test(e.message));
    };
    const good = encodeWire('activation', d, x);
    const tensors = (edit: (t: Record<string, { dtype: 'F32' | 'U8' | 'F16'; shape: number[]; data: ArrayBufferView }>) => void): Uint8Array => {
      const t = {
        'activation.offset': { dtype: 'F32' as const, shape: [16], data: new Float32Array(16) },
        'activation.q': { dtype: 'U8' as const, shape: [16, 4], data: new Uint8Array(64) },
        'activation.scale': { dtype: 'F32' as const, shape: [16], data: new Float32Array(16).fill(0.01) },
      } as Record<string, { dtype: 'F32' | 'U8' | 'F16'; shape: number[]; data: ArrayBufferView }>;
      edit(t);
      return encodeSafetensors(t);
    };
    assert.equal(decodeWire('ok', tensors(() => {}), 'activation', d).length, 64);
    refuse(tensors((t) => (t['activation.scale'] = { dtype: 'F16', shape: [16], data: new Uint16Array(16) })), /tensor 'scale' is F16, expected F32/);
    refuse(tensors((t) => (t['activation.q'] = { dtype: 'U8', shape: [64], data: new Uint8Array(64) })), /tensor 'q' has shape \[64\], expected \[16, 4\]/);
    refuse(tensors((t) => delete t['activation.offset']), /no tensor 'offset'/);
    refuse(tensors((t) => ((t['activation.scale'].data as Float32Array)[5] = -0.5)), /int8: scale 5 is -0\.5: scales must be finite and not negative/);
    refuse(tensors((t) => ((t['activation.offset'].data as Float32Array)[2] = NaN)), /int8: offset 2 is NaN/);
    refuse(good.subarray(0, good.length - 1), /./);
    refuse(Uint8Array.from([...good, 0]), /./);
  });

  test('bytes per token are the blobs\' bytes: data as the codec says, plus the headers', () => {
    const d = { rows: 16, seqLen: 128, dModel: 128, width: 4, length: 0, codecs: { forward: 'int4' as const, backward: 'int4' as const } };
    const perToken = boundaryBytesPerToken(d);
    // 8,192 values a direction: 4,096 bytes of nibbles and 256 blocks of a float32 scale.
    const data = 2 * (4096 + 256 * 4);
    const headers = perToken * 16 * 128 - data;
    assert.ok(headers > 2 * 8 && headers < 2 * 300, `headers ${headers}`);
    assert.ok((8 * 128) / perToken >= 128, `ratio ${(8 * 128) / perToken}`);
    assert.equal(boundaryBytesPerToken({ ...d, width: 128, codecs: undefined }) * 16 * 128 - 2 * 16 * 128 * 128 * 4 < 300, true);
  });
});
