import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  DTYPE_SIZES, decodeSafetensors, encodeSafetensors, readSafetensorsFile, toFloat32, toFloat64, writeFileAtomic, type Dtype, type TensorIn,
} from '../../../worker/checkpoint/safetensors.ts';

/** A file from a raw header (object or text) and data bytes, bypassing the encoder's checks. */
function raw(header: object | string | Uint8Array, data = new Uint8Array(0), headerLen?: number): Uint8Array {
  const json = header instanceof Uint8Array ? Buffer.from(header) : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(BigInt(headerLen ?? json.length), 0);
  json.copy(out, 8);
  out.set(data, 8 + json.length);
  return out;
}
const f32 = (shape: number[], begin: number) => ({ dtype: 'F32', shape, data_offsets: [begin, begin + 4 * shape.reduce((a, b) => a * b, 1)] });

/** Asserts decoding fails with one line that names the source and matches `pattern`. */
function rejects(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => decodeSafetensors(bytes, 'checkpoint runs/x.safetensors'), (e: Error) => {
    assert.match(e.message, /^checkpoint runs\/x\.safetensors: /);
    assert.match(e.message, pattern);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
}

describe('safetensors codec', () => {
  test('round-trips every dtype, bit for bit', () => {
    const tensors: Record<string, TensorIn> = {};
    for (const dtype of Object.keys(DTYPE_SIZES) as Dtype[]) {
      const data = new Uint8Array(6 * DTYPE_SIZES[dtype]).map((_, i) => (i * 37 + dtype.length) & 0xff);
      tensors[`t.${dtype}`] = { dtype, shape: [2, 3], data };
    }
    tensors.scalar = { dtype: 'F32', shape: [], data: new Float32Array([7]) };
    tensors.empty = { dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) };
    const bytes = encodeSafetensors(tensors, { note: 'hi', format: 'pt' });
    const { tensors: out, metadata } = decodeSafetensors(bytes);
    assert.deepEqual(metadata, { note: 'hi', format: 'pt' });
    assert.deepEqual([...out.keys()].sort(), Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const got = out.get(name)!;
      assert.equal(got.dtype, t.dtype, name);
      assert.deepEqual(got.shape, t.shape, name);
      assert.deepEqual(Buffer.from(got.bytes), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength), name);
    }
  });

  test('header is space-padded to 8 bytes and tensors are laid out by name', () => {
    const bytes = encodeSafetensors({ b: { dtype: 'U8', shape: [1], data: new Uint8Array([2]) }, a: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 1, 1]) } });
    const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0);
    const header = Buffer.from(bytes.subarray(8, 8 + n)).toString();
    assert.match(header, /^\{.*\} *$/);
    assert.deepEqual(JSON.parse(header), { a: { dtype: 'U8', shape: [3], data_offsets: [0, 3] }, b: { dtype: 'U8', shape: [1], data_offsets: [3, 4] } });
    assert.deepEqual([...bytes.subarray(8 + n)], [1, 1, 1, 2]);
  });

  test('converts values to aligned float copies', () => {
    const le = (n: number, fill: (v: DataView) => void) => {
      const b = new Uint8Array(n);
      fill(new DataView(b.buffer));
      return b;
    };
    const cases: [Dtype, Uint8Array, number[]][] = [
      ['F32', new Uint8Array(new Float32Array([1.5, -2]).buffer), [1.5, -2]],
      ['F64', new Uint8Array(new Float64Array([0.1, -3]).buffer), [0.1, -3]],
      ['F16', le(8, (v) => [0x3c00, 0xc000, 0x7c00, 0x0001].forEach((h, i) => v.setUint16(2 * i, h, true))), [1, -2, Infinity, 2 ** -24]],
      ['BF16', le(4, (v) => [0x3f80, 0xc040].forEach((h, i) => v.setUint16(2 * i, h, true))), [1, -3]],
      ['I64', le(16, (v) => (v.setBigInt64(0, -5n, true), v.setBigInt64(8, 1n << 40n, true))), [-5, 2 ** 40]],
      ['I32', new Uint8Array(new Int32Array([-7, 9]).buffer), [-7, 9]],
      ['U8', new Uint8Array([0, 255]), [0, 255]],
      ['F8_E4M3', new Uint8Array([0x38, 0xc0, 0x7f]), [1, -2, NaN]],
      ['F8_E5M2', new Uint8Array([0x3c, 0x7c]), [1, Infinity]],
    ];
    for (const [dtype, bytes, want] of cases) {
      // Decode from an odd offset so that a view-based conversion would be misaligned.
      const file = encodeSafetensors({ pad: { dtype: 'U8', shape: [1], data: new Uint8Array(1) }, x: { dtype, shape: [want.length], data: bytes } });
      const t = decodeSafetensors(file).tensors.get('x')!;
      assert.deepEqual([...toFloat64(t)], want, dtype);
      const f = toFloat32(t);
      assert.equal(f.byteOffset, 0);
      assert.deepEqual([...f], want.map((x) => Math.fround(x)), dtype);
    }
  });

  test('encoder refuses data that does not match the shape', () => {
    assert.throws(() => encodeSafetensors({ x: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }), /needs 16 bytes, data has 12/);
    assert.throws(() => encodeSafetensors({ x: { dtype: 'F99' as Dtype, shape: [1], data: new Float32Array(1) } }), /unknown dtype/);
  });

  describe('rejects corrupt files with one clear line', () => {
    const valid = encodeSafetensors({ a: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) } });
    test('empty file', () => rejects(new Uint8Array(0), /: empty file$/));
    test('shorter than the length field', () => rejects(new Uint8Array(5), /truncated: 5 bytes is too short/));
    test('truncated tensor data', () => rejects(valid.subarray(0, valid.length - 14), /truncated: header says 24 bytes of tensor data, file has 10$/));
    test('header length past the end', () => rejects(raw({}, new Uint8Array(0), 4096), /truncated: header length 4096 runs past the end of the file \(10 bytes\)/));
    test('absurd header length', () => rejects(raw({}, new Uint8Array(0), 2 ** 40), /corrupt: header length 1099511627776 is over the 104857600-byte limit/));
    test('header not JSON', () => rejects(raw('{"a": nope}'), /corrupt: header is not valid JSON/));
    test('header not an object', () => rejects(raw('[1, 2]'), /corrupt: header is not valid JSON/));
    test('header not UTF-8', () => rejects(raw(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid JSON \(.*encoded data was not valid/));
    test('unknown dtype', () => rejects(raw({ a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, new Uint8Array(16)), /unknown dtype "F128" for tensor a/));
    test('negative shape', () => rejects(raw({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }), /corrupt: tensor a: shape\.0: /));
    test('fractional offsets', () => rejects(raw({ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1.5] } }, new Uint8Array(2)), /corrupt: tensor a: data_offsets\.1/));
    test('unknown header field', () => rejects(raw({ a: { ...f32([1], 0), extra: 1 } }, new Uint8Array(4)), /corrupt: tensor a: /));
    test('end before begin', () => rejects(raw({ a: { dtype: 'U8', shape: [0], data_offsets: [4, 0] } }, new Uint8Array(4)), /data_offsets \[4, 0\] end before they begin/));
    test('extent does not match the shape', () => rejects(raw({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor a: F32 \[3\] needs 12 bytes, data_offsets \[0, 8\] span 8/));
    test('offsets out of range', () => rejects(raw({ a: f32([2], 100) }, new Uint8Array(8)), /truncated: header says 108 bytes of tensor data, file has 8/));
    test('overlapping tensors', () => rejects(raw({ a: f32([2], 0), b: f32([2], 4) }, new Uint8Array(12)), /tensor b \(bytes 4-12\) overlaps tensor a \(ends at 8\)/));
    test('gap between tensors', () => rejects(raw({ a: f32([1], 0), b: f32([1], 8) }, new Uint8Array(12)), /gap of 4 bytes before tensor b at byte 4/));
    test('bytes after the last tensor', () => rejects(raw({ a: f32([1], 0) }, new Uint8Array(8)), /4 bytes after the last tensor are not described/));
    test('duplicate names', () => rejects(raw(`{"a": ${JSON.stringify(f32([1], 0))}, "a": ${JSON.stringify(f32([1], 4))}}`, new Uint8Array(8)), /header names "a" twice/));
    test('duplicate names spelt differently', () => rejects(raw(`{"a": ${JSON.stringify(f32([1], 0))}, "\\u0061": ${JSON.stringify(f32([1], 4))}}`, new Uint8Array(8)), /header names "a" twice/));
    test('non-string metadata', () => rejects(raw({ __metadata__: { step: 3 } }), /__metadata__ must map strings to strings/));
    test('nested keys may repeat across objects', () => {
      const file = raw({ __metadata__: { a: 'x' }, a: f32([1], 0), b: f32([1], 4) }, new Uint8Array(8));
      assert.equal(decodeSafetensors(file).tensors.size, 2);
    });
  });
});

