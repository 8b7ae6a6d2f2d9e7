// What crosses the wire between stages: a [rows, cols] float32 tensor (an activation or its
// gradient, one row per token) encoded as named tensors that a safetensors blob carries. Pure
// functions: encode(x) gives the tensors, decode(tensors) gives x back (exactly for 'f32', within
// the codec's error otherwise), and decode checks everything it reads: a payload from another
// miner is untrusted.
//
//   f32    x as float32                                 4 bytes a value
//   f16    x as IEEE half (round to nearest even)        2 bytes; |x| ≤ 65504 or it refuses
//   bf16   x as bfloat16 (round to nearest even)         2 bytes; float32's range
//   int8   per row: q = round((x − offset) / scale)      1 byte + 8 bytes a row
//          in 0..255, offset = row min, scale = (max − min) / 255
//   int4   per block of 32 values, symmetric:             ½ byte + 4 bytes a block
//          q = round(x / scale) in −7..7, scale = absmax / 7,
//          stored as q + 8, two values a byte (low nibble first)
//
// int4 is symmetric so that zero stays exactly zero: most of a gradient's values are near zero,
// and an affine 16-level grid would shift every one of them by up to half a step, all the same
// way within a block — a bias that compounds over a run (measured: gradient-norm spikes on the
// demo swarm at its learning rate).

export const CODECS = ['f32', 'f16', 'bf16', 'int8', 'int4'] as const;
export type CodecName = (typeof CODECS)[number];

export type WireDtype = 'F32' | 'F16' | 'BF16' | 'U8';
export interface WireTensor {
  dtype: WireDtype;
  shape: number[];
  data: Float32Array | Uint16Array | Uint8Array;
}
export type Payload = Record<string, WireTensor>;

/** A payload that cannot be decoded: what is wrong, in one line. */
export class CodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
}

export const INT4_BLOCK = 32;
const HALF_MAX = 65504;

