// A small typed graph builder. It records a computation as ONNX-style nodes with static
// shapes and dtypes inferred at build time, so shape errors surface where the model is written,
// not deep inside ONNX Runtime. Every op the engine differentiates lives here; its gradient rule
// lives in autodiff.ts.

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool';
export type FloatType = 'float32' | 'float64';
export type Shape = readonly number[];

export interface Value {
  readonly id: number;
  readonly dtype: DType;
  readonly shape: Shape;
  /** Set for graph inputs and outputs; internal values get a generated name. */
  name?: string;
}

export type Attr = number | string | number[] | { float: number };

export interface Node {
  readonly op: string;
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  readonly attrs: Readonly<Record<string, Attr>>;
}

export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export interface Constant {
  readonly value: Value;
  readonly data: TypedData;
}

export const numel = (shape: Shape): number => shape.reduce((a, b) => a * b, 1);
export const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
const fmt = (s: Shape): string => `[${s.join(', ')}]`;

/** Numpy-style broadcast of two shapes; throws on a mismatch. */
export function broadcastShapes(a: Shape, b: Shape, op: string): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`${op}: shapes ${fmt(a)} and ${fmt(b)} do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly constants: Constant[] = [];
  private nextId = 0;
  private readonly scalarCache = new Map<string, Value>();

  /** floatType is the dtype of activations and parameters (float64 for gradient checks). */
  constructor(readonly floatType: FloatType = 'float32') {}

  private value(dtype: DType, shape: Shape, name?: string): Value {
    return { id: this.nextId++, dtype, shape: [...shape], name };
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    if (this.inputs.some((v) => v.name === name)) throw new Error(`duplicate graph input ${name}`);
    const v = this.value(dtype, shape, name);
    this.inputs.push(v);
    return v;
  }

  /** Marks a value as a graph output under a name (an Identity is inserted where needed). */
  output(name: string, v: Value): Value {
    const out = v.name === undefined ? v : this.node('Identity', [v], {}, [[v.dtype, v.shape]])[0];
    out.name = name;
    this.outputs.push(out);
    return out;
  }

  constant(data: TypedData, dtype: DType, shape: Shape): Value {
    if (data.length !== numel(shape)) throw new Error(`constant: ${data.length} values for shape ${fmt(shape)}`);
    const v = this.value(dtype, shape);
    this.constants.push({ value: v, data });
    return v;
  }

  /** A float scalar constant of the graph's float type (shared per value). */
  scalar(x: number): Value {
    const key = `f${x}`;
    let v = this.scalarCache.get(key);
    if (!v) {
      v = this.constant(this.floatType === 'float32' ? new Float32Array([x]) : new Float64Array([x]), this.floatType, []);
      this.scalarCache.set(key, v);
    }
    return v;
  }

  /** An int64 vector constant (shapes, axes, slice bounds). */
  ints(xs: readonly number[]): Value {
    const key = `i${xs.join(',')}`;
    let v = this.scalarCache.get(key);
    if (!v) {
      v = this.constant(BigInt64Array.from(xs, (x) => BigInt(x)), 'int64', [xs.length]);
      this.scalarCache.set(key, v);
    }
    return v;
  }

  /** Records a node whose output types the caller has inferred. */
  node(op: string, inputs: Value[], attrs: Record<string, Attr>, outs: [DType, Shape][]): Value[] {
    const outputs = outs.map(([dt, sh]) => this.value(dt, sh));
    this.nodes.push({ op, inputs, outputs, attrs });
    return outputs;
  }

  private unary(op: string, x: Value): Value {
    this.requireFloat(op, x);
    return this.node(op, [x], {}, [[x.dtype, x.shape]])[0];
  }

  private binary(op: string, a: Value, b: Value): Value {
    if (a.dtype !== b.dtype) throw new Error(`${op}: dtypes ${a.dtype} and ${b.dtype} differ`);
    return this.node(op, [a, b], {}, [[a.dtype, broadcastShapes(a.shape, b.shape, op)]])[0];
  }

  private requireFloat(op: string, x: Value): void {
    if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new Error(`${op}: expected a float tensor, got ${x.dtype}`);
  }

  // Elementwise
  add = (a: Value, b: Value): Value => this.binary('Add', a, b);
  sub = (a: Value, b: Value): Value => this.binary('Sub', a, b);
  mul = (a: Value, b: Value): Value => this.binary('Mul', a, b);
  div = (a: Value, b: Value): Value => this.binary('Div', a, b);
  /** Elementwise minimum (no gradient rule: used on scalars outside differentiated paths). */
  minimum = (a: Value, b: Value): Value => this.binary('Min', a, b);
  neg = (x: Value): Value => this.unary('Neg', x);
  sqrt = (x: Value): Value => this.unary('Sqrt', x);
  reciprocal = (x: Value): Value => this.unary('Reciprocal', x);
  exp = (x: Value): Value => this.unary('Exp', x);
  sigmoid = (x: Value): Value => this.unary('Sigmoid', x);
  /** x * sigmoid(x), written out so that its parts are differentiated by their own rules. */
  silu = (x: Value): Value => this.mul(x, this.sigmoid(x));
  /** tanh(x) = 2·sigmoid(2x) − 1, written out likewise. */
  tanh = (x: Value): Value => this.sub(this.mul(this.scalar(2), this.sigmoid(this.mul(x, this.scalar(2)))), this.scalar(1));
  /** Multiplication by a constant scalar. */
  scale = (x: Value, s: number): Value => this.mul(x, this.scalar(s));

  /** Batched matrix product: a [..., m, k] @ b [..., k, n] with equal batch dims, or b 2-D. */
  matmul(a: Value, b: Value): Value {
    this.requireFloat('MatMul', a);
    const r = a.shape.length;
    if (r < 2 || (b.shape.length !== r && b.shape.length !== 2)) throw new Error(`MatMul: unsupported ranks ${fmt(a.shape)} @ ${fmt(b.shape)}`);
    if (b.shape.length === r && !sameShape(a.shape.slice(0, -2), b.shape.slice(0, -2))) throw new Error(`MatMul: batch dims of ${fmt(a.shape)} and ${fmt(b.shape)} differ`);
    const [m, k] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (k !== k2) throw new Error(`MatMul: inner dims of ${fmt(a.shape)} and ${fmt(b.shape)} differ`);
    if (a.dtype !== b.dtype) throw new Error(`MatMul: dtypes ${a.dtype} and ${b.dtype} differ`);
    return this.node('MatMul', [a, b], {}, [[a.dtype, [...a.shape.slice(0, -2), m, n]]])[0];
  }

  /** 2-D product op(a) @ op(b), op = transpose where asked. Linear layers use transB with [out, in] weights. */
  gemm(a: Value, b: Value, { transA = false, transB = false } = {}): Value {
    this.requireFloat('Gemm', a);
    if (a.shape.length !== 2 || b.shape.length !== 2) throw new Error(`Gemm: expected 2-D operands, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
    const [m, k] = transA ? [a.shape[1], a.shape[0]] : a.shape;
    const [k2, n] = transB ? [b.shape[1], b.shape[0]] : b.shape;
    if (k !== k2) throw new Error(`Gemm: inner dims differ: ${fmt(a.shape)}${transA ? 'ᵀ' : ''} @ ${fmt(b.shape)}${transB ? 'ᵀ' : ''}`);
    if (a.dtype !== b.dtype) throw new Error(`Gemm: dtypes ${a.dtype} and ${b.dtype} differ`);
    return this.node('Gemm', [a, b], { transA: transA ? 1 : 0, transB: transB ? 1 : 0 }, [[a.dtype, [m, n]]])[0];
  }

  reshape(x: Value, shape: Shape): Value {
    if (numel(shape) !== numel(x.shape)) throw new Error(`Reshape: cannot reshape ${fmt(x.shape)} to ${fmt(shape)}`);
    if (sameShape(shape, x.shape)) return x;
    return this.node('Reshape', [x, this.ints(shape)], {}, [[x.dtype, shape]])[0];
  }

  transpose(x: Value, perm: number[]): Value {
    if (perm.length !== x.shape.length || [...perm].sort().some((p, i) => p !== i)) throw new Error(`Transpose: bad perm [${perm}] for ${fmt(x.shape)}`);
    return this.node('Transpose', [x], { perm }, [[x.dtype, perm.map((p) => x.shape[p])]])[0];
  }

  private reduce(op: 'ReduceSum' | 'ReduceMean', x: Value, axes: number[], keepdims: boolean): Value {
    const r = x.shape.length;
    const ax = axes.map((a) => normAxis(a, r));
    if (ax.some((a) => a < 0 || a >= r)) throw new Error(`${op}: axes [${axes}] out of range for ${fmt(x.shape)}`);
    const shape = keepdims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
    // opset 17: ReduceSum takes axes as an input, ReduceMean as an attribute.
    const inputs = op === 'ReduceSum' ? [x, this.ints(ax)] : [x];
    const attrs: Record<string, Attr> = op === 'ReduceSum' ? { keepdims: keepdims ? 1 : 0 } : { axes: ax, keepdims: keepdims ? 1 : 0 };
    return this.node(op, inputs, attrs, [[x.dtype, shape]])[0];
  }
  reduceSum = (x: Value, axes: number[], keepdims = true): Value => this.reduce('ReduceSum', x, axes, keepdims);
  /** Σ x² over every element, as a scalar: one pass, no squared copy (no gradient rule: gradient norms only). */
  sumSquares = (x: Value): Value => {
    this.requireFloat('ReduceSumSquare', x);
    return this.node('ReduceSumSquare', [x], { keepdims: 0 }, [[x.dtype, []]])[0];
  };
  /** Elementwise sum of any number of same-shaped values (no gradient rule). */
  sum = (xs: Value[]): Value => {
    if (xs.length === 1) return xs[0];
    if (xs.some((x) => x.dtype !== xs[0].dtype || !sameShape(x.shape, xs[0].shape))) throw new Error('Sum: operands differ in dtype or shape');
    return this.node('Sum', xs, {}, [[xs[0].dtype, xs[0].shape]])[0];
  };
  reduceMean = (x: Value, axes: number[], keepdims = true): Value => this.reduce('ReduceMean', x, axes, keepdims);

  /** Softmax over the last axis. */
  softmax(x: Value): Value {
    this.requireFloat('Softmax', x);
    return this.node('Softmax', [x], { axis: -1 }, [[x.dtype, x.shape]])[0];
  }

  /** Rows of a table: table [V, d], indices int64 [...] → [..., d]. */
  gather(table: Value, indices: Value): Value {
    if (indices.dtype !== 'int64') throw new Error(`Gather: indices must be int64, got ${indices.dtype}`);
    return this.node('Gather', [table, indices], { axis: 0 }, [[table.dtype, [...indices.shape, ...table.shape.slice(1)]]])[0];
  }

  /** Adds rows of updates into a copy of data at the given row indices (duplicates accumulate). */
  scatterAddRows(data: Value, indices: Value, updates: Value): Value {
    const idx = this.reshape(indices, [...indices.shape, 1]);
    return this.node('ScatterND', [data, idx, updates], { reduction: 'add' }, [[data.dtype, data.shape]])[0];
  }

  /** Mean cross-entropy of logits [N, C] against int64 targets [N]; also returns log-probabilities. */
  softmaxCrossEntropy(logits: Value, targets: Value): { loss: Value; logProb: Value } {
    if (logits.shape.length !== 2 || targets.shape.length !== 1 || targets.shape[0] !== logits.shape[0]) {
      throw new Error(`SoftmaxCrossEntropyLoss: logits ${fmt(logits.shape)} and targets ${fmt(targets.shape)} do not fit`);
    }
    if (targets.dtype !== 'int64') throw new Error(`SoftmaxCrossEntropyLoss: targets must be int64, got ${targets.dtype}`);
    const [loss, logProb] = this.node('SoftmaxCrossEntropyLoss', [logits, targets], { reduction: 'mean' }, [
      [logits.dtype, []],
      [logits.dtype, logits.shape],
    ]);
    return { loss, logProb };
  }

  /** Adds updates [N, 1] into a copy of data [N, C] at column indices [N] (one per row). */
  scatterAddColumns(data: Value, columns: Value, updates: Value): Value {
    const idx = this.reshape(columns, [columns.shape[0], 1]);
    return this.node('ScatterElements', [data, idx, updates], { axis: 1, reduction: 'add' }, [[data.dtype, data.shape]])[0];
  }

  /** x[start:end] along one axis. */
  slice(x: Value, axis: number, start: number, end: number): Value {
    const a = normAxis(axis, x.shape.length);
    if (start < 0 || end > x.shape[a] || start >= end) throw new Error(`Slice: [${start}, ${end}) out of range for axis ${a} of ${fmt(x.shape)}`);
    if (start === 0 && end === x.shape[a]) return x;
    const shape = x.shape.map((d, i) => (i === a ? end - start : d));
    return this.node('Slice', [x, this.ints([start]), this.ints([end]), this.ints([a])], {}, [[x.dtype, shape]])[0];
  }

  concat(xs: Value[], axis: number): Value {
    if (xs.length === 1) return xs[0];
    const r = xs[0].shape.length;
    const a = normAxis(axis, r);
    for (const x of xs) {
      if (x.dtype !== xs[0].dtype || x.shape.length !== r || x.shape.some((d, i) => i !== a && d !== xs[0].shape[i])) {
        throw new Error(`Concat: ${fmt(x.shape)} does not fit ${fmt(xs[0].shape)} on axis ${a}`);
      }
    }
    const shape = xs[0].shape.map((d, i) => (i === a ? xs.reduce((s, x) => s + x.shape[a], 0) : d));
    return this.node('Concat', xs, { axis: a }, [[xs[0].dtype, shape]])[0];
  }

  /** Zero-pads along one axis (the gradient of Slice). */
  pad(x: Value, axis: number, before: number, after: number): Value {
    const r = x.shape.length;
    const a = normAxis(axis, r);
    const pads = new Array<number>(2 * r).fill(0);
    pads[a] = before;
    pads[r + a] = after;
    const shape = x.shape.map((d, i) => (i === a ? d + before + after : d));
    return this.node('Pad', [x, this.ints(pads)], { mode: 'constant' }, [[x.dtype, shape]])[0];
  }

  expand(x: Value, shape: Shape): Value {
    const out = broadcastShapes(x.shape, shape, 'Expand');
    if (sameShape(out, x.shape)) return x;
    return this.node('Expand', [x, this.ints(shape)], {}, [[x.dtype, out]])[0];
  }

  cast(x: Value, to: DType): Value {
    if (x.dtype === to) return x;
    return this.node('Cast', [x], { to: DTYPE_CODE[to] }, [[to, x.shape]])[0];
  }
}

/** ONNX TensorProto.DataType codes. */
export const DTYPE_CODE: Record<DType, number> = { float32: 1, int32: 6, int64: 7, bool: 9, float64: 11 };
