// What each blob of a run holds, as one contract for the miners that write and read them and the
// orchestrator that checks uploads: every blob is a safetensors file of tensors with fixed names,
// dtypes and shapes (activations and their gradients as the run's wire codecs encode them). The orchestrator checks the header of each reported upload (a few hundred
// bytes, read by range) so a wrong name, dtype, shape or size is refused at once with a clear
// error; values (NaN, Inf) are checked by whoever downloads the blob before using it.

import { createHash } from 'node:crypto';
import { type CodecName, WIRE_DTYPE_BYTES, type WireDtype, payloadTensors, quantizeSymmetric } from './codecs.ts';

export type BlobKind = 'activation' | 'gradient' | 'share' | 'reduced' | 'share_q8' | 'reduced_q8' | 'snapshot' | 'outer_snapshot';

export interface TensorSpec {
  name: string;
  dtype: WireDtype | 'I8';
  shape: number[];
}

const DTYPE_BYTES = { ...WIRE_DTYPE_BYTES, I8: 1 } as const;

/** Elements per int8 block: each block has its own float32 scale (absmax / 127). */
export const Q8_BLOCK = 256;

export interface BlobDims {
  /** Rows (sequences) of a sample, its sequence length and the model width. */
  rows: number;
  seqLen: number;
  dModel: number;
  /** Channels that cross a stage boundary (the bottleneck's, when the model has one; else dModel). */
  width?: number;
  /** The run's codecs for activations (forward) and their gradients (backward); float32 when absent. */
  codecs?: { forward: CodecName; backward: CodecName };
  /** Elements of the slice (share, reduced) or of the whole stage buffer (snapshot). */
  length: number;
}

/** A run's blob dimensions for its model (the preset, with any bottleneck) and `length`. */
export function runBlobDims(
  spec: { rows_per_sample: number; compression: { forward: CodecName; backward: CodecName } },
  model: { seq_len: number; d_model: number; bottleneck_dim?: number },
  length = 0,
): BlobDims {
  return { rows: spec.rows_per_sample, seqLen: model.seq_len, dModel: model.d_model, width: model.bottleneck_dim ?? model.d_model, codecs: spec.compression, length };
}

/** The tensors a blob of `kind` holds, in name order. */
export function blobTensors(kind: BlobKind, d: BlobDims): TensorSpec[] {
  const f32 = (name: string, shape: number[]): TensorSpec => ({ name, dtype: 'F32', shape });
  const i8 = (name: string, shape: number[]): TensorSpec => ({ name, dtype: 'I8', shape });
  switch (kind) {
    case 'activation':
    case 'gradient':
      // One row per token: [rows·seqLen, width] through the codec, its tensors named after the kind.
      return payloadTensors(d.codecs?.[kind === 'activation' ? 'forward' : 'backward'] ?? 'f32', d.rows * d.seqLen, d.width ?? d.dModel).map((t) => ({ ...t, name: wireTensorName(kind, t.name) }));
    case 'share':
    case 'reduced':
      return [f32('grad', [d.length])];
    case 'share_q8':
    case 'reduced_q8':
      // int8 values in blocks of Q8_BLOCK, each with a float32 scale: a quarter of the bytes.
      return [i8('q', [d.length]), f32('scale', [Math.ceil(d.length / Q8_BLOCK)])];
    case 'snapshot':
      return [f32('m', [d.length]), f32('params', [d.length]), f32('v', [d.length])];
    case 'outer_snapshot':
      // Local mode: the merged weights, the outer momentum, and the storing replica's inner moments.
      return [f32('m', [d.length]), f32('params', [d.length]), f32('u', [d.length]), f32('v', [d.length])];
  }
}

/** A codec's tensor in an activation or gradient blob: `x` is named after the kind, the others `kind.name`. */
export const wireTensorName = (kind: 'activation' | 'gradient', codecTensor: string): string => (codecTensor === 'x' ? kind : `${kind}.${codecTensor}`);

/** Exact size in bytes of a well-formed blob with these tensors and a header of `headerBytes`. */
export const blobBytes = (tensors: TensorSpec[], headerBytes: number): number =>
  8 + headerBytes + tensors.reduce((n, t) => n + DTYPE_BYTES[t.dtype] * t.shape.reduce((a, b) => a * b, 1), 0);

