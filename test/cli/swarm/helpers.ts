// Shared by the swarm tests: the single-process reference for a run, and the comparison of a
// swarm's final stages with it, tensor by tensor.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CompressionSpec, RunStatus } from '../../../orchestrator-client/protocol.ts';
import { LocalSwarm } from '../../../cli/swarm/local-swarm.ts';
import { openDatabase } from '../../../orchestrator/db/open.ts';
import { evenStages } from '../../../orchestrator/runs.ts';
import { readFinalStages } from '../../../cli/commands/swarm.ts';
import { trainRecipe } from '../../../cli/commands/train.ts';
import { assembleStages } from '../../../worker/checkpoint/assemble.ts';
import { loadCheckpoint, wholeModel } from '../../../worker/checkpoint/checkpoint.ts';
import { loadBrownCorpus } from '../../../worker/data/brown.ts';
import { buildDataset } from '../../../worker/data/dataset.ts';
import { byteTokenizer } from '../../../worker/data/tokenizer.ts';
import { type ModelConfig, loadPreset, runModelConfig } from '../../../worker/model/config.ts';
import { ParamLayout } from '../../../worker/model/params.ts';
import { toOptimizerSpec } from '../../../worker/optim/adamw.ts';
import { stageSpans, trainPipeline } from '../../../worker/train/pipeline.ts';
import { train } from '../../../worker/train/trainer.ts';

export interface SwarmCase {
  preset: string;
  stages: number;
  samples: number;
  rows: number;
  rounds: number;
  seed: number;
  lr: number;
  /** What crosses stage boundaries (the run's `compression`); float32 at full width when absent. */
  compression?: CompressionSpec;
}

export function caseConfig(c: SwarmCase): { config: ModelConfig; stages: [number, number][] } {
  const preset = loadPreset(c.preset);
  const stages = evenStages(preset.n_layers, c.stages);
  return { config: { ...runModelConfig({ preset: c.preset, stages, compression: c.compression }), batch_size: c.samples * c.rows }, stages };
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
    ...(c.compression ? { compression: c.compression } : {}),
    ...extra,
  };
}

/**
 * The weights one process reaches on the same samples (the whole batch per step), from its
 * checkpoint; with compression, through the stages and codecs as the swarm computes the model.
 */
export async function singleProcessWeights(c: SwarmCase): Promise<{ layout: ParamLayout; params: Float32Array }> {
  if (c.compression) return pipelineWeights(c, c.compression);
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

/** singleProcessWeights for a compressed run: one process, every stage, the run's codecs. */
export async function pipelineWeights(c: SwarmCase, codecs: CompressionSpec): Promise<{ layout: ParamLayout; params: Float32Array }> {
  const { config, stages } = caseConfig(c);
  const dataset = buildDataset(loadBrownCorpus(), byteTokenizer);
  const { states } = await trainPipeline({ config, stages, optim: trainRecipe(c.preset, c.rounds, c.lr), rows: c.rows, codecs, threads: 2, dataset, steps: c.rounds, seed: c.seed });
  const { layout, state } = assembleStages(config, stageSpans(stages).map((span, i) => ({ span, ...states[i] })));
  return { layout, params: state.params };
}

/** Relative error ‖a − b‖ / ‖b‖ of every tensor of the swarm's final model against the reference. */
export async function compareWithSingle(c: SwarmCase, dir: string, status: RunStatus, reference: { layout: ParamLayout; params: Float32Array }): Promise<Map<string, number>> {
  const { config, stages } = caseConfig(c);
  const { layout, state } = assembleStages(config, await readFinalStages(dir, status, stages, c.rounds));
  return relativeErrors(reference, (name) => layout.view(state.params, name));
}

/** Per tensor of the reference, ‖a − b‖ / ‖b‖ with a the tensor `weightOf` gives. */
export function relativeErrors(reference: { layout: ParamLayout; params: Float32Array }, weightOf: (name: string) => Float32Array): Map<string, number> {
  const errors = new Map<string, number>();
  for (const e of reference.layout.entries) {
    const a = weightOf(e.name);
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

/**
 * A fault for runCase: the first miner to finish a backward pass of round 1 is killed (SIGKILL),
 * so its gradient sum for the round dies with it and what it covered must be done again; a
 * newcomer joins at once and has to catch up to the current weights before it may work.
 */
export function killMidRound(): { onEvent: (swarm: LocalSwarm, miner: number, e: Record<string, unknown>) => void; killed: () => number; joined: () => Promise<number> | null } {
  let killed = -1;
  let joined: Promise<number> | null = null;
  return {
    onEvent: (swarm, m, e) => {
      if (killed >= 0 || e.event !== 'work' || e.round !== 1 || e.direction !== 'backward') return;
      killed = m;
      void swarm.killMiner(m, 'SIGKILL');
      joined = swarm.addMiner();
    },
    killed: () => killed,
    joined: () => joined,
  };
}

export interface Run {
  swarm: LocalSwarm;
  status: RunStatus;
  flags: { hotkey: string; kind: string; round: number | null; stage: number | null; evidence: Record<string, unknown> }[];
  events: { kind: string; hotkey: string | null; details: Record<string, unknown> }[];
  /** Each version's reported state hashes: {hotkey: hash}. */
  versions: { stage: number; rounds: number; reports: Record<string, string> }[];
}

/**
 * Runs the case with one miner per env (real processes); `onEvent` may inject failures. Answers the
 * final status and, from the orchestrator's database, the flags and events.
 */
export async function runCase(
  c: SwarmCase,
  dir: string,
  envs: NodeJS.ProcessEnv[],
  onEvent: (swarm: LocalSwarm, miner: number, e: Record<string, unknown>) => void = () => {},
  extra: Record<string, unknown> = {},
): Promise<Run> {
  const swarm: LocalSwarm = new LocalSwarm({ dir, spec: caseSpec(c, { heartbeat_timeout_s: 3, lease_ttl_s: 20, ...extra }), threadsPerMiner: 1, onMinerEvent: (m, e) => onEvent(swarm, m, e) });
  let status: RunStatus;
  try {
    await swarm.start();
    for (const env of envs) await swarm.addMiner(env);
    status = await swarm.waitFinished(undefined, 250);
  } finally {
    await swarm.close();
  }
  const db = await openDatabase(`sqlite:${join(dir, 'orchestrator.db')}`);
  try {
    const flags = (await db.db.selectFrom('flags').selectAll().orderBy('id').execute()).map((f) => ({ hotkey: f.hotkey, kind: f.kind, round: f.round, stage: f.stage, evidence: JSON.parse(f.evidence_json) as Record<string, unknown> }));
    const events = (await db.db.selectFrom('events').select(['kind', 'hotkey', 'details_json']).orderBy('id').execute()).map((e) => ({ kind: e.kind, hotkey: e.hotkey, details: JSON.parse(e.details_json) as Record<string, unknown> }));
    const versions = (await db.db.selectFrom('versions').selectAll().orderBy('rounds').orderBy('stage').execute()).map((v) => ({ stage: v.stage, rounds: v.rounds, reports: JSON.parse(v.reports_json) as Record<string, string> }));
    return { swarm, status, flags, events, versions };
  } finally {
    await db.close();
  }
}
