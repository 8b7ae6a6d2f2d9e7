import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradRules } from '../../../worker/engine/autodiff.ts';
import { type Graph, type Value } from '../../../worker/engine/graph.ts';
import { type GradCheckInput, gradCheck } from '../../helpers/gradcheck.ts';

const TOL = 1e-6;
type Case = { inputs: GradCheckInput[]; build: (g: Graph, xs: Value[], extra: Value[]) => Value; extra?: { shape: number[]; data: BigInt64Array }[] };

// One case (or more) per operator of the rule table; each differentiates every float input.
const cases: Record<string, Case[]> = {
  Identity: [{ inputs: [{ shape: [3, 4] }], build: (g, [a]) => g.output('id_out', a) }],
  Add: [
    { inputs: [{ shape: [3, 4] }, { shape: [3, 4] }], build: (g, [a, b]) => g.add(a, b) },
    { inputs: [{ shape: [2, 3, 4] }, { shape: [4] }], build: (g, [a, b]) => g.add(a, b) },
    { inputs: [{ shape: [2, 1, 4] }, { shape: [3, 1] }], build: (g, [a, b]) => g.add(a, b) },
  ],
  Sub: [{ inputs: [{ shape: [2, 3] }, { shape: [2, 1] }], build: (g, [a, b]) => g.sub(a, b) }],
  Mul: [{ inputs: [{ shape: [2, 3, 4] }, { shape: [3, 4] }], build: (g, [a, b]) => g.mul(a, b) }],
  Div: [{ inputs: [{ shape: [2, 3] }, { shape: [3], positive: true }], build: (g, [a, b]) => g.div(a, b) }],
  Neg: [{ inputs: [{ shape: [5] }], build: (g, [a]) => g.neg(a) }],
  Sqrt: [{ inputs: [{ shape: [5], positive: true }], build: (g, [a]) => g.sqrt(a) }],
  Reciprocal: [{ inputs: [{ shape: [5], positive: true }], build: (g, [a]) => g.reciprocal(a) }],
  Exp: [{ inputs: [{ shape: [5] }], build: (g, [a]) => g.exp(a) }],
  Sigmoid: [{ inputs: [{ shape: [2, 5] }], build: (g, [a]) => g.sigmoid(a) }],
  MatMul: [
    { inputs: [{ shape: [2, 3, 4, 5] }, { shape: [2, 3, 5, 6] }], build: (g, [a, b]) => g.matmul(a, b) },
    { inputs: [{ shape: [2, 3, 4, 5] }, { shape: [5, 6] }], build: (g, [a, b]) => g.matmul(a, b) },
  ],
  Gemm: [false, true].flatMap((transA) =>
    [false, true].map((transB) => ({
      inputs: [{ shape: transA ? [4, 3] : [3, 4] }, { shape: transB ? [5, 4] : [4, 5] }],
      build: (g: Graph, [a, b]: Value[]) => g.gemm(a, b, { transA, transB }),
    })),
  ),
  Reshape: [{ inputs: [{ shape: [2, 6] }], build: (g, [a]) => g.reshape(a, [3, 4]) }],
  Transpose: [{ inputs: [{ shape: [2, 3, 4] }], build: (g, [a]) => g.transpose(a, [2, 0, 1]) }],
  ReduceSum: [{ inputs: [{ shape: [2, 3, 4] }], build: (g, [a]) => g.reduceSum(a, [0, 2], true) }],
  ReduceMean: [{ inputs: [{ shape: [2, 3, 4] }], build: (g, [a]) => g.reduceMean(a, [-1], true) }],
  Softmax: [{ inputs: [{ shape: [2, 3, 5] }], build: (g, [a]) => g.softmax(a) }],
  Gather: [
    {
      inputs: [{ shape: [6, 4] }],
      extra: [{ shape: [2, 3], data: BigInt64Array.from([0n, 5n, 2n, 2n, 5n, 1n]) }],
      build: (g, [t], [idx]) => g.gather(t, idx),
    },
  ],
  SoftmaxCrossEntropyLoss: [
    {
      inputs: [{ shape: [5, 7] }],
      extra: [{ shape: [5], data: BigInt64Array.from([0n, 6n, 3n, 3n, 1n]) }],
      build: (g, [logits], [t]) => g.softmaxCrossEntropy(logits, t).loss,
    },
  ],
  Slice: [{ inputs: [{ shape: [3, 8] }], build: (g, [a]) => g.slice(a, 1, 2, 5) }],
  Concat: [{ inputs: [{ shape: [2, 3] }, { shape: [2, 1] }, { shape: [2, 2] }], build: (g, xs) => g.concat(xs, 1) }],
  Pad: [{ inputs: [{ shape: [2, 3] }], build: (g, [a]) => g.pad(a, 1, 2, 1) }],
  Expand: [{ inputs: [{ shape: [3, 1] }], build: (g, [a]) => g.expand(a, [2, 3, 4]) }],
  Cast: [{ inputs: [{ shape: [4] }], build: (g, [a]) => g.cast(g.cast(a, 'float32'), 'float64') }],
};

for (const op of Object.keys(gradRules)) {
  test(`gradient rule ${op} matches central finite differences`, async () => {
    const list = cases[op];
    assert.ok(list, `no finite-difference case for ${op}`);
    for (const c of list) {
      // Cast through float32 loses precision by design: compare at float32's resolution.
      const tol = op === 'Cast' ? 1e-3 : TOL;
      const r = await gradCheck(c.inputs, c.build, { extra: c.extra, h: op === 'Cast' ? 1e-2 : 1e-6 });
      assert.ok(r.maxRelError < tol, `${op}: max relative error ${r.maxRelError.toExponential(2)} (${r.worst})`);
    }
  });
}
