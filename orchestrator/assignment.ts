// Stage assignment: a new miner goes where the pipeline is thinnest. Capacity is measured in
// throughput, not heads, so one fast machine counts for as much as several slow ones; a stage
// at its miner limit takes nobody, and a miner is only given a stage whose training memory its
// reported memory can hold (the memory model of docs/ENGINE.md, "Memory and stage plans").
import type { Hardware } from '../orchestrator-client/protocol.ts';
import { runModelConfig } from '../worker/model/config.ts';
import { type MachineMemory, type StageNeed, checkFit, gb } from '../worker/model/machines.ts';
import { stageMemory } from '../worker/model/memory.ts';
import { spanOf } from '../worker/model/plan.ts';

export interface StageLoad {
  stage: number;
  miners: number;
  /** Sum of the miners' measured tokens/s. */
  tokensPerS: number;
}

export type AssignmentResult = { ok: true; stage: number } | { ok: false; reason: 'run_full' | 'stage_full' | 'no_such_stage' | 'too_small' };

/**
 * Picks the stage that most needs capacity: the lowest total throughput (a stage with no miner at
 * all first), ties to the fewest miners, then the lowest index. `maxPerStage` 0 means no limit.
 * `fits[s]` false rules stage s out (the miner cannot hold it); when no stage fits: 'too_small'.
 */
export function chooseStage(loads: StageLoad[], maxPerStage: number, fits?: readonly boolean[]): AssignmentResult {
  const held = loads.filter((l) => fits?.[l.stage] ?? true);
  if (held.length === 0) return { ok: false, reason: 'too_small' };
  const open = held.filter((l) => maxPerStage === 0 || l.miners < maxPerStage);
  if (open.length === 0) return { ok: false, reason: 'run_full' };
  const best = open.reduce((a, b) => {
    if ((a.miners === 0) !== (b.miners === 0)) return a.miners === 0 ? a : b;
    if (a.tokensPerS !== b.tokensPerS) return a.tokensPerS < b.tokensPerS ? a : b;
    if (a.miners !== b.miners) return a.miners < b.miners ? a : b;
    return a.stage < b.stage ? a : b;
  });
  return { ok: true, stage: best.stage };
}

/** A move asked for by a miner: to a named stage if it has room, else wherever is thinnest. */
export function chooseMove(loads: StageLoad[], maxPerStage: number, current: number | null, wanted?: number, fits?: readonly boolean[]): AssignmentResult {
  // The miner's own seat does not count against the stage it leaves.
  const without = loads.map((l) => (l.stage === current ? { ...l, miners: l.miners - 1 } : l));
  if (wanted === undefined) return chooseStage(without, maxPerStage, fits);
  const target = without.find((l) => l.stage === wanted);
  if (!target) return { ok: false, reason: 'no_such_stage' };
  if (!(fits?.[wanted] ?? true)) return { ok: false, reason: 'too_small' };
  if (maxPerStage !== 0 && target.miners >= maxPerStage) return { ok: false, reason: 'stage_full' };
  return { ok: true, stage: wanted };
}

/** A miner's memory as the memory model reads it. */
export const machineOf = (h: Hardware): MachineMemory => ({ device: h.device, memoryBytes: h.memory_bytes, acceleratorBytes: h.accelerator_memory_bytes });

/** What of a run decides its stages' memory (a RunSpec has it). */
export interface RunModel {
  preset: string;
  stages: readonly (readonly [number, number])[];
  compression?: { bottleneck_dim?: number };
  rows_per_sample: number;
}

const needsByRun = new Map<string, StageNeed[]>();

/**
 * The memory for training each stage of a run: its model (preset and bottlenecks), its split and
 * a step of one sample (rows_per_sample sequences), simulated once per distinct run and kept.
 */
export function runStageNeeds(run: RunModel): StageNeed[] {
  const key = JSON.stringify([run.preset, run.stages, run.compression?.bottleneck_dim ?? null, run.rows_per_sample]);
  let needs = needsByRun.get(key);
  if (!needs) {
    const config = runModelConfig(run);
    needs = run.stages.map((_, i) => stageMemory(config, spanOf(run.stages, i), run.rows_per_sample));
    needsByRun.set(key, needs);
  }
  return needs;
}

export interface StageFit {
  /** fits[s]: the miner can hold stage s. */
  fits: boolean[];
  /** Why the miner cannot hold stage s: its need against the miner's memory, as a sentence and as figures. */
  why(stage: number): { message: string; details: Record<string, unknown> };
  /** The same for the stage closest to fitting: the refusal when no stage fits. */
  refusal: { message: string; details: Record<string, unknown> };
}

/** Which stages of a run a miner's reported memory can hold, and the refusal when it holds none. */
export function stageFit(runId: string, run: RunModel, hardware: Hardware): StageFit {
  const machine = machineOf(hardware);
  const checks = runStageNeeds(run).map((need) => checkFit(need, machine));
  const shortfall = (stage: number): string => {
    const c = checks[stage];
    const reported = c.where === 'GPU memory' ? `${gb(hardware.accelerator_memory_bytes ?? 0)} of GPU memory` : `${gb(hardware.memory_bytes)} of memory`;
    return `needs ${gb(c.needBytes)} to train, and this miner reports ${reported} (${hardware.device}), of which training may use ${gb(c.usableBytes)}`;
  };
  const layers = (stage: number): string => `layers ${run.stages[stage][0]}-${run.stages[stage][1]}`;
  const why = (stage: number, message = `stage ${stage} of run ${runId} (${layers(stage)}) ${shortfall(stage)}`): { message: string; details: Record<string, unknown> } => {
    const c = checks[stage];
    return {
      message,
      details: { stage, need_bytes: c.needBytes, usable_bytes: c.usableBytes, memory: c.where, memory_bytes: hardware.memory_bytes, accelerator_memory_bytes: hardware.accelerator_memory_bytes ?? null },
    };
  };
  const closest = checks.reduce((best, c, i) => (c.needBytes - c.usableBytes < checks[best].needBytes - checks[best].usableBytes ? i : best), 0);
  return {
    fits: checks.map((x) => x.ok),
    why: (stage) => why(stage),
    refusal: why(closest, `no stage of run ${runId} fits this miner: the smallest, stage ${closest} (${layers(closest)}), ${shortfall(closest)}`),
  };
}
