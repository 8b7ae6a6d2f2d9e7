// Tensors between miners: what a miner uploads and how it reads what others uploaded. Every blob
// read is checked in full before use (a safetensors file with exactly the expected float32
// tensors, all values finite); a blob that fails is refused with an error naming its key, which
// the miner reports so that the orchestrator re-issues the work that made it.
import { type BlobDims, type BlobKind, blobTensors, wireTensorName } from '../../orchestrator-client/blobs.ts';
import { type CodecName, CodecError, type Payload, type WireDtype, decode, encode, firstNonFinite } from '../../orchestrator-client/codecs.ts';
import { blobSha256 } from '../../orchestrator-client/transfer.ts';
import { decodeSafetensors, encodeSafetensors, toFloat32 } from '../checkpoint/safetensors.ts';

/** Another miner's upload that cannot be used. */
export class BadBlobError extends Error {
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`${key}: ${problem}`);
    this.name = 'BadBlobError';
  }
}

/** A blob whose bytes are not the ones accepted (their SHA-256 is `found`): it changed after its upload was accepted. */
export class ChangedBlobError extends BadBlobError {
  constructor(
    key: string,
    readonly found: string,
    accepted: string,
  ) {
    super(key, `its content (SHA-256 ${found.slice(0, 12)}…) is not what was accepted (${accepted.slice(0, 12)}…)`);
    this.name = 'ChangedBlobError';
  }
}

/** Checks downloaded bytes against the digest accepted for them (ChangedBlobError when they differ). */
export function checkAccepted(key: string, bytes: Uint8Array, accepted: string): Uint8Array {
  const found = blobSha256(bytes);
  if (found !== accepted) throw new ChangedBlobError(key, found, accepted);
  return bytes;
}

/** A blob of `kind`: the tensors in `values` by name, shaped as the run's dimensions say. */
export function encodeBlob(kind: BlobKind, dims: BlobDims, values: Record<string, Float32Array | Int8Array>, metadata?: Record<string, string>): Uint8Array {
  const tensors = Object.fromEntries(blobTensors(kind, dims).map((t) => [t.name, { dtype: t.dtype, shape: t.shape, data: values[t.name] }]));
  return encodeSafetensors(tensors, metadata);
}

/** Decodes and checks a downloaded blob; returns its tensors (copies) by name and its metadata. */
export function decodeBlob(key: string, bytes: Uint8Array, kind: BlobKind, dims: BlobDims): { tensors: Map<string, Float32Array>; metadata: Record<string, string> } {
  let file;
  try {
    file = decodeSafetensors(bytes, key);
  } catch (e) {
    throw new BadBlobError(key, (e as Error).message.replace(`${key}: `, ''));
  }
  const out = new Map<string, Float32Array>();
  const expected = blobTensors(kind, dims);
  const names = [...file.tensors.keys()].sort();
  if (names.join(',') !== expected.map((t) => t.name).join(',')) throw new BadBlobError(key, `expected tensors [${expected.map((t) => t.name).join(', ')}], got [${names.slice(0, 8).join(', ')}]`);
  for (const t of expected) {
    const got = file.tensors.get(t.name)!;
    if (got.dtype !== t.dtype) throw new BadBlobError(key, `tensor ${t.name} is ${got.dtype}, expected ${t.dtype}`);
    if (got.shape.join(',') !== t.shape.join(',')) throw new BadBlobError(key, `tensor ${t.name} has shape [${got.shape.join(', ')}], expected [${t.shape.join(', ')}]`);
    const values = toFloat32(got);
    const bad = firstNonFinite(values);
    if (bad >= 0) throw new BadBlobError(key, `tensor ${t.name} holds ${values[bad]} at element ${bad}: values must be finite`);
    out.set(t.name, values);
  }
  return { tensors: out, metadata: file.metadata };
}

/** An activation or gradient blob: `x` ([rows·seqLen, width]) through the run's codec for `kind`. */
export function encodeWire(kind: 'activation' | 'gradient', dims: BlobDims, x: Float32Array): Uint8Array {
  const p = encode(wireCodec(kind, dims), x, dims.rows * dims.seqLen, dims.width ?? dims.dModel);
  return encodeSafetensors(Object.fromEntries(Object.entries(p).map(([name, t]) => [wireTensorName(kind, name), { dtype: t.dtype, shape: t.shape, data: t.data }])));
}

/**
 * Decodes another miner's activation or gradient blob: the header must be exactly what the codec
 * sends and every value (scales and offsets included) must be usable, or BadBlobError.
 */
export function decodeWire(key: string, bytes: Uint8Array, kind: 'activation' | 'gradient', dims: BlobDims): Float32Array {
  let file;
  try {
    file = decodeSafetensors(bytes, key);
  } catch (e) {
    throw new BadBlobError(key, (e as Error).message.replace(`${key}: `, ''));
  }
  const codec = wireCodec(kind, dims);
  const payload: Payload = {};
  for (const [fileName, t] of file.tensors) {
    const name = fileName === kind ? 'x' : fileName.startsWith(`${kind}.`) ? fileName.slice(kind.length + 1) : null;
    if (name === null) throw new BadBlobError(key, `tensor ${fileName} does not belong in a ${kind} blob`);
    // Copied: a tensor's bytes inside the file need not be aligned for its element type.
    const raw = new Uint8Array(t.bytes);
    const data = t.dtype === 'F32' ? new Float32Array(raw.buffer) : t.dtype === 'F16' || t.dtype === 'BF16' ? new Uint16Array(raw.buffer) : t.dtype === 'U8' ? raw : null;
    if (!data) throw new BadBlobError(key, `tensor ${name} has dtype ${t.dtype}, which no ${codec} payload holds`);
    payload[name] = { dtype: t.dtype as WireDtype, shape: t.shape, data };
  }
  try {
    return decode(codec, payload, dims.rows * dims.seqLen, dims.width ?? dims.dModel);
  } catch (e) {
    if (e instanceof CodecError) throw new BadBlobError(key, e.message);
    throw e;
  }
}

const wireCodec = (kind: 'activation' | 'gradient', dims: BlobDims): CodecName => dims.codecs?.[kind === 'activation' ? 'forward' : 'backward'] ?? 'f32';

/**
 * Bytes a sample sends across one stage boundary, per token: its activation blob forward plus its
 * gradient blob backward, headers included, exactly as encodeWire writes them.
 */
export function boundaryBytesPerToken(dims: BlobDims): number {
  const values = new Float32Array(dims.rows * dims.seqLen * (dims.width ?? dims.dModel));
  return (encodeWire('activation', dims, values).length + encodeWire('gradient', dims, values).length) / (dims.rows * dims.seqLen);
}
