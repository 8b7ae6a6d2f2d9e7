// Shared by the swarm tests: the single-process reference for a run, and the comparison of a
// swarm's final stages with it, tensor by tensor.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunStatus } from '../../../orchestrator-client/protocol.ts';
import { evenStages } from '../../../orchestrator/runs.ts';
import { readFinalStages } from '../../../cli/commands/swarm.ts';
import { trainRecipe } from '../../../cli/commands/train.ts';
import { assembleStages } from '../../../worker/checkpoint/assemble.ts';
import { loadCheckpoint, wholeModel } from '../../../worker/checkpoint/checkpoint.ts';
import { loadBrownCorpus } from '../../../worker/data/brown.ts';
import { buildDataset } from '../../../worker/data/dataset.ts';
import { byteTokenizer } from '../../../worker/data/tokenizer.ts';
import { type ModelConfig, loadPreset } from '../../../worker/model/config.ts';
import { ParamLayout } from '../../../worker/model/params.ts';
import { toOptimizerSpec } from '../../../worker/optim/adamw.ts';
import { train } from '../../../worker/train/trainer.ts';

export interface SwarmCase {
  preset: string;
  stages: number;
  samples: number;
  rows: number;
  rounds: number;
  seed: number;
  lr: number;
}

export function caseConfig(c: SwarmCase): { config: ModelConfig; stages: [number, number][] } {
  const preset = loadPreset(c.preset);
  return { config: { ...preset, batch_size: c.samples * c.rows }, stages: evenStages(preset.n_layers, c.stages) };
}

/** The run specification the swarm gets for a case (the optimizer recipe `tah train` uses). */
export function caseSpec(c: SwarmCase, extra: Record<string, unknown> = {}): { id: string } & Record<string, unknown> {
  return {
    id: 'case',
    preset: c.preset,
    stages: caseConfig(c).stages,
    samples_per_round: c.samples,
    rows_per_sample: c.rows,
    rounds: c.rounds,
    seed: c.seed,
    optimizer: toOptimizerSpec(trainRecipe(c.preset, c.rounds, c.lr)),
    ...extra,
  };
}

/** The weights one process reaches on the same samples (the whole batch per step), from its checkpoint. */
export async function singleProcessWeights(c: SwarmCase): Promise<{ layout: ParamLayout; params: Float32Array }> {
  const { config } = caseConfig(c);
  const dataset = buildDataset(loadBrownCorpus(), byteTokenizer);
  const dir = await mkdtemp(join(tmpdir(), 'tah-single-'));
  try {
    const path = join(dir, 'single.safetensors');
    await train({ config, optim: trainRecipe(c.preset, c.rounds, c.lr), dataset, steps: c.rounds, seed: c.seed, evalBatches: 1, threads: 2, checkpointPath: path });
    const ckpt = await loadCheckpoint(path);
    const layout = new ParamLayout(config, wholeModel(config));
    const params = new Float32Array(layout.size);
    for (const e of layout.entries) layout.view(params, e.name).set(ckpt.weights.get(e.name)!.data);
    return { layout, params };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Relative error ‖a − b‖ / ‖b‖ of every tensor of the swarm's final model against the reference. */
export async function compareWithSingle(c: SwarmCase, dir: string, status: RunStatus, reference: { layout: ParamLayout; params: Float32Array }): Promise<Map<string, number>> {
  const { config, stages } = caseConfig(c);
  const { layout, state } = assembleStages(config, await readFinalStages(dir, status, stages, c.rounds));
  const errors = new Map<string, number>();
  for (const e of layout.entries) {
    const a = layout.view(state.params, e.name);
    const b = reference.layout.view(reference.params, e.name);
    let num = 0;
    let den = 0;
    for (let i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) ** 2;
      den += b[i] ** 2;
    }
    errors.set(e.name, Math.sqrt(num / den));
  }
  return errors;
}

export function assertEqualWeights(errors: Map<string, number>, tolerance = 1e-4): void {
  assert.ok(errors.size > 0, 'no tensors compared');
  const worst = [...errors].sort((a, b) => b[1] - a[1])[0];
  assert.ok(worst[1] <= tolerance, `tensor ${worst[0]} differs from single-process training by ${worst[1].toExponential(2)} (relative), over ${tolerance}`);
}
