import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type StageSpan, wholeModel } from '../../../worker/checkpoint/checkpoint.ts';
import { type ModelConfig, loadPreset, parseModelConfig, withBottlenecks } from '../../../worker/model/config.ts';
import { type FloatArray, ParamLayout, initParams } from '../../../worker/model/params.ts';
import onnxProto from 'onnx-proto';
import { toOnnx } from '../../../worker/engine/onnx.ts';
import { type ActivationMode, type Saved, Stage, stageViews } from '../../../worker/model/stage.ts';
import { rng } from '../../helpers/gradcheck.ts';

// The tiny preset with a short sequence keeps the float64 finite-difference sweep quick.
const config: ModelConfig = { ...loadPreset('tiny'), seq_len: 16, batch_size: 2 };

function tokens(c: ModelConfig, seed: number): { inputs: BigInt64Array; targets: BigInt64Array } {
  const r = rng(seed);
  const n = c.batch_size * c.seq_len;
  const draw = (): BigInt64Array => BigInt64Array.from({ length: n }, () => BigInt(Math.floor(r() * c.vocab_size)));
  return { inputs: draw(), targets: draw() };
}

function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

/** Central finite differences of the loss against the analytic gradient, a few entries of every parameter (float64). */
async function gradcheck(config: ModelConfig): Promise<void> {
  const span = wholeModel(config);
  const stage = await Stage.create(config, span, { floatType: 'float64', threads: 1 });
  const params = initParams(stage.layout, 7, (n) => new Float64Array(n));
  // Bigger than the 0.02 init so that every block's gradient is well above rounding noise.
  for (let i = 0; i < params.length; i++) params[i] = stage.layout.entries.find((e) => i < e.offset + e.size)!.decay ? params[i] * 10 : 1 + 0.1 * Math.sin(i);
  const { inputs, targets } = tokens(config, 3);
  const grads = new Float64Array(params.length);
  await stage.backward(params, inputs, { targets }, grads);
  const h = 1e-5;
  const r = rng(11);
  let worst = 0;
  let where = '';
  for (const e of stage.layout.entries) {
    for (let k = 0; k < 4; k++) {
      // Embedding rows only get gradient where a token occurs: probe those rows.
      const j = e.name.includes('embed') ? Number(inputs[k]) * config.d_model + Math.floor(r() * config.d_model) : Math.floor(r() * e.size);
      const i = e.offset + j;
      const keep = params[i];
      params[i] = keep + h;
      const up = (await stage.forward(params, inputs, targets)).loss!;
      params[i] = keep - h;
      const down = (await stage.forward(params, inputs, targets)).loss!;
      params[i] = keep;
      const numeric = (up - down) / (2 * h);
      const err = Math.abs(numeric - grads[i]) / Math.max(1e-6, Math.abs(numeric), Math.abs(grads[i]));
      if (err > worst) [worst, where] = [err, `${e.name}[${j}]: analytic ${grads[i]}, numeric ${numeric}`];
    }
  }
  await stage.dispose();
  assert.ok(worst < 1e-5, `max relative error ${worst.toExponential(2)} at ${where}`);
}

test('whole-model parameter gradients match central finite differences (float64)', () => gradcheck(config));

// Bottlenecks after layers 0 and 2: encoder norm and projection, decoder projection and token embedding.
const squeezed = withBottlenecks(config, 8, [[0, 0], [1, 2], [3, 3]]);

test('with bottlenecks, every gradient (encoders, decoders, their token embeddings) matches finite differences (float64)', () => gradcheck(squeezed));

/** Runs the pipeline stage by stage: forward down, backward up. Returns loss and per-name gradients. */
async function pipeline(spans: StageSpan[], whole: FloatArray, wholeLayout: ParamLayout, mode: ActivationMode, c: ModelConfig = config, forwardFirst = true) {
  const { inputs, targets } = tokens(c, 5);
  const stages = await Promise.all(spans.map((s) => Stage.create(c, s, { activations: mode })));
  const params = stages.map((s) => {
    const p = new Float32Array(s.layout.size);
    for (const e of s.layout.entries) p.set(wholeLayout.view(whole, e.name), e.offset);
    return p;
  });
  const acts: (FloatArray | BigInt64Array)[] = [inputs];
  const saved = [];
  for (let i = 0; i < stages.length; i++) {
    const f = await stages[i].forward(params[i], acts[i], targets, inputs);
    // Without the forward's saved values, backward has to work them out itself.
    saved.push(forwardFirst ? f.saved : undefined);
    if (f.output) acts.push(f.output);
  }
  const grads = new Map<string, Float32Array>();
  let loss = NaN;
  let gradOutput: FloatArray | undefined;
  for (let i = stages.length - 1; i >= 0; i--) {
    const g = new Float32Array(stages[i].layout.size);
    const b = await stages[i].backward(params[i], acts[i], { targets, gradOutput, tokens: inputs }, g, saved[i]);
    if (b.loss !== undefined) loss = b.loss;
    gradOutput = b.gradInput;
    for (const e of stages[i].layout.entries) grads.set(e.name, stages[i].layout.view(g, e.name));
  }
  await Promise.all(stages.map((s) => s.dispose()));
  return { loss, grads };
}

