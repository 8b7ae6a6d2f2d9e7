// Reverse-mode automatic differentiation over a Graph. The gradient rules are one table, one rule
// per operator; each rule receives the forward node and the gradients of its outputs and emits
// the gradients of its inputs as new nodes of the same graph.
import { type Graph, type Node, type Shape, type Value, numel, sameShape } from './graph.ts';

/** Returns one gradient per input of the node (undefined where the input is not differentiable). */
export type GradRule = (g: Graph, node: Node, dy: (Value | undefined)[]) => (Value | undefined)[];

/** Sums a broadcast gradient back down to the shape of the operand it was broadcast from. */
export function unbroadcast(g: Graph, grad: Value, shape: Shape): Value {
  if (sameShape(grad.shape, shape)) return grad;
  const lead = grad.shape.length - shape.length;
  const axes: number[] = [];
  grad.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  return g.reshape(axes.length ? g.reduceSum(grad, axes, true) : grad, shape);
}

const zerosLike = (g: Graph, x: Value): Value => g.expand(g.scalar(0), x.shape);
/** Swaps the last two axes. */
const swapLast = (g: Graph, x: Value): Value => {
  const r = x.shape.length;
  return g.transpose(x, [...Array(r - 2).keys(), r - 1, r - 2]);
};
/** Gradient of a reduction with keepdims: broadcast back over the reduced axes. */
const spread = (g: Graph, dy: Value, x: Value, axes: readonly number[], factor: number): Value => {
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const d = g.reshape(dy, kept);
  return g.expand(factor === 1 ? d : g.scale(d, factor), x.shape);
};

export const gradRules: Record<string, GradRule> = {
  Identity: (_g, _n, [dy]) => [dy],
  Add: (g, { inputs: [a, b] }, [dy]) => [unbroadcast(g, dy!, a.shape), unbroadcast(g, dy!, b.shape)],
  Sub: (g, { inputs: [a, b] }, [dy]) => [unbroadcast(g, dy!, a.shape), unbroadcast(g, g.neg(dy!), b.shape)],
  Mul: (g, { inputs: [a, b] }, [dy]) => [unbroadcast(g, g.mul(dy!, b), a.shape), unbroadcast(g, g.mul(dy!, a), b.shape)],
  Div: (g, { inputs: [a, b], outputs: [y] }, [dy]) => {
    const da = g.div(dy!, b);
    return [unbroadcast(g, da, a.shape), unbroadcast(g, g.neg(g.mul(da, y)), b.shape)];
  },
  Neg: (g, _n, [dy]) => [g.neg(dy!)],
  Sqrt: (g, { outputs: [y] }, [dy]) => [g.div(g.scale(dy!, 0.5), y)],
  Reciprocal: (g, { outputs: [y] }, [dy]) => [g.neg(g.mul(dy!, g.mul(y, y)))],
  Exp: (g, { outputs: [y] }, [dy]) => [g.mul(dy!, y)],
  Sigmoid: (g, { outputs: [y] }, [dy]) => [g.mul(dy!, g.mul(y, g.sub(g.scalar(1), y)))],
  MatMul: (g, { inputs: [a, b] }, [dy]) => {
    const da = g.matmul(dy!, swapLast(g, b));
    if (b.shape.length === a.shape.length) return [da, g.matmul(swapLast(g, a), dy!)];
    // b was shared across the batch: flatten the batch into rows and sum over it in one Gemm.
    const [k, n] = b.shape;
    return [da, g.gemm(g.reshape(a, [numel(a.shape) / k, k]), g.reshape(dy!, [numel(dy!.shape) / n, n]), { transA: true })];
  },
  Gemm: (g, { inputs: [a, b], attrs }, [dy]) => {
    const ta = attrs.transA === 1;
    const tb = attrs.transB === 1;
    const d = dy!;
    if (!ta && !tb) return [g.gemm(d, b, { transB: true }), g.gemm(a, d, { transA: true })];
    if (!ta && tb) return [g.gemm(d, b), g.gemm(d, a, { transA: true })];
    if (ta && !tb) return [g.gemm(b, d, { transB: true }), g.gemm(a, d)];
    return [g.gemm(b, d, { transA: true, transB: true }), g.gemm(d, a, { transA: true, transB: true })];
  },
  Reshape: (g, { inputs: [x] }, [dy]) => [g.reshape(dy!, x.shape), undefined],
  Transpose: (g, { attrs }, [dy]) => {
    const perm = attrs.perm as number[];
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [g.transpose(dy!, inv)];
  },
  ReduceSum: (g, { inputs: [x, axes] }, [dy]) => [spread(g, dy!, x, constInts(g, axes), 1), undefined],
  ReduceMean: (g, { inputs: [x], attrs }, [dy]) => {
    const axes = attrs.axes as number[];
    return [spread(g, dy!, x, axes, 1 / axes.reduce((s, a) => s * x.shape[a], 1))];
  },
  Softmax: (g, { outputs: [y] }, [dy]) => {
    const dot = g.reduceSum(g.mul(dy!, y), [-1], true);
    return [g.mul(y, g.sub(dy!, dot))];
  },
  Gather: (g, { inputs: [table, idx] }, [dy]) => [g.scatterAddRows(zerosLike(g, table), idx, dy!), undefined],
  SoftmaxCrossEntropyLoss: (g, { inputs: [logits, targets], outputs: [, logProb] }, [dy]) => {
    // softmax − onehot(target), written as one scatter of −1 into the probabilities.
    const n = logits.shape[0];
    const diff = g.scatterAddColumns(g.exp(logProb), targets, g.expand(g.scalar(-1), [n, 1]));
    return [g.mul(diff, g.mul(dy!, g.scalar(1 / n))), undefined];
  },
  Slice: (g, { inputs: [x, starts, ends, axes] }, [dy]) => {
    void ends;
    const a = constInt(g, axes);
    const s = constInt(g, starts);
    return [g.pad(dy!, a, s, x.shape[a] - s - dy!.shape[a]), undefined, undefined, undefined];
  },
  Concat: (g, { inputs, attrs }, [dy]) => {
    const axis = attrs.axis as number;
    let at = 0;
    return inputs.map((x) => g.slice(dy!, axis, at, (at += x.shape[axis])));
  },
  Pad: (g, { inputs: [x, pads] }, [dy]) => {
    const p = constInts(g, pads);
    const axis = x.shape.findIndex((d, i) => d !== dy!.shape[i]);
    return [axis < 0 ? dy : g.slice(dy!, axis, p[axis], p[axis] + x.shape[axis]), undefined];
  },
  Expand: (g, { inputs: [x] }, [dy]) => [unbroadcast(g, dy!, x.shape), undefined],
  Cast: (g, { inputs: [x] }, [dy]) => [g.cast(dy!, x.dtype)],
};

