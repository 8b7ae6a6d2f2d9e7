import assert from 'node:assert/strict';
import { test } from 'node:test';
import { wholeModel } from '../../../worker/checkpoint/checkpoint.ts';
import { loadBrownCorpus } from '../../../worker/data/brown.ts';
import { buildDataset, trainBatch } from '../../../worker/data/dataset.ts';
import { byteTokenizer } from '../../../worker/data/tokenizer.ts';
import { loadPreset } from '../../../worker/model/config.ts';
import { Stage } from '../../../worker/model/stage.ts';
import { DEFAULT_ADAMW, clipCoefficient, learningRate } from '../../../worker/optim/adamw.ts';
import { StageOptimizer } from '../../../worker/optim/optimizer.ts';
import { type OptimState, Trainer, freshState, train } from '../../../worker/train/trainer.ts';

const config = { ...loadPreset('tiny'), seq_len: 32, batch_size: 4 };
const optim = { ...DEFAULT_ADAMW, warmupSteps: 2, totalSteps: 10 };
const dataset = buildDataset(loadBrownCorpus(), byteTokenizer);

test('the train step (in place) equals a separate backward pass followed by AdamW into other buffers', async () => {
  const trainer = await Trainer.create(config, optim, { threads: 1 });
  const stage = await Stage.create(config, wholeModel(config), { threads: 1 });
  const opt = new StageOptimizer(stage.layout, optim);
  const a = freshState(trainer.layout, 5);
  let b: OptimState = { params: a.params.slice(), m: a.m.slice(), v: a.v.slice() };
  let b2 = freshState(trainer.layout, 7);
  const grads = new Float32Array(stage.layout.size);
  for (let t = 1; t <= 3; t++) {
    const batch = trainBatch(dataset, { seed: 1, step: t, batchSize: config.batch_size, seqLen: config.seq_len });
    const lr = learningRate(t - 1, optim);
    const fused = await trainer.trainStep(a, a, batch, t, lr, optim);
    grads.fill(0);
    const sep = await stage.backward(b.params, batch.inputs, { targets: batch.targets }, grads);
    opt.step(b, grads, b2, t, lr, clipCoefficient(sep.gradSumSq, optim));
    assert.ok(Math.abs(fused.loss - sep.loss!) <= 1e-6 * sep.loss!, `step ${t}: loss ${fused.loss} vs ${sep.loss}`);
    [b, b2] = [b2, b];
  }
  let worst = 0;
  for (let i = 0; i < a.params.length; i++) worst = Math.max(worst, Math.abs(a.params[i] - b.params[i]));
  const scale = b.params.reduce((s, x) => Math.max(s, Math.abs(x)), 0);
  assert.ok(worst / scale < 1e-5, `parameters differ by ${worst} (scale ${scale})`);
  await Promise.all([trainer.dispose(), stage.dispose()]);
});

test('training lowers held-out loss and stops early when asked', async () => {
  const seen: number[] = [];
  const r = await train({ config, optim, dataset, steps: 10, seed: 2, evalBatches: 2, threads: 1, onStep: (e) => void seen.push(e.step) });
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.ok(r.heldoutLoss < r.initialHeldoutLoss - 0.5, `held-out loss ${r.initialHeldoutLoss} → ${r.heldoutLoss}`);
  const early = await train({ config, optim, dataset, steps: 10, seed: 2, evalBatches: 1, threads: 1, onStep: (e) => e.step < 3 });
  assert.equal(early.steps, 3);
});