const split = (cuts: number[]): StageSpan[] => {
  const bounds = [0, ...cuts, config.n_layers];
  return bounds.slice(0, -1).map((first, i) => ({ layers: [first, bounds[i + 1] - 1], hasEmbed: i === 0, hasHead: i === bounds.length - 2 }));
};

test('a model split into 2 and 3 stages computes the same loss and gradients as unsplit', async () => {
  const layout = new ParamLayout(config, wholeModel(config));
  const whole = initParams(layout, 1, (n) => new Float32Array(n));
  const ref = await pipeline([wholeModel(config)], whole, layout, 'recompute');
  assert.ok(ref.loss > 5 && ref.loss < 6, `initial loss ${ref.loss} should be near ln(256) = 5.55`);
  const cases = [
    ['2 stages', split([2]), 'recompute', true],
    ['3 stages', split([1, 3]), 'recompute', true],
    ['3 stages, every activation kept', split([1, 3]), 'keep', true],
    ['3 stages, matrix products kept', split([1, 3]), 'products', true],
    ['3 stages, matrix products kept but not handed over', split([1, 3]), 'products', false],
  ] as const;
  for (const [name, spans, mode, handed] of cases) {
    const got = await pipeline([...spans], whole, layout, mode, config, handed);
    assert.ok(Math.abs(got.loss - ref.loss) / ref.loss <= 1e-5, `${name}: loss ${got.loss} vs ${ref.loss}`);
    assert.equal(got.grads.size, ref.grads.size);
    for (const [n, g] of ref.grads) {
      const e = relError(got.grads.get(n)!, g);
      assert.ok(e <= 1e-5, `${name}: gradient of ${n} differs, relative error ${e.toExponential(2)}`);
    }
  }
});

