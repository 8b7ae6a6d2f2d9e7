// The wire codecs' properties: round-trip error within each codec's bound on varied inputs, exact
// bit patterns where the formats fix them, refusals of non-finite input and of malformed payloads,
// empty and large tensors, and byte counts that match what is sent.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CODECS, type CodecName, CodecError, INT4_BLOCK, type Payload, decode, encode, firstNonFinite, fromBfloat16, fromHalf, payloadBytes, toBfloat16, toHalf } from '../../orchestrator-client/codecs.ts';

let seed = 11;
const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
/** Activations-like values: mostly small, a few large, some exact zeros, per-row scale changes. */
function tensor(rows: number, cols: number): Float32Array {
  return Float32Array.from({ length: rows * cols }, (_, i) => {
    const r = Math.floor(i / Math.max(1, cols));
    const u = rand();
    return i % 17 === 0 ? 0 : u * 10 ** ((r % 5) - 2) * (Math.abs(u) > 0.98 ? 30 : 1);
  });
}
const dataBytes = (p: Payload): number => Object.values(p).reduce((n, t) => n + t.data.byteLength, 0);

describe('round trips within each codec\'s error bound', () => {
  for (const [rows, cols] of [[1, 1], [3, 7], [16, 64], [5, 33]] as const) {
    test(`[${rows}, ${cols}]`, () => {
      const x = tensor(rows, cols);
      for (const codec of CODECS) {
        const p = encode(codec, x, rows, cols);
        assert.equal(dataBytes(p), payloadBytes(codec, rows, cols), `${codec}: bytes sent`);
        assert.deepEqual(encode(codec, x, rows, cols), p, `${codec}: deterministic`);
        const y = decode(codec, p, rows, cols);
        assert.equal(y.length, x.length);
        for (let i = 0; i < x.length; i++) {
          const err = Math.abs(y[i] - x[i]);
          const bound = errorBound(codec, x, rows, cols, i);
          assert.ok(err <= bound, `${codec} element ${i}: ${x[i]} came back as ${y[i]} (error ${err}, bound ${bound})`);
        }
      }
    });
  }
});

function errorBound(codec: CodecName, x: Float32Array, rows: number, cols: number, i: number): number {
  const range = (from: number, to: number): number => {
    const part = x.subarray(from, to);
    return Math.max(...part) - Math.min(...part);
  };
  switch (codec) {
    case 'f32':
      return 0;
    case 'f16':
      return Math.abs(x[i]) * 2 ** -11 + 2 ** -25;
    case 'bf16':
      return Math.abs(x[i]) * 2 ** -8;
    case 'int8': {
      const r = Math.floor(i / cols);
      return (range(r * cols, (r + 1) * cols) / 255) * 0.5001 + 1e-7 * Math.abs(x[i]);
    }
    case 'int4': {
      // Symmetric: half a step of absmax / 7, and zero stays zero.
      const b = Math.floor(i / INT4_BLOCK);
      const part = x.subarray(b * INT4_BLOCK, Math.min(rows * cols, (b + 1) * INT4_BLOCK));
      return (Math.max(...part.map(Math.abs)) / 7) * 0.5001 + 1e-7 * Math.abs(x[i]);
    }
  }
}

test('half and bfloat16 bit patterns, rounding to nearest even', () => {
  const cases: [number, number][] = [[1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [2 ** -24, 0x0001], [2 ** -14, 0x0400], [0.1, 0x2e66], [0, 0], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [65519, 0x7bff]];
  for (const [x, h] of cases) {
    assert.equal(toHalf(x), h, `toHalf(${x})`);
    if (x !== 65519) assert.ok(Math.abs(fromHalf(h) - x) <= Math.abs(x) * 2 ** -11 + 2 ** -25);
  }
  assert.equal(toHalf(-0), 0x8000);
  assert.equal(fromHalf(0x7c00), Infinity);
  assert.ok(Number.isNaN(fromHalf(0x7e00)));
  for (const [x, h] of [[1, 0x3f80], [-1, 0xbf80], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82]] as const) assert.equal(toBfloat16(x), h, `toBfloat16(${x})`);
  assert.equal(fromBfloat16(0x3f80), 1);
});

test('encode refuses NaN, ±Inf and values a format cannot hold, naming the element', () => {
  for (const codec of CODECS) {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const x = Float32Array.from([1, 2, bad, 4]);
      assert.throws(() => encode(codec, x, 2, 2), (e: unknown) => e instanceof CodecError && new RegExp(`^${codec}: element 2 is ${bad}`).test(e.message));
    }
  }
  assert.throws(() => encode('f16', Float32Array.from([70000]), 1, 1), /beyond half precision's ±65504/);
  assert.throws(() => encode('bf16', Float32Array.from([3.4028234663852886e38]), 1, 1), /beyond bfloat16's range/);
  assert.throws(() => encode('int8', new Float32Array(6), 2, 2), /shape \[2, 2\] holds 4 values, the tensor has 6/);
});

test('empty tensors and constant rows round-trip exactly', () => {
  for (const codec of CODECS) {
    assert.deepEqual(decode(codec, encode(codec, new Float32Array(0), 0, 8), 0, 8), new Float32Array(0));
    const flat = new Float32Array(40).fill(-3.25);
    assert.deepEqual(decode(codec, encode(codec, flat, 2, 20), 2, 20), flat, codec);
  }
});

test('a large tensor (4 M values) goes through every codec', () => {
  const [rows, cols] = [4096, 1024];
  const x = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i) * (1 + (i % 7)));
  for (const codec of CODECS) {
    const y = decode(codec, encode(codec, x, rows, cols), rows, cols);
    assert.equal(y.length, x.length);
    assert.ok(Math.abs(y[123_457] - x[123_457]) < 1, codec);
  }
});