function constInts(g: Graph, v: Value): number[] {
  const c = g.constants.find((k) => k.value === v);
  if (!c) throw new Error('expected a constant operand');
  return Array.from(c.data as BigInt64Array, Number);
}
const constInt = (g: Graph, v: Value): number => constInts(g, v)[0];

const isFloat = (v: Value): boolean => v.dtype === 'float32' || v.dtype === 'float64';

/**
 * Appends the backward pass to the graph: given (value, gradient) seeds, returns the gradient of
 * each value in wrt (zeros where a value does not influence the seeds).
 */
export function gradients(g: Graph, seeds: [Value, Value][], wrt: Value[]): Value[] {
  const forward = g.nodes.slice();
  // Values that depend on some wrt value: only those need gradients.
  const live = new Set<number>(wrt.map((v) => v.id));
  for (const n of forward) if (n.inputs.some((v) => live.has(v.id))) for (const o of n.outputs) live.add(o.id);

  const pending = new Map<number, Value[]>();
  const accumulate = (v: Value, d: Value): void => {
    if (!sameShape(v.shape, d.shape)) throw new Error(`gradient of shape [${d.shape}] for a value of shape [${v.shape}]`);
    const list = pending.get(v.id);
    if (list) list.push(d);
    else pending.set(v.id, [d]);
  };
  const take = (v: Value): Value | undefined => {
    const list = pending.get(v.id);
    if (!list) return undefined;
    const sum = list.reduce((a, b) => g.add(a, b));
    pending.set(v.id, [sum]);
    return sum;
  };
  for (const [v, d] of seeds) accumulate(v, d);

  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i];
    if (!node.inputs.some((v) => live.has(v.id) && isFloat(v))) continue;
    const dy = node.outputs.map(take);
    if (dy.every((d) => d === undefined)) continue;
    const rule = gradRules[node.op];
    if (!rule) throw new Error(`no gradient rule for ${node.op}`);
    const dx = rule(g, node, dy);
    node.inputs.forEach((x, j) => {
      const d = dx[j];
      if (d && live.has(x.id) && isFloat(x)) accumulate(x, d);
    });
  }
  return wrt.map((v) => take(v) ?? zerosLike(g, v));
}