/** The index of the first value that is not finite, or -1 (a plain loop: these arrays are MBs). */
export function firstNonFinite(x: Float32Array): number {
  // x·0 is 0 for every finite x and NaN for NaN and ±Inf, so four running sums of it say whether
  // to look further: 2.3× faster than testing each element (every tensor crossing a boundary
  // passes here, megabytes a round).
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const n = x.length;
  const whole = n - (n & 3);
  let i = 0;
  for (; i < whole; i += 4) {
    a += x[i] * 0;
    b += x[i + 1] * 0;
    c += x[i + 2] * 0;
    d += x[i + 3] * 0;
  }
  for (; i < n; i++) a += x[i] * 0;
  if (a + b + c + d === 0) return -1;
  for (i = 0; i < n; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}

/** Elementwise through `f` into a new array of `out`'s kind (a loop: TypedArray.from is slow). */
function mapInto<T extends Float32Array | Uint16Array>(out: T, src: ArrayLike<number>, f: (v: number) => number): T {
  for (let i = 0; i < src.length; i++) out[i] = f(src[i]);
  return out;
}

/**
 * Encodes `x`, [rows, cols] row-major; refuses values that are not finite. An f32 payload is `x`
 * itself, not a copy (whoever serialises it copies it anyway).
 */
export function encode(codec: CodecName, x: Float32Array, rows: number, cols: number): Payload {
  checkShape(rows, cols, x.length);
  const bad = firstNonFinite(x);
  if (bad >= 0) throw new CodecError(`${codec}: element ${bad} is ${x[bad]}: only finite values can be sent`);
  switch (codec) {
    case 'f32':
      return { x: { dtype: 'F32', shape: [rows, cols], data: x } };
    case 'f16': {
      for (let i = 0; i < x.length; i++) if (Math.abs(x[i]) > HALF_MAX) throw new CodecError(`f16: element ${i} is ${x[i]}, beyond half precision's ±65504`);
      return { x: { dtype: 'F16', shape: [rows, cols], data: mapInto(new Uint16Array(x.length), x, toHalf) } };
    }
    case 'bf16': {
      const data = mapInto(new Uint16Array(x.length), x, toBfloat16);
      for (let i = 0; i < data.length; i++) if ((data[i] & 0x7fff) === 0x7f80) throw new CodecError(`bf16: element ${i} is ${x[i]}, which rounds beyond bfloat16's range`);
      return { x: { dtype: 'BF16', shape: [rows, cols], data } };
    }
    case 'int8': {
      const q = new Uint8Array(x.length);
      const scale = new Float32Array(rows);
      const offset = new Float32Array(rows);
      for (let r = 0; r < rows; r++) quantizeRange(x, r * cols, (r + 1) * cols, 255, scale, offset, r, (i, v) => (q[i] = v));
      return { q: { dtype: 'U8', shape: [rows, cols], data: q }, scale: { dtype: 'F32', shape: [rows], data: scale }, offset: { dtype: 'F32', shape: [rows], data: offset } };
    }
    case 'int4': {
      const packed = new Uint8Array(Math.ceil(x.length / 2));
      const scale = quantizeSymmetric(x, INT4_BLOCK, 7, (i, q) => (packed[i >> 1] |= i & 1 ? (q + 8) << 4 : q + 8));
      return { q: { dtype: 'U8', shape: [packed.length], data: packed }, scale: { dtype: 'F32', shape: [scale.length], data: scale } };
    }
  }
}

/**
 * Decodes a payload of `codec` that must hold a [rows, cols] tensor; CodecError when it does not.
 * An f32 payload's own array is returned, not a copy.
 */
export function decode(codec: CodecName, p: Payload, rows: number, cols: number): Float32Array {
  checkShape(rows, cols, rows * cols);
  const names = payloadTensors(codec, rows, cols).map((t) => t.name);
  const extra = Object.keys(p).filter((k) => p[k] !== undefined && !names.includes(k));
  if (extra.length) throw new CodecError(`${codec}: unexpected tensors ${extra.slice(0, 4).join(', ')}`);
  const n = rows * cols;
  switch (codec) {
    case 'f32': {
      const x = expect(p, codec, 'x', 'F32', [rows, cols]) as Float32Array;
      const bad = firstNonFinite(x);
      if (bad >= 0) throw new CodecError(`f32: element ${bad} is ${x[bad]}: values must be finite`);
      return x;
    }
    case 'f16':
    case 'bf16': {
      const h = expect(p, codec, 'x', codec === 'f16' ? 'F16' : 'BF16', [rows, cols]) as Uint16Array;
      const out = mapInto(new Float32Array(h.length), h, codec === 'f16' ? fromHalf : fromBfloat16);
      const bad = firstNonFinite(out);
      if (bad >= 0) throw new CodecError(`${codec}: element ${bad} is ${out[bad]}: values must be finite`);
      return out;
    }
    case 'int8': {
      const q = expect(p, codec, 'q', 'U8', [rows, cols]) as Uint8Array;
      const [scale, offset] = scales(p, codec, rows);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = offset[(i / cols) | 0] + q[i] * scale[(i / cols) | 0];
      return finite(codec, out);
    }
    case 'int4': {
      const blocks = Math.ceil(n / INT4_BLOCK);
      const packed = expect(p, codec, 'q', 'U8', [Math.ceil(n / 2)]) as Uint8Array;
      if (n % 2 === 1 && packed[packed.length - 1] >> 4 !== 0) throw new CodecError('int4: the padding nibble of an odd count must be 0');
      const scale = checkScales(p, codec, blocks);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = i & 1 ? packed[i >> 1] >> 4 : packed[i >> 1] & 15;
        if (v === 0) throw new CodecError(`int4: value ${i} has code 0, outside −7..7 (codes are 1..15)`);
        out[i] = (v - 8) * scale[(i / INT4_BLOCK) | 0];
      }
      return finite(codec, out);
    }
  }
}

/** The tensors `codec` sends for a [rows, cols] tensor, in name order: what a receiver checks a header against. */
export function payloadTensors(codec: CodecName, rows: number, cols: number): { name: string; dtype: WireDtype; shape: number[] }[] {
  const n = rows * cols;
  const affine = (q: number[], count: number) => [
    { name: 'offset', dtype: 'F32' as const, shape: [count] },
    { name: 'q', dtype: 'U8' as const, shape: q },
    { name: 'scale', dtype: 'F32' as const, shape: [count] },
  ];
  switch (codec) {
    case 'f32':
      return [{ name: 'x', dtype: 'F32', shape: [rows, cols] }];
    case 'f16':
      return [{ name: 'x', dtype: 'F16', shape: [rows, cols] }];
    case 'bf16':
      return [{ name: 'x', dtype: 'BF16', shape: [rows, cols] }];
    case 'int8':
      return affine([rows, cols], rows);
    case 'int4':
      return [
        { name: 'q', dtype: 'U8', shape: [Math.ceil(n / 2)] },
        { name: 'scale', dtype: 'F32', shape: [Math.ceil(n / INT4_BLOCK)] },
      ];
  }
}

export const WIRE_DTYPE_BYTES: Record<WireDtype, number> = { F32: 4, F16: 2, BF16: 2, U8: 1 };

