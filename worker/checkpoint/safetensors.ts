// A strict, small safetensors codec (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON header, then the tensor bytes. There is no
// well-kept npm library for it, and checkpoints are the one thing we must never misread, so the
// decoder checks every rule of the format and says in one line what is wrong with a bad file.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';

/** Bytes per element of each dtype the format defines (sub-byte types left out). */
export const DTYPE_SIZES = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  U16: 2, I16: 2, F16: 2, BF16: 2,
  U32: 4, I32: 4, F32: 4,
  U64: 8, I64: 8, F64: 8,
} as const;
export type Dtype = keyof typeof DTYPE_SIZES;

export interface TensorIn { dtype: Dtype; shape: number[]; data: ArrayBufferView }
export interface TensorOut { dtype: Dtype; shape: number[]; bytes: Uint8Array }
export interface Safetensors { tensors: Map<string, TensorOut>; metadata: Record<string, string> }

/** A header larger than this is not a real header but a corrupt length field. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const isDtype = (s: string): s is Dtype => Object.hasOwn(DTYPE_SIZES, s);
const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
const fmtShape = (s: readonly number[]): string => `[${s.join(', ')}]`;

// Typed arrays are in the platform's byte order; the format is little-endian.
if (endianness() !== 'LE') throw new Error('safetensors: big-endian platforms are not supported');

/** Serialises tensors (sorted by name) with an optional `__metadata__` map. */
export function encodeSafetensors(tensors: Record<string, TensorIn>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const names = Object.keys(tensors).sort();
  let offset = 0;
  for (const name of names) {
    const { dtype, shape, data } = tensors[name];
    if (name === '__metadata__') throw new Error('safetensors: "__metadata__" is reserved and cannot name a tensor');
    if (!isDtype(dtype)) throw new Error(`safetensors: tensor ${name}: unknown dtype ${String(dtype)}`);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`safetensors: tensor ${name}: bad shape ${fmtShape(shape)}`);
    const size = product(shape) * DTYPE_SIZES[dtype];
    if (data.byteLength !== size) {
      throw new Error(`safetensors: tensor ${name}: ${dtype} ${fmtShape(shape)} needs ${size} bytes, data has ${data.byteLength}`);
    }
    header[name] = { dtype, shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  // Pad with spaces so the data starts 8-byte aligned, as the reference implementation does.
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = Buffer.allocUnsafe(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  let at = 8 + json.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

const TensorInfoSchema = z.strictObject({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
});
const MetadataSchema = z.record(z.string(), z.string());

/** Parses and checks a whole safetensors file; tensor bytes are views into `bytes` (no copy). */
export function decodeSafetensors(bytes: Uint8Array, source = 'file'): Safetensors {
  function fail(problem: string): never {
    throw new Error(`${source}: ${problem}`);
  }
  if (bytes.length === 0) fail('empty file');
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes is too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`corrupt: header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit`);
  const headerLen = Number(n);
  if (8 + headerLen > bytes.length) fail(`truncated: header length ${headerLen} runs past the end of the file (${bytes.length} bytes)`);

  let text = '';
  let json: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
    if (!text.startsWith('{')) throw new Error('does not start with "{"');
    json = JSON.parse(text);
  } catch (e) {
    fail(`corrupt: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('corrupt: header is not a JSON object');
  // JSON.parse silently keeps the last of two equal keys; the format forbids them.
  const dup = firstDuplicateKey(text);
  if (dup !== undefined) fail(`corrupt: header names ${JSON.stringify(dup)} twice`);

  const { __metadata__: rawMeta, ...entries } = json as Record<string, unknown>;
  let metadata: Record<string, string> = {};
  if (rawMeta !== undefined) {
    const m = MetadataSchema.safeParse(rawMeta);
    if (!m.success) fail(`corrupt: __metadata__ must map strings to strings (${zodProblem(m.error)})`);
    metadata = m.data;
  }

  const dataLen = bytes.length - 8 - headerLen;
  const data = bytes.subarray(8 + headerLen);
  const tensors = new Map<string, TensorOut>();
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(entries)) {
    const r = TensorInfoSchema.safeParse(raw);
    if (!r.success) fail(`corrupt: tensor ${name}: ${zodProblem(r.error)}`);
    const { dtype, shape, data_offsets: [begin, end] } = r.data;
    if (!isDtype(dtype)) fail(`unknown dtype ${JSON.stringify(dtype)} for tensor ${name}`);
    const d: Dtype = dtype;
    if (end < begin) fail(`corrupt: tensor ${name}: data_offsets [${begin}, ${end}] end before they begin`);
    const need = product(shape) * DTYPE_SIZES[d];
    if (!Number.isSafeInteger(need) || end - begin !== need) {
      fail(`corrupt: tensor ${name}: ${d} ${fmtShape(shape)} needs ${need} bytes, data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    spans.push({ name, begin, end });
    tensors.set(name, { dtype: d, shape, bytes: data.subarray(begin, end) });
  }

  // The tensors must tile the data buffer exactly: no overlaps, no gaps, nothing past the end.
  const covered = spans.reduce((m, s) => Math.max(m, s.end), 0);
  if (covered > dataLen) fail(`truncated: header says ${covered} bytes of tensor data, file has ${dataLen}`);
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev = '';
  for (const s of spans) {
    if (s.begin < at) fail(`corrupt: tensor ${s.name} (bytes ${s.begin}-${s.end}) overlaps tensor ${prev} (ends at ${at})`);
    if (s.begin > at) fail(`corrupt: gap of ${s.begin - at} bytes before tensor ${s.name} at byte ${at} of the data`);
    at = s.end;
    prev = s.name;
  }
  if (at !== dataLen) fail(`corrupt: ${dataLen - at} bytes after the last tensor are not described by the header`);
  return { tensors, metadata };
}

/** Reads and decodes a file; errors name `label` (default: the path). */
export async function readSafetensorsFile(path: string, label = path): Promise<Safetensors> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`${label}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  return decodeSafetensors(bytes, label);
}

/** A typed copy (aligned, owning its memory) of a tensor's values as float32. */
export function toFloat32(t: TensorOut): Float32Array {
  if (t.dtype === 'F32') {
    const out = new Float32Array(t.bytes.length / 4);
    new Uint8Array(out.buffer).set(t.bytes);
    return out;
  }
  return Float32Array.from(toFloat64(t));
}

/** A typed copy of a tensor's values as float64 (64-bit integers beyond 2^53 lose precision). */
export function toFloat64(t: TensorOut): Float64Array {
  const size = DTYPE_SIZES[t.dtype];
  const n = t.bytes.length / size;
  const out = new Float64Array(n);
  const v = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const read = readers[t.dtype];
  for (let i = 0; i < n; i++) out[i] = read(v, i * size);
  return out;
}

const half = (h: number): number => {
  const e = (h >> 10) & 0x1f, m = h & 0x3ff, s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
};
const f8 = (b: number, eBits: number, bias: number, ieeeSpecials: boolean): number => {
  const mBits = 7 - eBits, eMax = (1 << eBits) - 1, mMax = (1 << mBits) - 1;
  const e = (b >> mBits) & eMax, m = b & mMax, s = b & 0x80 ? -1 : 1;
  if (ieeeSpecials && e === eMax) return m ? NaN : s * Infinity; // E5M2 follows IEEE
  if (!ieeeSpecials && e === eMax && m === mMax) return NaN; // E4M3FN: no infinities, one NaN
  if (e === 0) return s * m * 2 ** (1 - bias - mBits);
  return s * (1 + m / (1 << mBits)) * 2 ** (e - bias);
};
const scratch = new DataView(new ArrayBuffer(4));
const readers: Record<Dtype, (v: DataView, o: number) => number> = {
  BOOL: (v, o) => (v.getUint8(o) ? 1 : 0),
  U8: (v, o) => v.getUint8(o),
  I8: (v, o) => v.getInt8(o),
  F8_E4M3: (v, o) => f8(v.getUint8(o), 4, 7, false),
  F8_E5M2: (v, o) => f8(v.getUint8(o), 5, 15, true),
  U16: (v, o) => v.getUint16(o, true),
  I16: (v, o) => v.getInt16(o, true),
  F16: (v, o) => half(v.getUint16(o, true)),
  BF16: (v, o) => (scratch.setUint32(0, v.getUint16(o, true) << 16, true), scratch.getFloat32(0, true)),
  U32: (v, o) => v.getUint32(o, true),
  I32: (v, o) => v.getInt32(o, true),
  F32: (v, o) => v.getFloat32(o, true),
  U64: (v, o) => Number(v.getBigUint64(o, true)),
  I64: (v, o) => Number(v.getBigInt64(o, true)),
  F64: (v, o) => v.getFloat64(o, true),
};

/**
 * Writes a file so that readers see either the old file or the complete new one: write a temp
 * file in the same directory (same file system, so rename is atomic), fsync, rename.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  // Make the rename itself durable; not every platform lets a directory be fsynced.
  await open(dirname(path), 'r').then(async (d) => d.sync().finally(() => d.close())).catch(() => {});
}

function zodProblem(e: z.ZodError): string {
  return e.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

/** The first key that occurs twice in the top-level object of a valid JSON text, if any. */
function firstDuplicateKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      let k = j + 1;
      while (/\s/.test(text[k] ?? '')) k++;
      if (depth === 1 && text[k] === ':') {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
      }
      i = j;
    }
  }
  return undefined;
}
