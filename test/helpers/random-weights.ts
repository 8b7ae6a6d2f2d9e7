// Deterministic random model weights for tests: matrices N(0, 0.02), norms 1 (MODEL.md's init).
import { expectedParameterShapes, wholeModel, type StageSpan, type TensorMap } from '../../worker/checkpoint/checkpoint.ts';
import type { ModelConfig } from '../../worker/model/config.ts';

/** A seeded standard-normal generator (mulberry32 + Box-Muller). */
export function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 2 ** 32; // in (0, 1): safe for log
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

export function randomWeights(config: ModelConfig, seed = 1, span: StageSpan = wholeModel(config)): TensorMap {
  const normal = gaussian(seed);
  const out: TensorMap = new Map();
  for (const [name, shape] of expectedParameterShapes(config, span)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (shape.length === 1) data.fill(1);
    else for (let i = 0; i < data.length; i++) data[i] = 0.02 * normal();
    out.set(name, { shape, data });
  }
  return out;
}
