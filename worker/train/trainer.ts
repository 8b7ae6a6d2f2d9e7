// Single-process training of the whole model: one graph per step (forward, backward, gradient
// norm) and AdamW in place over the flat buffers, plus a forward-only graph for held-out loss.
// Everything the loop touches comes in as arguments.
import { type Checkpoint, saveCheckpoint, wholeModel } from '../checkpoint/checkpoint.ts';
import { type Batch, type Dataset, heldoutBatches, trainBatch } from '../data/dataset.ts';
import type { Value } from '../engine/graph.ts';
import { LARGE_MODEL_PARAMS, collectGarbage } from '../engine/collect.ts';
import { CompiledGraph, type DeviceChoice } from '../engine/session.ts';
import type { ModelConfig } from '../model/config.ts';
import type { ParamLayout } from '../model/params.ts';
import { initParams } from '../model/params.ts';
import { buildStageGraph } from '../model/stage.ts';
import { type AdamWConfig, type AdamWState, adamwStep, clipCoefficient, learningRate } from '../optim/adamw.ts';

export interface TrainOptions {
  config: ModelConfig;
  optim: AdamWConfig;
  dataset: Dataset;
  steps: number;
  seed: number;
  device?: DeviceChoice;
  threads?: number;
  /** Held-out batches for the loss at the start and the end. */
  evalBatches: number;
  /** Where to write the final checkpoint (atomically); none when absent. */
  checkpointPath?: string;
  /** Free-form strings stored in the checkpoint's metadata. */
  checkpointExtra?: Record<string, string>;
  /** Called after every step. Returning `false` stops training early (after that step). */
  onStep?: (e: StepEvent) => void | boolean;
  onEval?: (e: { step: number; heldoutLoss: number }) => void;
  /** A clock for throughput (performance.now() by default). */
  now?: () => number;
  profilePrefix?: string;
}

export interface StepEvent {
  step: number;
  steps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  tokensPerS: number;
  elapsedS: number;
}

export interface TrainResult {
  steps: number;
  initialHeldoutLoss: number;
  heldoutLoss: number;
  finalLoss: number;
  tokens: number;
  tokensPerS: number;
  trainS: number;
  checkpoint?: string;
  params: number;
}

/**
 * Compiled train-step and eval graphs of the whole model, reused for every step. A step is one
 * graph (forward, backward, the squared gradient norm) that reads the parameters and returns every
 * gradient (onnxruntime-node's own copies), then AdamW per parameter in place (adamwStep): weights
 * and both moments exist once each, the gradients once while the step holds them (16 bytes per
 * parameter).
 */

export class Trainer {
  private constructor(
    readonly config: ModelConfig,
    readonly layout: ParamLayout,
    private readonly step: CompiledGraph,
    private readonly evaluate: CompiledGraph,
  ) {}

  static async create(config: ModelConfig, _optim: AdamWConfig, opts: { device?: DeviceChoice; threads?: number; profilePrefix?: string } = {}): Promise<Trainer> {
    const sg = buildStageGraph(config, wholeModel(config), config.batch_size, 'float32');
    const { g, layout } = sg;
    const named = (vs: Value[]): [string, Value][] => vs.map((x) => [x.name!, x]);
    const session = { device: opts.device, threads: opts.threads };
    // onnxruntime-node hands back a fresh copy of every output, even of preallocated ones. So the
    // gradients are not fetched into a buffer of our own (that buffer plus the copy would hold
    // them twice): the copies are the gradients. Without the arena ONNX Runtime's own gradient
    // buffers go back to the heap as each is copied, which pays for large models only (2-core
    // EPYC: medium at batch 4 peaks at 8.9 GiB with a gradient buffer and the arena, 7.8 without
    // the buffer, 6.7 without the arena too, the step no slower; small gains nothing without the
    // arena and its step is 12 % slower).
    const step = await CompiledGraph.create(g, {
      ...session,
      arena: layout.size < LARGE_MODEL_PARAMS,
      profilePrefix: opts.profilePrefix,
      inputs: named(g.inputs),
      outputs: [['loss', sg.loss!], ['grad_sumsq', sg.gradSumSq], ...sg.grads],
    });
    // Evaluation runs only at the start and the end: no arena, so its buffers do not stay resident.
    const evaluate = await CompiledGraph.create(g, { ...session, arena: false, inputs: named(g.inputs), outputs: [['loss', sg.loss!]] });
    return new Trainer(config, layout, step, evaluate);
  }

  /** Mean loss over batches with the given parameters. */
  async heldoutLoss(params: Float32Array, batches: Batch[]): Promise<number> {
    let sum = 0;
    for (const b of batches) {
      const out = await this.evaluate.run({ ...this.layout.feeds({ params }), input: b.inputs, targets: b.targets });
      sum += Number(out.loss[0]);
    }
    return sum / batches.length;
  }

