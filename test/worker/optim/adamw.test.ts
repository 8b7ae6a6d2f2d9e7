import assert from 'node:assert/strict';
import { test } from 'node:test';
import { wholeModel } from '../../../worker/checkpoint/checkpoint.ts';
import { loadPreset } from '../../../worker/model/config.ts';
import { ParamLayout } from '../../../worker/model/params.ts';
import { type AdamWConfig, DEFAULT_ADAMW, adamwStep, clipCoefficient, learningRate } from '../../../worker/optim/adamw.ts';
import { type AdamWState, StageOptimizer } from '../../../worker/optim/optimizer.ts';
import { randn, rng } from '../../helpers/gradcheck.ts';

/** PyTorch's AdamW step (torch.optim.AdamW, non-fused), written out element by element. */
function referenceStep(p: Float64Array, g: Float64Array, m: Float64Array, v: Float64Array, decayed: (i: number) => boolean, t: number, lr: number, clip: number, c: AdamWConfig): void {
  const bc1 = 1 - c.beta1 ** t;
  const bc2 = 1 - c.beta2 ** t;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * clip;
    if (decayed(i)) p[i] *= 1 - lr * c.weightDecay;
    m[i] = c.beta1 * m[i] + (1 - c.beta1) * gi;
    v[i] = c.beta2 * v[i] + (1 - c.beta2) * gi * gi;
    const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + c.eps;
    p[i] -= (lr / bc1) * (m[i] / denom);
  }
}

test('AdamW matches PyTorch AdamW semantics, with decay only on matrices and clipping, in place or into other buffers', () => {
  const config = { ...loadPreset('tiny'), n_layers: 1, vocab_size: 16 };
  const layout = new ParamLayout(config, wholeModel(config));
  const c = { ...DEFAULT_ADAMW, weightDecay: 0.1 };
  const opt = new StageOptimizer(layout, c);
  const r = rng(3);
  const n = layout.size;
  const state: AdamWState<Float64Array> = { params: randn([n], r), m: new Float64Array(n), v: new Float64Array(n) };
  const ref = { params: state.params.slice(), m: new Float64Array(n), v: new Float64Array(n) };
  let next: AdamWState<Float64Array> = { params: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  let cur = state;
  for (let t = 1; t <= 4; t++) {
    const grads = randn([n], r);
    const clip = t === 2 ? 0.25 : 1;
    const lr = learningRate(t - 1, c);
    // Steps 1 and 3 write into the other buffers, 2 and 4 update in place.
    if (t % 2 === 1) {
      opt.step(cur, grads, next, t, lr, clip);
      [cur, next] = [next, cur];
    } else opt.step(cur, grads, cur, t, lr, clip);
    referenceStep(ref.params, grads, ref.m, ref.v, (i) => i < layout.decayed, t, lr, clip, c);
  }
  for (const k of ['params', 'm', 'v'] as const) {
    const worst = cur[k].reduce((w, x, i) => Math.max(w, Math.abs(x - ref[k][i]) / Math.max(1e-12, Math.abs(ref[k][i]))), 0);
    assert.ok(worst < 1e-12, `${k}: relative error ${worst}`);
  }
  // Norm weights are the undecayed tail of the layout.
  assert.ok(layout.entries.filter((e) => !e.decay).every((e) => e.shape.length === 1 && e.offset >= layout.decayed));
});

test('the learning rate warms up linearly, then follows a cosine down to the floor', () => {
  const c = { ...DEFAULT_ADAMW, lr: 1, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
  assert.equal(learningRate(0, c), 0.1);
  assert.equal(learningRate(9, c), 1);
  assert.ok(Math.abs(learningRate(60, c) - 0.55) < 1e-12, 'half way through the cosine is the mid point');
  assert.ok(Math.abs(learningRate(110, c) - 0.1) < 1e-12);
  assert.ok(Math.abs(learningRate(500, c) - 0.1) < 1e-12, 'past the end it stays at the floor');
  for (let s = 10; s < 110; s++) assert.ok(learningRate(s + 1, c) <= learningRate(s, c));
});

test('gradient clipping scales only norms above the limit', () => {
  assert.equal(clipCoefficient(0.25, DEFAULT_ADAMW), 1);
  assert.ok(Math.abs(clipCoefficient(16, DEFAULT_ADAMW) - 1 / (4 + 1e-6)) < 1e-15);
  assert.equal(clipCoefficient(16, { ...DEFAULT_ADAMW, clipNorm: 0 }), 1);
});

test('in float32 a step in place and a step into other buffers give the same bits', () => {
  const n = 1000;
  const r = rng(4);
  const f32 = (): Float32Array => Float32Array.from(randn([n], r));
  const start = { params: f32(), m: f32().map(Math.abs), v: f32().map((x) => x * x) };
  const copy = (s: AdamWState<Float32Array>): AdamWState<Float32Array> => ({ params: s.params.slice(), m: s.m.slice(), v: s.v.slice() });
  const grads = f32();
  const inPlace = copy(start);
  adamwStep(inPlace, grads, inPlace, 600, 3, 1e-3, 0.5, DEFAULT_ADAMW);
  const other = { params: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n) };
  adamwStep(copy(start), grads, other, 600, 3, 1e-3, 0.5, DEFAULT_ADAMW);
  for (const k of ['params', 'm', 'v'] as const) assert.deepEqual(inPlace[k], other[k], k);
  assert.notDeepEqual(inPlace.params, start.params, 'the step moved the weights');
});
