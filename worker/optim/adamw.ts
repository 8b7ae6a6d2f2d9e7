// AdamW (decoupled weight decay, PyTorch's formulation) over a stage's flat buffers, global-norm
// gradient clipping, and the warm-up + cosine learning-rate schedule.
import type { OptimizerSpec } from '../../orchestrator-client/protocol.ts';
import type { FloatArray } from '../model/params.ts';

export interface AdamWState<T extends FloatArray = FloatArray> {
  params: T;
  m: T;
  v: T;
}

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
 * One AdamW step over a stage's flat buffers (decayed entries first, layout order), as PyTorch's
 * torch.optim.AdamW computes it, with the gradient scaled by `clip`. One pass per element: the
 * parameter, its gradient and both moments are read once and written once (28 bytes per float32
 * parameter), where a graph of elementwise operators makes a pass over the whole buffer per
 * operator and allocates each result. `next` may be `cur` (in place, the usual case).
 */
export function adamwStep<T extends FloatArray>(cur: AdamWState<T>, grads: T, next: AdamWState<T>, decayed: number, t: number, lr: number, clip: number, c: AdamWConfig): void {
  const n = cur.params.length;
  for (const [k, a] of Object.entries({ grads, 'next.params': next.params, m: cur.m, v: cur.v, 'next.m': next.m, 'next.v': next.v })) {
    if (a.length !== n) throw new Error(`AdamW: ${k} has ${a.length} values for ${n} parameters`);
  }
  const stepSize = lr / (1 - c.beta1 ** t);
  const invSqrtBc2 = 1 / Math.sqrt(1 - c.beta2 ** t);
  const gradCoef = (1 - c.beta1) * clip;
  const sqCoef = (1 - c.beta2) * clip * clip;
  const p = { beta1: c.beta1, beta2: c.beta2, gradCoef, sqCoef, stepSize, invSqrtBc2, eps: c.eps };
  // Into other buffers: the state is copied there and updated in place, the same arithmetic. One
  // loop over one array per buffer lets V8 drop the reloads it needs where buffers may alias
  // (16 % faster a pass than a loop reading `cur` and writing `next`).
  if (next.params !== cur.params) next.params.set(cur.params);
  if (next.m !== cur.m) next.m.set(cur.m);
  if (next.v !== cur.v) next.v.set(cur.v);
  updateRange(next, grads, 0, decayed, 1 - lr * c.weightDecay, p);
  updateRange(next, grads, decayed, n, 1, p);
}

interface StepConstants {
  beta1: number;
  beta2: number;
  gradCoef: number;
  sqCoef: number;
  stepSize: number;
  invSqrtBc2: number;
  eps: number;
}

function updateRange<T extends FloatArray>(state: AdamWState<T>, g: T, lo: number, hi: number, decay: number, k: StepConstants): void {
  const { params: p, m, v } = state;
  const { beta1, beta2, gradCoef, sqCoef, stepSize, invSqrtBc2, eps } = k;
  for (let i = lo; i < hi; i++) {
    const gi = g[i];
    const mi = beta1 * m[i] + gradCoef * gi;
    const vi = beta2 * v[i] + sqCoef * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - (stepSize * mi) / (Math.sqrt(vi) * invSqrtBc2 + eps);
  }
}