describe('files', () => {
  let dir = '';
  after(() => rm(dir, { recursive: true, force: true }));

  test('readSafetensorsFile reads and names the file in errors', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tah-safetensors-'));
    const path = join(dir, 'x.safetensors');
    await writeFileAtomic(path, encodeSafetensors({ a: { dtype: 'I32', shape: [2], data: new Int32Array([4, 5]) } }));
    assert.deepEqual([...toFloat64((await readSafetensorsFile(path)).tensors.get('a')!)], [4, 5]);
    await writeFile(path, 'garbage!garbage!');
    await assert.rejects(readSafetensorsFile(path), new RegExp(`^Error: ${path}: corrupt: header length \\d+ is over`));
    await writeFile(path, encodeSafetensors({}).subarray(0, 12));
    await assert.rejects(readSafetensorsFile(path, 'checkpoint c'), /^Error: checkpoint c: truncated: header length 8 runs past the end of the file \(12 bytes\)$/);
    await assert.rejects(readSafetensorsFile(join(dir, 'missing')), /missing: cannot read \(ENOENT\)/);
  });

  test('writeFileAtomic replaces a file and leaves no temp file', async () => {
    const path = join(dir, 'out.bin');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, new Uint8Array([116, 119, 111]));
    assert.equal(await readFile(path, 'utf8'), 'two');
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('out.bin')), ['out.bin']);
  });

  test('writeFileAtomic leaves no temp file when it fails', async () => {
    const target = join(dir, 'is-a-dir');
    await mkdir(target);
    const before = await readdir(dir);
    await assert.rejects(writeFileAtomic(target, 'data'));
    assert.deepEqual(await readdir(dir), before);
    assert.deepEqual(await readdir(target), []);
    await assert.rejects(writeFileAtomic(join(dir, 'no-such-dir', 'f'), 'data'), /ENOENT/);
  });
});
