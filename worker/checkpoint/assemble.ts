// A whole model from its stages: each stage's flat buffers (weights and AdamW moments) copied,
// tensor by tensor, into the whole model's layout, so a swarm's result is one checkpoint that
// `tah export` and held-out evaluation take like any other.
import type { ModelConfig } from '../model/config.ts';
import { ParamLayout } from '../model/params.ts';
import type { OptimState } from '../train/trainer.ts';
import { type StageSpan, wholeModel } from './checkpoint.ts';

export interface StageState {
  span: StageSpan;
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

/** The whole model's layout and state; throws unless the stages cover every layer exactly once. */
export function assembleStages(config: ModelConfig, stages: StageState[]): { layout: ParamLayout; state: OptimState } {
  const layout = new ParamLayout(config, wholeModel(config));
  const state: OptimState = { params: new Float32Array(layout.size), m: new Float32Array(layout.size), v: new Float32Array(layout.size) };
  const filled = new Set<string>();
  for (const s of stages) {
    const part = new ParamLayout(config, s.span);
    if (s.params.length !== part.size) throw new Error(`stage with layers ${s.span.layers.join('-')}: ${s.params.length} parameters, expected ${part.size}`);
    for (const e of part.entries) {
      if (filled.has(e.name)) throw new Error(`two stages hold ${e.name}`);
      filled.add(e.name);
      for (const k of ['params', 'm', 'v'] as const) layout.view(state[k], e.name).set(part.view(s[k], e.name));
    }
  }
  const missing = layout.entries.filter((e) => !filled.has(e.name));
  if (missing.length) throw new Error(`no stage holds ${missing.slice(0, 3).map((e) => e.name).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}`);
  return { layout, state };
}