/** A header longer than this is not one we wrote. */
export const MAX_BLOB_HEADER_BYTES = 64 * 1024;

/**
 * Checks a safetensors header (`head`: the blob's first bytes, at least 8 + header length) against
 * the expected tensors and the blob's total size. Returns a one-line problem, or null when it fits.
 */
export function checkBlobHeader(head: Uint8Array, totalBytes: number, expected: TensorSpec[]): string | null {
  if (head.length < 8) return `${totalBytes} bytes is too short for a safetensors file`;
  const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_BLOB_HEADER_BYTES)) return `header length ${n} is over ${MAX_BLOB_HEADER_BYTES} bytes: not a blob of this run`;
  const len = Number(n);
  if (head.length < 8 + len) return `the header (${len} bytes) runs past the end of the blob`;
  let header: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, 8 + len)));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'the header is not a JSON object';
    header = parsed as Record<string, unknown>;
  } catch (e) {
    return `the header is not valid JSON (${(e as Error).message.slice(0, 100)})`;
  }
  const names = Object.keys(header).filter((k) => k !== '__metadata__').sort();
  const want = expected.map((t) => t.name).sort();
  if (names.join(',') !== want.join(',')) return `expected tensors [${want.join(', ')}], the blob has [${names.slice(0, 8).join(', ')}]`;
  let offset = 0;
  for (const t of [...expected].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const e = header[t.name] as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e?.dtype !== t.dtype) return `tensor ${t.name}: expected dtype ${t.dtype}, got ${JSON.stringify(e?.dtype)}`;
    if (!Array.isArray(e.shape) || e.shape.join(',') !== t.shape.join(',')) return `tensor ${t.name}: expected shape [${t.shape.join(', ')}], got ${JSON.stringify(e.shape)}`;
    const size = DTYPE_BYTES[t.dtype] * t.shape.reduce((a, b) => a * b, 1);
    if (!Array.isArray(e.data_offsets) || e.data_offsets[0] !== offset || e.data_offsets[1] !== offset + size) {
      return `tensor ${t.name}: data_offsets ${JSON.stringify(e.data_offsets)} do not tile the data (expected [${offset}, ${offset + size}])`;
    }
    offset += size;
  }
  const expectedBytes = blobBytes(expected, len);
  if (totalBytes !== expectedBytes) return `the blob has ${totalBytes} bytes; its header describes ${expectedBytes}`;
  return null;
}

/**
 * SHA-256 (hex) of a float32 tensor's bytes as stored (little-endian): what two reducers of one
 * slice must agree on, and what an applier checks a downloaded copy against.
 */
export function tensorDigest(a: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
}

/** tensorDigest of a single-tensor blob's data (everything after its header), without decoding it. */
export function blobDataDigest(blob: Uint8Array): string | null {
  if (blob.length < 8) return null;
  const n = new DataView(blob.buffer, blob.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(blob.length - 8)) return null;
  return createHash('sha256').update(blob.subarray(8 + Number(n))).digest('hex');
}

/**
 * SHA-256 (hex) of a stage's whole state: weights, AdamW moments and the step count. Replicas of a
 * stage in exact mode hold bit-identical states, so this is what they report after each step.
 */
export function stateDigest(params: Float32Array, m: Float32Array, v: Float32Array, step: number): string {
  const h = createHash('sha256');
  for (const a of [params, m, v]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const tail = new Uint8Array(8);
  new DataView(tail.buffer).setBigUint64(0, BigInt(step), true);
  return h.update(tail).digest('hex');
}

/** Whether a run's merges move int8 blobs (local mode with `local.quantize: "int8"`). */
export function quantizedMerge(spec: { mode: string; local: { quantize: string } }): boolean {
  return spec.mode === 'local' && spec.local.quantize === 'int8';
}

/** Blocks of Q8_BLOCK values as int8 with a float32 scale each (absmax / 127), rounding to nearest. */
export function quantizeInt8(x: Float32Array): { q: Int8Array; scale: Float32Array } {
  const q = new Int8Array(x.length);
  return { q, scale: quantizeSymmetric(x, Q8_BLOCK, 127, (i, v) => (q[i] = v)) };
}

/** The float32 values int8 blocks stand for. */
export function dequantizeInt8(q: ArrayLike<number>, scale: ArrayLike<number>): Float32Array {
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i] * scale[Math.floor(i / Q8_BLOCK)];
  return out;
}
