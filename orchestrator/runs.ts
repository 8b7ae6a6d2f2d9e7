// Runs: what the operator defines (model preset, stage split, round size, timing, admission),
// checked against the model before anything is stored.
import { type ModelConfig, PRESET_NAMES, loadPreset, runModelConfig } from '../worker/model/config.ts';
import { type RunSpec, RunSpecSchema } from '../orchestrator-client/protocol.ts';

export interface CheckedRun {
  spec: RunSpec;
  config: ModelConfig;
}

/** Parses a run specification and checks its stage split against the preset's layers. */
export function checkRunSpec(value: unknown): CheckedRun {
  const r = RunSpecSchema.safeParse(value);
  if (!r.success) throw new Error(`invalid run: ${r.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ')}`);
  const spec = r.data;
  if (!(PRESET_NAMES as readonly string[]).includes(spec.preset)) throw new Error(`invalid run: preset must be one of ${PRESET_NAMES.join(', ')}, got '${spec.preset}'`);
  const config = loadPreset(spec.preset);
  let next = 0;
  for (const [i, [first, last]] of spec.stages.entries()) {
    if (first !== next || last < first) throw new Error(`invalid run: stage ${i} covers layers ${first}-${last}; stages must be contiguous, starting at layer ${next}`);
    next = last + 1;
  }
  if (next !== config.n_layers) throw new Error(`invalid run: stages cover layers 0-${next - 1}, the ${spec.preset} model has ${config.n_layers}`);
  try {
    return { spec, config: runModelConfig(spec) };
  } catch (e) {
    throw new Error(`invalid run: compression: ${(e as Error).message}`, { cause: e });
  }
}

/** An even split of n layers into k contiguous stages (earlier stages take the remainder). */
export function evenStages(nLayers: number, k: number): [number, number][] {
  if (!Number.isInteger(k) || k < 1 || k > nLayers) throw new Error(`cannot split ${nLayers} layers into ${k} stages`);
  const out: [number, number][] = [];
  let first = 0;
  for (let i = 0; i < k; i++) {
    const size = Math.floor(nLayers / k) + (i < nLayers % k ? 1 : 0);
    out.push([first, first + size - 1]);
    first += size;
  }
  return out;
}

/** [0, n) cut into k contiguous, nearly equal ranges (the all-reduce's slices). */
export function splitRange(n: number, k: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < k; i++) out.push([Math.floor((i * n) / k), Math.floor(((i + 1) * n) / k)]);
  return out;
}

/**
 * Slices of a stage's all-reduce among C contributors: C/2 when C is even (each slice reduced by
 * one pair of replicas, so each replica reduces one slice), otherwise C (each replica reduces two).
 */
export function sliceCount(contributors: number): number {
  return contributors >= 2 && contributors % 2 === 0 ? contributors / 2 : contributors;
}