test('a model with bottlenecks split at them computes what the unsplit model computes (float32 across the boundary)', async () => {
  const layout = new ParamLayout(squeezed, wholeModel(squeezed));
  assert.ok(layout.byName.has('model.layers.0.bottleneck.encode.weight') && layout.byName.has('model.layers.1.bottleneck.decode_embed.weight'));
  assert.deepEqual(layout.byName.get('model.layers.2.bottleneck.encode.weight')!.shape, [8, config.d_model]);
  assert.deepEqual(layout.byName.get('model.layers.3.bottleneck.decode.weight')!.shape, [config.d_model, 8]);
  const whole = initParams(layout, 1, (n) => new Float32Array(n));
  const ref = await pipeline([wholeModel(squeezed)], whole, layout, 'recompute', squeezed);
  const got = await pipeline(split([1, 3]), whole, layout, 'recompute', squeezed);
  assert.ok(Math.abs(got.loss - ref.loss) / ref.loss <= 1e-5, `loss ${got.loss} vs ${ref.loss}`);
  for (const [n, g] of ref.grads) assert.ok(relError(got.grads.get(n)!, g) <= 1e-5, `gradient of ${n} differs`);
  // A later stage without the token ids cannot decode.
  const stage = await Stage.create(squeezed, split([1, 3])[1], { threads: 1 });
  assert.ok(stage.needsTokens);
  await assert.rejects(stage.forward(initParams(stage.layout, 1, (n) => new Float32Array(n)), new Float32Array(config.batch_size * config.seq_len * 8)), /decode a bottleneck: pass the sample's token ids/);
  await stage.dispose();
});

test('bottleneck settings are checked', () => {
  assert.throws(() => withBottlenecks(config, config.d_model, [[0, 1], [2, 3]]), /bottleneck_dim 64 must be below d_model 64/);
  assert.throws(() => parseModelConfig({ ...config, bottleneck_dim: 8 }), /bottleneck_dim and bottleneck_after come together/);
  assert.throws(() => parseModelConfig({ ...config, bottleneck_dim: 8, bottleneck_after: [2, 1] }), /must be increasing layers below the last/);
  assert.throws(() => parseModelConfig({ ...config, bottleneck_dim: 8, bottleneck_after: [3] }), /must be increasing layers below the last \(3\)/);
});

test('a stage refuses an activation of the wrong shape with a clear message', async () => {
  const [, second] = split([2]);
  const stage = await Stage.create(config, second, { threads: 1 });
  const params = initParams(stage.layout, 1, (n) => new Float32Array(n));
  const wrong = new Float32Array(config.batch_size * config.seq_len * (config.d_model - 1));
  await assert.rejects(stage.forward(params, wrong), /shape mismatch for input: expected \[2, 16, 64\]/);
  await stage.dispose();
});

test("a forward written into an earlier sample's saved buffers gives that sample's exact backward", async () => {
  const middle = split([1, 3])[1];
  const stage = await Stage.create(config, middle, { activations: 'products', threads: 1 });
  const params = initParams(stage.layout, 1, (n) => new Float32Array(n));
  const r = rng(21);
  const activation = (): Float32Array => Float32Array.from({ length: config.batch_size * config.seq_len * config.d_model }, () => r() * 2 - 1);
  const [a, b, gradOutput] = [activation(), activation(), activation()];
  const run = async (input: Float32Array, into?: Saved) => {
    const f = await stage.forward(params, input, undefined, undefined, into);
    const grads = new Float32Array(stage.layout.size);
    const back = await stage.backward(params, input, { gradOutput }, grads, f.saved);
    return { saved: f.saved!, grads, gradInput: back.gradInput! };
  };
  const fresh = await run(a);
  const spent = (await run(b)).saved;
  const reused = await run(a, spent);
  for (const k of Object.keys(spent)) assert.equal(reused.saved[k], spent[k], `${k} was written into the buffer handed in`);
  assert.deepEqual(reused.grads, fresh.grads);
  assert.deepEqual(reused.gradInput, fresh.gradInput);
  await stage.dispose();
});

test('backward adds the sample\'s gradient into the sum it is given (float32, element by element), and refuses a sum of the wrong size', async () => {
  const last = split([1])[1];
  const stage = await Stage.create(config, last, { threads: 1 });
  const params = initParams(stage.layout, 3, (n) => new Float32Array(n));
  const r = rng(5);
  const activation = (): Float32Array => Float32Array.from({ length: config.batch_size * config.seq_len * config.d_model }, () => r() * 2 - 1);
  const [a, b] = [activation(), activation()];
  const { targets } = tokens(config, 6);
  const alone = async (input: Float32Array): Promise<Float32Array> => {
    const g = new Float32Array(stage.layout.size);
    await stage.backward(params, input, { targets }, g);
    return g;
  };
  const [ga, gb] = [await alone(a), await alone(b)];
  const sum = new Float32Array(stage.layout.size);
  await stage.backward(params, a, { targets }, sum);
  assert.deepEqual(sum, ga, 'into zeros: the gradient itself');
  await stage.backward(params, b, { targets }, sum);
  assert.deepEqual(sum, ga.map((x, i) => Math.fround(x + gb[i])));
  assert.ok(gb.some((x, i) => x !== 0 && sum[i] !== ga[i]), 'the second sample changed the sum');
  await assert.rejects(stage.backward(params, a, { targets }, new Float32Array(stage.layout.size - 1)), /a gradient sum of \d+ values for a stage of \d+ parameters/);
  await stage.dispose();
});

test("in 'products' mode backward computes no matrix product twice: as many as when it is handed every activation", () => {
  const middle = split([1, 3])[1];
  const products = (mode: ActivationMode, part: 'forward' | 'backward'): number => {
    const v = stageViews(config, middle, config.batch_size, mode, 'float32');
    const model = onnxProto.onnx.ModelProto.decode(toOnnx(v.g, v[part]));
    return model.graph!.node!.filter((n) => n.opType === 'MatMul' || n.opType === 'Gemm').length;
  };
  const forward = products('products', 'forward');
  const keep = products('keep', 'backward');
  assert.ok(forward > 0 && keep > forward, `forward ${forward}, backward ${keep} matrix products`);
  assert.equal(products('products', 'backward'), keep);
  // Recomputing runs the forward's products again inside backward (all but those whose outputs
  // only feed the residual stream).
  assert.ok(products('recompute', 'backward') > keep + forward / 2);
});