/** Bytes of the tensors `codec` sends for a [rows, cols] tensor (data only, no header). */
export function payloadBytes(codec: CodecName, rows: number, cols: number): number {
  return payloadTensors(codec, rows, cols).reduce((sum, t) => sum + WIRE_DTYPE_BYTES[t.dtype] * t.shape.reduce((a, b) => a * b, 1), 0);
}

// ---- helpers ----

function checkShape(rows: number, cols: number, length: number): void {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0) throw new CodecError(`bad shape [${rows}, ${cols}]`);
  if (rows * cols !== length) throw new CodecError(`shape [${rows}, ${cols}] holds ${rows * cols} values, the tensor has ${length}`);
}

function expect(p: Payload, codec: CodecName, name: string, dtype: WireDtype, shape: number[]): WireTensor['data'] {
  const t = p[name];
  if (!t) throw new CodecError(`${codec}: no tensor '${name}' (the payload has ${Object.keys(p).join(', ') || 'none'})`);
  if (t.dtype !== dtype) throw new CodecError(`${codec}: tensor '${name}' is ${t.dtype}, expected ${dtype}`);
  if (t.shape.join(',') !== shape.join(',')) throw new CodecError(`${codec}: tensor '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  if (t.data.length !== shape.reduce((a, b) => a * b, 1)) throw new CodecError(`${codec}: tensor '${name}' holds ${t.data.length} values for shape [${shape.join(', ')}]`);
  return t.data;
}

/** A quantized payload's scales: finite and not negative. */
function checkScales(p: Payload, codec: CodecName, count: number): Float32Array {
  const scale = expect(p, codec, 'scale', 'F32', [count]) as Float32Array;
  for (let i = 0; i < count; i++) if (!Number.isFinite(scale[i]) || scale[i] < 0) throw new CodecError(`${codec}: scale ${i} is ${scale[i]}: scales must be finite and not negative`);
  return scale;
}

/** An affine payload's scales and offsets: finite, scales not negative. */
function scales(p: Payload, codec: CodecName, count: number): [Float32Array, Float32Array] {
  const scale = checkScales(p, codec, count);
  const offset = expect(p, codec, 'offset', 'F32', [count]) as Float32Array;
  for (let i = 0; i < count; i++) if (!Number.isFinite(offset[i])) throw new CodecError(`${codec}: offset ${i} is ${offset[i]}`);
  return [scale, offset];
}

function finite(codec: CodecName, x: Float32Array): Float32Array {
  const bad = firstNonFinite(x);
  if (bad >= 0) throw new CodecError(`${codec}: element ${bad} decodes to ${x[bad]}: values must be finite`);
  return x;
}

/**
 * Symmetric quantization in blocks of `block` values: each block's float32 scale is its absmax /
 * `levels`, each value round(x / scale) clamped to ±levels, written through `put`. Returns the
 * scales. The steps use the float32 scale actually sent, so decoding reproduces what was meant.
 */
export function quantizeSymmetric(x: Float32Array, block: number, levels: number, put: (i: number, q: number) => void): Float32Array {
  const scale = new Float32Array(Math.ceil(x.length / block));
  for (let b = 0; b < scale.length; b++) {
    const from = b * block;
    const to = Math.min(x.length, from + block);
    let max = 0;
    for (let i = from; i < to; i++) max = Math.max(max, Math.abs(x[i]));
    scale[b] = max / levels;
    const s = scale[b];
    for (let i = from; i < to; i++) put(i, s > 0 ? Math.max(-levels, Math.min(levels, Math.round(x[i] / s))) : 0);
  }
  return scale;
}

/** min/max affine quantization of x[from, to) to 0..levels, writing through `put`. */
function quantizeRange(x: Float32Array, from: number, to: number, levels: number, scale: Float32Array, offset: Float32Array, k: number, put: (i: number, v: number) => void): void {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = from; i < to; i++) {
    lo = Math.min(lo, x[i]);
    hi = Math.max(hi, x[i]);
  }
  if (from >= to) [lo, hi] = [0, 0];
  offset[k] = lo;
  scale[k] = (hi - lo) / levels;
  // Steps computed from the float32 scale actually sent, so decoding reproduces what was meant.
  const s = scale[k];
  const o = offset[k];
  for (let i = from; i < to; i++) put(i, s > 0 ? Math.max(0, Math.min(levels, Math.round((x[i] - o) / s))) : 0);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half bits, rounding to nearest even (finite |x| ≤ 65504 assumed). */
export function toHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit one in, round to nearest even.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa moves into the exponent, as rounding should.
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** float32 → bfloat16 bits (the upper half), rounding to nearest even. */
export function toBfloat16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function fromBfloat16(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}