  /**
   * One optimizer step (1-based t): reads `cur`, writes the updated state into `next` (which may
   * be `cur`: in place, as train() runs).
   */
  async trainStep(cur: OptimState, next: OptimState, batch: Batch, t: number, lr: number, optim: AdamWConfig): Promise<{ loss: number; gradSumSq: number }> {
    const { layout } = this;
    // The last step's gradients are garbage now; at this size V8 would keep them past this run.
    if (layout.size >= LARGE_MODEL_PARAMS) collectGarbage();
    const out = await this.step.run({ ...layout.feeds({ params: cur.params }), input: batch.inputs, targets: batch.targets });
    const gradSumSq = Number(out.grad_sumsq[0]);
    const clip = clipCoefficient(gradSumSq, optim);
    // AdamW per parameter, over views of the state and the fetched gradient.
    for (const { name, size, decay } of layout.entries) {
      const view = (s: OptimState): OptimState => ({ params: layout.view(s.params, name), m: layout.view(s.m, name), v: layout.view(s.v, name) });
      const from = view(cur);
      // The same views for both when in place, so that adamwStep copies nothing.
      adamwStep(from, out[`grad.${name}`] as Float32Array, next === cur ? from : view(next), decay ? size : 0, t, lr, clip, optim);
    }
    return { loss: Number(out.loss[0]), gradSumSq };
  }

  endProfiling(): void {
    this.step.endProfiling();
  }

  async dispose(): Promise<void> {
    await Promise.all([this.step.dispose(), this.evaluate.dispose()]);
  }
}

export type OptimState = AdamWState<Float32Array>;

export function freshState(layout: ParamLayout, seed: number): OptimState {
  return { params: initParams(layout, seed, (n) => new Float32Array(n)), m: new Float32Array(layout.size), v: new Float32Array(layout.size) };
}

/** Trains the whole model for opts.steps steps and returns what a user wants to know. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { config, optim, dataset } = opts;
  const now = opts.now ?? (() => performance.now());
  const trainer = await Trainer.create(config, optim, opts);
  try {
    const { layout } = trainer;
    const cur = freshState(layout, opts.seed);
    const evalSet = heldoutBatches(dataset, { batchSize: config.batch_size, seqLen: config.seq_len, maxBatches: opts.evalBatches });
    const initialHeldoutLoss = await trainer.heldoutLoss(cur.params, evalSet);
    opts.onEval?.({ step: 0, heldoutLoss: initialHeldoutLoss });

    const tokensPerStep = config.batch_size * config.seq_len;
    const start = now();
    let loss = NaN;
    let done = 0;
    for (let s = 0; s < opts.steps; s++) {
      const batch = trainBatch(dataset, { seed: opts.seed, step: s, batchSize: config.batch_size, seqLen: config.seq_len });
      const lr = learningRate(s, optim);
      const r = await trainer.trainStep(cur, cur, batch, s + 1, lr, optim);
      if (!Number.isFinite(r.loss)) throw new Error(`training diverged at step ${s + 1}: loss is ${r.loss} (try a lower --lr)`);
      loss = r.loss;
      done = s + 1;
      const elapsedS = (now() - start) / 1000;
      const keepGoing = opts.onStep?.({
        step: done,
        steps: opts.steps,
        loss,
        lr,
        gradNorm: Math.sqrt(r.gradSumSq),
        tokens: done * tokensPerStep,
        tokensPerS: (done * tokensPerStep) / elapsedS,
        elapsedS,
      });
      if (keepGoing === false) break;
    }
    const trainS = (now() - start) / 1000;
    if (opts.profilePrefix) trainer.endProfiling();
    const heldoutLoss = await trainer.heldoutLoss(cur.params, evalSet);
    opts.onEval?.({ step: done, heldoutLoss });

    if (opts.checkpointPath) await saveCheckpoint(opts.checkpointPath, toCheckpoint(layout, cur, done, opts.checkpointExtra));
    return {
      steps: done,
      initialHeldoutLoss,
      heldoutLoss,
      finalLoss: loss,
      tokens: done * tokensPerStep,
      tokensPerS: (done * tokensPerStep) / trainS,
      trainS,
      checkpoint: opts.checkpointPath,
      params: layout.size,
    };
  } finally {
    await trainer.dispose();
  }
}

/** The checkpoint of a stage's state: weights and AdamW moments by Hugging Face name. */
export function toCheckpoint(layout: ParamLayout, state: OptimState, step: number, extra?: Record<string, string>): Checkpoint {
  const byName = (flat: Float32Array) => new Map(layout.entries.map((e) => [e.name, { shape: [...e.shape], data: layout.view(flat, e.name) }]));
  return {
    config: layout.config,
    ...layout.span,
    step,
    weights: byName(state.params),
    optimizer: { expAvg: byName(state.m), expAvgSq: byName(state.v) },
    extra,
  };
}