describe('decode refuses a malformed payload with a clear error', () => {
  const good = (codec: CodecName): Payload => encode(codec, tensor(4, 40), 4, 40);
  const refuse = (codec: CodecName, p: Payload, why: RegExp): void => {
    assert.throws(() => decode(codec, p, 4, 40), (e: unknown) => e instanceof CodecError && why.test(e.message), `${codec}: expected ${why}`);
  };
  test('missing, extra, mistyped or misshapen tensors', () => {
    for (const codec of CODECS) {
      const p = good(codec);
      const first = Object.keys(p)[0];
      refuse(codec, { ...p, [first]: undefined as never }, /no tensor/);
      refuse(codec, { ...p, extra: p[first] }, /unexpected tensors extra/);
      refuse(codec, { ...p, [first]: { ...p[first], shape: [40, 4] } }, /has shape \[40, 4\]/);
      refuse(codec, { ...p, [first]: { ...p[first], dtype: p[first].dtype === 'U8' ? 'F32' : 'U8' } }, /expected/);
      refuse(codec, { ...p, [first]: { ...p[first], data: p[first].data.subarray(1) } }, /holds \d+ values for shape/);
    }
    assert.throws(() => decode('int8', good('int8'), 5, 40), /tensor 'q' has shape \[4, 40\], expected \[5, 40\]/);
  });
  test('scales and offsets that are not finite, negative scales, NaN values, a set padding nibble', () => {
    for (const codec of ['int8', 'int4'] as const) {
      const p = good(codec);
      const cases = [['scale', NaN, /scale 0 is NaN/], ['scale', -1, /scale 0 is -1: scales must be finite and not negative/], ['scale', Infinity, /scale 0 is Infinity/], ['offset', NaN, /offset 0 is NaN/]] as const;
      for (const [name, v, why] of cases.filter(([n]) => n in p)) {
        const data = Float32Array.from(p[name].data as Float32Array);
        data[0] = v;
        refuse(codec, { ...p, [name]: { ...p[name], data } }, why);
      }
    }
    const f = good('f32');
    const data = Float32Array.from(f.x.data as Float32Array);
    data[3] = NaN;
    refuse('f32', { x: { ...f.x, data } }, /element 3 is NaN/);
    const h = good('f16');
    const hd = Uint16Array.from(h.x.data as Uint16Array);
    hd[5] = 0x7c00;
    refuse('f16', { x: { ...h.x, data: hd } }, /element 5 is Infinity/);
    const odd = encode('int4', Float32Array.from([1, 2, 3]), 1, 3);
    const packed = Uint8Array.from(odd.q.data as Uint8Array);
    packed[1] |= 0xf0;
    assert.throws(() => decode('int4', { ...odd, q: { ...odd.q, data: packed } }, 1, 3), /padding nibble/);
    // int4 codes are 1..15 (−7..7 shifted by 8): a 0 is not one of ours.
    const zeroed = Uint8Array.from(odd.q.data as Uint8Array);
    zeroed[0] &= 0xf0;
    assert.throws(() => decode('int4', { ...odd, q: { ...odd.q, data: zeroed } }, 1, 3), /value 0 has code 0/);
    // Zero is exact, and so is the block's largest magnitude.
    const z = decode('int4', encode('int4', Float32Array.from([0, 0.3, -0.7, 0]), 1, 4), 1, 4);
    assert.equal(z[0], 0);
    assert.equal(z[3], 0);
    assert.ok(Math.abs(z[2] + 0.7) < 1e-7);
  });
});

describe('firstNonFinite', () => {
  test('finds the first NaN or infinity at any position, and none in finite data', () => {
    for (const n of [0, 1, 3, 4, 5, 8, 1027]) {
      const x = tensor(1, n);
      // Extremes that are finite: the largest float32, the smallest subnormal, negative zero.
      if (n > 2) [x[0], x[1], x[2]] = [3.4028234663852886e38, -1.401298464324817e-45, -0];
      assert.equal(firstNonFinite(x), -1, `finite, length ${n}`);
      for (const bad of [NaN, Infinity, -Infinity]) {
        for (const at of new Set([0, 1, 2, 3, n >> 1, n - 2, n - 1].filter((i) => i >= 0 && i < n))) {
          const y = x.slice();
          y[at] = bad;
          if (at + 2 < n) y[n - 1] = NaN; // a later one must not be the answer
          assert.equal(firstNonFinite(y), at, `${bad} at ${at} of ${n}`);
        }
      }
    }
  });
});
