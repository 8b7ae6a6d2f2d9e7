// Central finite differences against the engine's reverse-mode gradients, in float64 so that the
// comparison is tight. Each check builds f(inputs) → scalar (the sum of the outputs weighted by a
// fixed random tensor), runs the forward graph at x ± h·e_i, and compares with the backward graph.
import { gradients } from '../../worker/engine/autodiff.ts';
import { Graph, type Shape, type Value, numel } from '../../worker/engine/graph.ts';
import { CompiledGraph } from '../../worker/engine/session.ts';

/** A small deterministic PRNG (mulberry32) for reproducible test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(shape: Shape, r: () => number, scale = 1): Float64Array {
  const out = new Float64Array(numel(shape));
  for (let i = 0; i < out.length; i++) out[i] = scale * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return out;
}

export interface GradCheckInput {
  shape: Shape;
  data?: Float64Array;
  /** Positive data (for sqrt, reciprocal...). */
  positive?: boolean;
}

export interface GradCheckResult {
  maxRelError: number;
  worst: string;
}

/**
 * build(g, xs) returns the value to differentiate. Every input is float64 and differentiated;
 * `extra` feeds non-differentiated int64 inputs.
 */
export async function gradCheck(
  inputs: GradCheckInput[],
  build: (g: Graph, xs: Value[], extra: Value[]) => Value,
  opts: { seed?: number; h?: number; extra?: { shape: Shape; data: BigInt64Array }[]; maxElements?: number } = {},
): Promise<GradCheckResult> {
  const r = rng(opts.seed ?? 1);
  const h = opts.h ?? 1e-6;
  const data = inputs.map((inp) => inp.data ?? (inp.positive ? randn(inp.shape, r).map((v) => 0.5 + Math.abs(v)) : randn(inp.shape, r)));

  const g = new Graph('float64');
  const xs = inputs.map((inp, i) => g.input(`x${i}`, 'float64', inp.shape));
  const extra = (opts.extra ?? []).map((e, i) => g.input(`e${i}`, 'int64', e.shape));
  const y = build(g, xs, extra);
  const w = g.input('w', 'float64', y.shape);
  const weights = randn(y.shape, r);
  const loss = g.reduceSum(g.mul(y, w), [...y.shape.keys()], false);
  g.output('loss', loss);
  const grads = gradients(g, [[loss, g.scalar(1)]], xs);
  grads.forEach((d, i) => g.output(`d${i}`, d));
  const session = await CompiledGraph.create(g, { threads: 1 });

  const feeds: Record<string, Float64Array | BigInt64Array> = { w: weights };
  data.forEach((d, i) => (feeds[`x${i}`] = d));
  (opts.extra ?? []).forEach((e, i) => (feeds[`e${i}`] = e.data));
  const base = await session.run(feeds);
  const evalLoss = async (): Promise<number> => (await session.run(feeds)).loss[0] as number;

  let maxRelError = 0;
  let worst = '';
  for (let i = 0; i < data.length; i++) {
    const analytic = base[`d${i}`] as Float64Array;
    const n = data[i].length;
    const step = Math.max(1, Math.floor(n / (opts.maxElements ?? 64)));
    // The scale of the whole gradient guards against dividing by near-zero entries.
    const scale = Math.max(1e-8, ...Array.from(analytic, Math.abs));
    for (let j = 0; j < n; j += step) {
      const keep = data[i][j];
      data[i][j] = keep + h;
      const up = await evalLoss();
      data[i][j] = keep - h;
      const down = await evalLoss();
      data[i][j] = keep;
      const numeric = (up - down) / (2 * h);
      const err = Math.abs(numeric - analytic[j]) / Math.max(scale, Math.abs(numeric));
      if (err > maxRelError) {
        maxRelError = err;
        worst = `input ${i}[${j}]: analytic ${analytic[j]}, numeric ${numeric}`;
      }
    }
  }
  await session.dispose();
  return { maxRelError, worst };
}
