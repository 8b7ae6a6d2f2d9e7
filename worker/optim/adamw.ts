// AdamW (decoupled weight decay, PyTorch's formulation) as graph nodes over flat segments,
// global-norm gradient clipping, and the warm-up + cosine learning-rate schedule.
import type { OptimizerSpec } from '../../orchestrator-client/protocol.ts';
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

/** A run's optimizer as the protocol states it (snake case), as the engine takes it. */
export function fromOptimizerSpec(o: OptimizerSpec): AdamWConfig {
  return {
    lr: o.lr,
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    weightDecay: o.weight_decay,
    clipNorm: o.clip_norm,
    warmupSteps: o.warmup_steps,
    totalSteps: o.total_steps,
    minLrRatio: o.min_lr_ratio,
  };
}

/** The engine's optimizer recipe in the protocol's terms (a run specification's `optimizer`). */
export function toOptimizerSpec(c: AdamWConfig): OptimizerSpec {
  return { lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weight_decay: c.weightDecay, clip_norm: c.clipNorm, warmup_steps: c.warmupSteps, total_steps: c.totalSteps, min_lr_ratio: c.minLrRatio };
}

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

/**
 * The per-step scalars of the update graph, for optimizer step t ≥ 1 (1-based, as PyTorch
 * counts): [step size lr / bc1, 1 / sqrt(bc2), decoupled decay factor 1 − lr·wd].
 */
export function stepScalars(t: number, lr: number, c: AdamWConfig): number[] {
  return [lr / (1 - Math.pow(c.beta1, t)), 1 / Math.sqrt(1 - Math.pow(c.beta2, t)), 1 - lr * c.weightDecay];
}
export const STEP_SCALARS = 3;

export interface Segment {
  param: Value;
  grad: Value;
  m: Value;
  v: Value;
  decay: boolean;
}

/** Graph values of the step scalars and the clip coefficient. */
export interface StepValues {
  stepSize: Value;
  invSqrtBc2: Value;
  decay: Value;
  clip: Value;
}

/** Splits a [3] scalars input (layout of stepScalars()) into scalar values. */
export function scalarValues(g: Graph, scalars: Value, clip: Value): StepValues {
  const s = (i: number): Value => g.reshape(g.slice(scalars, 0, i, i + 1), []);
  return { stepSize: s(0), invSqrtBc2: s(1), decay: s(2), clip };
}

/** clip_grad_norm_'s coefficient computed in the graph from the sum of squared gradients. */
export function clipValue(g: Graph, gradSumSq: Value, c: AdamWConfig): Value {
  if (c.clipNorm <= 0) return g.scalar(1);
  const coef = g.div(g.scalar(c.clipNorm), g.add(g.sqrt(gradSumSq), g.scalar(1e-6)));
  return g.minimum(coef, g.scalar(1));
}

/**
 * Emits one AdamW update per segment. The clip coefficient is folded into the moment
 * coefficients, so the gradient itself is never rescaled in memory.
 */
export function adamwUpdate(g: Graph, segments: Segment[], s: StepValues, c: AdamWConfig): { param: Value; m: Value; v: Value }[] {
  const gradCoef = g.scale(s.clip, 1 - c.beta1);
  const sqCoef = g.scale(g.mul(s.clip, s.clip), 1 - c.beta2);
  return segments.map(({ param, grad, m, v, decay: decayed }) => {
    const m2 = g.add(g.scale(m, c.beta1), g.mul(grad, gradCoef));
    const v2 = g.add(g.scale(v, c.beta2), g.mul(g.mul(grad, grad), sqCoef));
    const denom = g.add(g.mul(g.sqrt(v2), s.invSqrtBc2), g.scalar(c.eps));
    const update = g.mul(g.div(m2, denom), s.stepSize);
    const kept = decayed && c.weightDecay !== 0 ? g.mul(param, s.decay) : param;
    return { param: g.sub(kept, update), m: m2, v: v2 };
  });
}
