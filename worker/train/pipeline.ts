// Single-process training of a model split into stages, computed exactly as the swarm computes
// it: each step's batch goes through in micro-batches of `rows` sequences (one swarm sample each),
// every stage's output crosses to the next stage through the forward codec and every input
// gradient comes back through the backward codec (straight through: the gradient of the decoded
// value is taken as the gradient of the encoded one), the micro-batch gradients are summed and
// averaged, clipped by the whole model's norm, and each stage takes its AdamW step. It is the
// reference the swarm is checked against when a run compresses what crosses stage boundaries.
import type { StageSpan } from '../checkpoint/checkpoint.ts';
import { type CodecName, decode, encode } from '../../orchestrator-client/codecs.ts';
import { type Batch, type Dataset, trainBatch } from '../data/dataset.ts';
import type { DeviceChoice } from '../engine/session.ts';
import type { ModelConfig } from '../model/config.ts';
import { stageWidth } from '../model/llama.ts';
import { ParamLayout } from '../model/params.ts';
import { Stage } from '../model/stage.ts';
import { type AdamWConfig, clipCoefficient, learningRate } from '../optim/adamw.ts';
import { StageOptimizer } from '../optim/optimizer.ts';
import { type OptimState, freshState } from './trainer.ts';

/** What crosses a stage boundary: activations forward, their gradients backward. */
export interface WireCodecs {
  forward: CodecName;
  backward: CodecName;
}

export const UNCOMPRESSED: WireCodecs = { forward: 'f32', backward: 'f32' };

/** `x` ([rows, cols]) as the receiver sees it after the codec's round trip. */
export function overWire(codec: CodecName, x: Float32Array, rows: number, cols: number): Float32Array {
  return codec === 'f32' ? x : decode(codec, encode(codec, x, rows, cols), rows, cols);
}

/** The stage spans of a split: the first owns the embedding, the last the head. */
export function stageSpans(stages: readonly (readonly [number, number])[]): StageSpan[] {
  return stages.map((l, i) => ({ layers: [l[0], l[1]], hasEmbed: i === 0, hasHead: i === stages.length - 1 }));
}

export interface PipelineOptions {
  config: ModelConfig;
  /** Layer ranges of the stages, in order. */
  stages: readonly (readonly [number, number])[];
  optim: AdamWConfig;
  /** Sequences per micro-batch (a swarm sample); must divide the batch. */
  rows: number;
  codecs?: WireCodecs;
  device?: DeviceChoice;
  threads?: number;
}

interface Part {
  span: StageSpan;
  layout: ParamLayout;
  stage: Stage;
  optimizer: StageOptimizer;
  /** The batch's gradient: each micro-batch's is added into it. */
  grad: Float32Array;
}

export class PipelineTrainer {
  private constructor(
    readonly config: ModelConfig,
    readonly rows: number,
    readonly codecs: WireCodecs,
    private readonly parts: Part[],
    private readonly optim: AdamWConfig,
  ) {}

  static async create(opts: PipelineOptions): Promise<PipelineTrainer> {
    const { config, rows } = opts;
    if (!Number.isInteger(rows) || rows < 1 || config.batch_size % rows !== 0) throw new Error(`rows per micro-batch ${rows} must divide the batch of ${config.batch_size}`);
    const session = { device: opts.device, threads: opts.threads };
    const parts: Part[] = [];
    try {
      for (const span of stageSpans(opts.stages)) {
        const layout = new ParamLayout(config, span);
        const stage = await Stage.create(config, span, { ...session, batch: rows, activations: 'recompute' });
        parts.push({ span, layout, stage, optimizer: new StageOptimizer(layout, opts.optim), grad: new Float32Array(layout.size) });
      }
    } catch (e) {
      await Promise.all(parts.map((p) => p.stage.dispose()));
      throw e;
    }
    return new PipelineTrainer(config, rows, opts.codecs ?? UNCOMPRESSED, parts, opts.optim);
  }

  get layouts(): ParamLayout[] {
    return this.parts.map((p) => p.layout);
  }

  /** Tokens, stage inputs and targets of micro-batch k of a batch. */
  private micro(batch: Batch, k: number): { tokens: BigInt64Array; targets: BigInt64Array } {
    const n = this.rows * this.config.seq_len;
    return { tokens: batch.inputs.subarray(k * n, (k + 1) * n), targets: batch.targets.subarray(k * n, (k + 1) * n) };
  }

