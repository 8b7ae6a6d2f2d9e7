// The single-process reference for compressed swarms: stage by stage, in micro-batches, with the
// codecs between stages. Uncompressed it must be the fused whole-model trainer; compressed it must
// really run the codecs (the result moves, and does so deterministically).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { wholeModel } from '../../../worker/checkpoint/checkpoint.ts';
import { loadBrownCorpus } from '../../../worker/data/brown.ts';
import { buildDataset, heldoutBatches, trainBatch } from '../../../worker/data/dataset.ts';
import { byteTokenizer } from '../../../worker/data/tokenizer.ts';
import { type ModelConfig, loadPreset, withBottlenecks } from '../../../worker/model/config.ts';
import { DEFAULT_ADAMW, learningRate } from '../../../worker/optim/adamw.ts';
import { PipelineTrainer, type WireCodecs, overWire } from '../../../worker/train/pipeline.ts';
import { Trainer, freshState } from '../../../worker/train/trainer.ts';
import { ParamLayout } from '../../../worker/model/params.ts';

const config = { ...loadPreset('tiny'), seq_len: 32, batch_size: 4 };
const optim = { ...DEFAULT_ADAMW, warmupSteps: 2, totalSteps: 10 };
const dataset = buildDataset(loadBrownCorpus(), byteTokenizer);
const STAGES: [number, number][] = [[0, 0], [1, 2], [3, 3]];
const batches = [1, 2, 3].map((s) => trainBatch(dataset, { seed: 4, step: s, batchSize: config.batch_size, seqLen: config.seq_len }));

/** Three steps of the pipeline trainer; the whole model's weights in the unsplit layout. */
async function pipelineRun(c: ModelConfig, codecs?: WireCodecs): Promise<{ params: Float32Array; losses: number[]; heldout: number }> {
  const trainer = await PipelineTrainer.create({ config: c, stages: STAGES, optim, rows: 2, codecs, threads: 1 });
  try {
    let cur = trainer.layouts.map((l) => freshState(l, 9));
    let next = trainer.layouts.map((l) => freshState(l, 9));
    const losses: number[] = [];
    for (const [t, b] of batches.entries()) {
      losses.push((await trainer.trainStep(cur, next, b, t + 1, learningRate(t, optim))).loss);
      [cur, next] = [next, cur];
    }
    const whole = new ParamLayout(c, wholeModel(c));
    const params = new Float32Array(whole.size);
    trainer.layouts.forEach((l, i) => l.entries.forEach((e) => whole.view(params, e.name).set(l.view(cur[i].params, e.name))));
    const heldout = await trainer.heldoutLoss(cur.map((s) => s.params), heldoutBatches(dataset, { batchSize: config.batch_size, seqLen: config.seq_len, maxBatches: 1 }));
    return { params, losses, heldout };
  } finally {
    await trainer.dispose();
  }
}

const maxRel = (a: Float32Array, b: Float32Array): number => {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / s;
};

test('uncompressed, the pipeline trainer (3 stages, 2 micro-batches a step) takes the fused trainer\'s steps', async () => {
  const fused = await Trainer.create(config, optim, { threads: 1 });
  let a = freshState(fused.layout, 9);
  let a2 = freshState(fused.layout, 9);
  const fusedLosses: number[] = [];
  for (const [t, b] of batches.entries()) {
    fusedLosses.push((await fused.trainStep(a, a2, b, t + 1, learningRate(t, optim), optim)).loss);
    [a, a2] = [a2, a];
  }
  await fused.dispose();
  const piped = await pipelineRun(config);
  piped.losses.forEach((l, i) => assert.ok(Math.abs(l - fusedLosses[i]) <= 1e-5 * l, `step ${i + 1}: ${l} vs ${fusedLosses[i]}`));
  assert.ok(maxRel(piped.params, a.params) < 1e-5, `weights differ by ${maxRel(piped.params, a.params)}`);
});

test('compressed: the codecs are part of the computation (bit for bit repeatable, and not the uncompressed result)', async () => {
  const squeezed = withBottlenecks(config, 8, STAGES);
  const plain = await pipelineRun(squeezed);
  const int4 = await pipelineRun(squeezed, { forward: 'int4', backward: 'int8' });
  const again = await pipelineRun(squeezed, { forward: 'int4', backward: 'int8' });
  assert.deepEqual(again.params, int4.params);
  assert.ok(maxRel(int4.params, plain.params) > 1e-4, `int4/int8 moved the weights by only ${maxRel(int4.params, plain.params)}`);
  assert.ok(Number.isFinite(int4.heldout) && Math.abs(int4.heldout - plain.heldout) < 0.5);
});

test('overWire: float32 passes through untouched; int8 comes back within half a step of its row', () => {
  const x = Float32Array.from({ length: 24 }, (_, i) => Math.cos(i) * (i + 1));
  assert.equal(overWire('f32', x, 4, 6), x);
  const y = overWire('int8', x, 4, 6);
  for (let r = 0; r < 4; r++) {
    const row = x.subarray(r * 6, r * 6 + 6);
    const step = (Math.max(...row) - Math.min(...row)) / 255;
    for (let j = 0; j < 6; j++) assert.ok(Math.abs(y[r * 6 + j] - row[j]) <= step / 2 + 1e-6);
  }
});
