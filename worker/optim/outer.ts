// The outer optimizer of local-steps training (DiLoCo): replicas take inner AdamW steps on their
// own data, then the mean pseudo-gradient Δ (weights at the last merge minus weights now) is
// applied to the weights at the last merge with Nesterov momentum, as torch.optim.SGD(momentum=μ,
// nesterov=True) does:  u ← μ·u + Δ;  θ ← θ₀ − η·(Δ + μ·u).

/** One outer step, in place: `anchor` (θ₀) becomes the new weights θ, `u` the new momentum. */
export function outerNesterovStep(anchor: Float32Array, u: Float32Array, delta: Float32Array, lr: number, momentum: number): void {
  if (anchor.length !== u.length || anchor.length !== delta.length) throw new Error(`outer step: ${anchor.length} weights, ${u.length} momenta, ${delta.length} deltas`);
  for (let i = 0; i < anchor.length; i++) {
    const m = momentum * u[i] + delta[i];
    u[i] = m;
    anchor[i] -= lr * (delta[i] + momentum * m);
  }
}

/** The pseudo-gradient Δ = θ₀ − θ into `out`. */
export function pseudoGradient(anchor: Float32Array, params: Float32Array, out: Float32Array): Float32Array {
  for (let i = 0; i < anchor.length; i++) out[i] = anchor[i] - params[i];
  return out;
}