  /** Every stage's input for one micro-batch, each after the forward codec. */
  private async forwardInputs(params: Float32Array[], tokens: BigInt64Array): Promise<(Float32Array | BigInt64Array)[]> {
    const inputs: (Float32Array | BigInt64Array)[] = [tokens];
    const tokenRows = this.rows * this.config.seq_len;
    for (let i = 0; i < this.parts.length - 1; i++) {
      const { stage, span } = this.parts[i];
      const out = (await stage.forward(params[i], inputs[i], undefined, tokens)).output as Float32Array;
      inputs.push(overWire(this.codecs.forward, out, tokenRows, stageWidth(this.config, span, 'output')));
    }
    return inputs;
  }

  /** Mean loss over batches. */
  async heldoutLoss(params: Float32Array[], batches: Batch[]): Promise<number> {
    let sum = 0;
    let count = 0;
    const last = this.parts.length - 1;
    for (const b of batches) {
      for (let k = 0; k < this.config.batch_size / this.rows; k++) {
        const { tokens, targets } = this.micro(b, k);
        const inputs = await this.forwardInputs(params, tokens);
        sum += (await this.parts[last].stage.forward(params[last], inputs[last], targets, tokens)).loss!;
        count++;
      }
    }
    return sum / count;
  }

  /** One optimizer step (1-based t) of every stage: reads `cur`, writes `next`. */
  async trainStep(cur: OptimState[], next: OptimState[], batch: Batch, t: number, lr: number): Promise<{ loss: number; gradSumSq: number }> {
    const { parts } = this;
    const last = parts.length - 1;
    const tokenRows = this.rows * this.config.seq_len;
    const micros = this.config.batch_size / this.rows;
    for (const p of parts) p.grad.fill(0);
    const params = cur.map((s) => s.params);
    let loss = 0;
    for (let k = 0; k < micros; k++) {
      const { tokens, targets } = this.micro(batch, k);
      const inputs = await this.forwardInputs(params, tokens);
      let gradOutput: Float32Array | undefined;
      for (let i = last; i >= 0; i--) {
        const p = parts[i];
        const b = await p.stage.backward(params[i], inputs[i], { targets, gradOutput, tokens }, p.grad);
        if (i === last) loss += b.loss!;
        if (i > 0) gradOutput = overWire(this.codecs.backward, b.gradInput as Float32Array, tokenRows, stageWidth(this.config, parts[i - 1].span, 'output'));
      }
    }
    // The swarm's reducers scale each summed slice by 1 / samples in float32, then sum squares.
    let gradSumSq = 0;
    const scale = Math.fround(1 / micros);
    for (const p of parts) {
      for (let j = 0; j < p.grad.length; j++) {
        p.grad[j] *= scale;
        gradSumSq += p.grad[j] * p.grad[j];
      }
    }
    const clip = clipCoefficient(gradSumSq, this.optim);
    for (let i = 0; i < parts.length; i++) parts[i].optimizer.step(cur[i], parts[i].grad, next[i], t, lr, clip);
    return { loss: loss / micros, gradSumSq };
  }

  async dispose(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.stage.dispose()));
  }
}

/**
 * Trains a split model from its seeded initialisation for `steps` steps on the training batches
 * the swarm would use (seed, step); answers every stage's final state and, given `evalSet`, its
 * held-out loss. `onStep` sees each step's loss.
 */
export async function trainPipeline(
  opts: PipelineOptions & { dataset: Dataset; steps: number; seed: number; evalSet?: Batch[]; onStep?: (step: number, loss: number) => void },
): Promise<{ layouts: ParamLayout[]; states: OptimState[]; heldout: number | null; trainS: number }> {
  const trainer = await PipelineTrainer.create(opts);
  try {
    const { config } = opts;
    let cur = trainer.layouts.map((l) => freshState(l, opts.seed));
    let next = trainer.layouts.map((l) => freshState(l, opts.seed));
    const t0 = performance.now();
    for (let s = 0; s < opts.steps; s++) {
      const batch = trainBatch(opts.dataset, { seed: opts.seed, step: s, batchSize: config.batch_size, seqLen: config.seq_len });
      const { loss } = await trainer.trainStep(cur, next, batch, s + 1, learningRate(s, opts.optim));
      if (!Number.isFinite(loss)) throw new Error(`training diverged at step ${s + 1}: loss is ${loss}`);
      [cur, next] = [next, cur];
      opts.onStep?.(s + 1, loss);
    }
    const trainS = (performance.now() - t0) / 1000;
    const heldout = opts.evalSet ? await trainer.heldoutLoss(cur.map((c) => c.params), opts.evalSet) : null;
    return { layouts: trainer.layouts, states: cur, heldout, trainS };
  } finally {
    await trainer.dispose();
  }
}
