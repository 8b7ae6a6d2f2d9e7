// AdamW (decoupled weight decay, PyTorch's formulation) as graph nodes over flat segments,
// global-norm gradient clipping, and the warm-up + cosine learning-rate schedule.
import type { Graph, Value } from '../engine/graph.ts';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip; 0 turns clipping off. */
  clipNorm: number;
  warmupSteps: number;
  /** Steps of the whole run (the cosine ends here). */
  totalSteps: number;
  /** The schedule decays to lr · minLrRatio. */
  minLrRatio: number;
}

/** The recipe of MODEL.md's reference figures. */
export const DEFAULT_ADAMW: AdamWConfig = {
  lr: 3e-3,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  clipNorm: 1,
  warmupSteps: 30,
  totalSteps: 1000,
  minLrRatio: 0.1,
};

/** Learning rate for optimizer step `step` (0-based): linear warm-up, then cosine to lr·minLrRatio. */
export function learningRate(step: number, c: AdamWConfig): number {
  if (step < c.warmupSteps) return (c.lr * (step + 1)) / c.warmupSteps;
  const span = Math.max(1, c.totalSteps - c.warmupSteps);
  const progress = Math.min(1, (step - c.warmupSteps) / span);
  const min = c.lr * c.minLrRatio;
  return min + 0.5 * (c.lr - min) * (1 + Math.cos(Math.PI * progress));
}

/** PyTorch's clip_grad_norm_ coefficient: max_norm / (norm + 1e-6), capped at 1. */
export function clipCoefficient(gradSumSq: number, c: AdamWConfig): number {
  if (c.clipNorm <= 0) return 1;
  return Math.min(1, c.clipNorm / (Math.sqrt(gradSumSq) + 1e-6));
}

/** The per-step scalars the update graph takes as inputs, for optimizer step number t ≥ 1. */
export function stepScalars(t: number, lr: number, clip: number, c: AdamWConfig): Float64Array {
  const bc1 = 1 - Math.pow(c.beta1, t);
  const bc2 = 1 - Math.pow(c.beta2, t);
  return Float64Array.from([
    (1 - c.beta1) * clip, // coefficient of g in the first moment
    (1 - c.beta2) * clip * clip, // coefficient of g² in the second moment
    lr / bc1, // step size
    1 / Math.sqrt(bc2), // second-moment bias correction (applied to its square root)
    1 - lr * c.weightDecay, // decoupled decay factor
  ]);
}
export const STEP_SCALARS = 5;

export interface Segment {
  param: Value;
  grad: Value;
  m: Value;
  v: Value;
  decay: boolean;
}

/**
 * Emits one AdamW update per segment. `scalars` is a [5] vector laid out as stepScalars(); the
 * clip coefficient is folded into the moment coefficients so the gradient is never rescaled.
 */
export function adamwUpdate(g: Graph, segments: Segment[], scalars: Value, c: AdamWConfig): { param: Value; m: Value; v: Value }[] {
  const s = (i: number): Value => g.reshape(g.slice(scalars, 0, i, i + 1), []);
  const [gradCoef, sqCoef, stepSize, invSqrtBc2, decay] = [0, 1, 2, 3, 4].map(s);
  return segments.map(({ param, grad, m, v, decay: decayed }) => {
    const m2 = g.add(g.scale(m, c.beta1), g.mul(grad, gradCoef));
    const v2 = g.add(g.scale(v, c.beta2), g.mul(g.mul(grad, grad), sqCoef));
    const denom = g.add(g.mul(g.sqrt(v2), invSqrtBc2), g.scalar(c.eps));
    const update = g.mul(g.div(m2, denom), stepSize);
    const kept = decayed && c.weightDecay !== 0 ? g.mul(param, decay) : param;
    return { param: g.sub(kept, update), m: m2, v: v2 };
  });
}
