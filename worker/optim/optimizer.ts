// A stage's AdamW: the run's recipe bound to the stage's layout (where the decayed matrices end),
// for gradients that come from elsewhere (several micro-batches, or a pipeline whose global
// gradient norm spans stages).
import type { FloatArray, ParamLayout } from '../model/params.ts';
import { type AdamWConfig, type AdamWState, adamwStep } from './adamw.ts';

export type { AdamWState } from './adamw.ts';

export class StageOptimizer {
  constructor(
    readonly layout: ParamLayout,
    readonly config: AdamWConfig,
  ) {}

  /**
   * Optimizer step t (1-based) with learning rate lr; `clip` scales the gradient (1 for none,
   * clipCoefficient() of the global norm otherwise). Writes the new state into `next`, which may
   * be `cur` itself.
   */
  step<T extends FloatArray>(cur: AdamWState<T>, grads: T, next: AdamWState<T>, t: number, lr: number, clip: number): void {
    if (cur.params.length !== this.layout.size) throw new Error(`AdamW: ${cur.params.length} parameters for a stage of ${this.layout.size}`);
    adamwStep(cur, grads, next, this.layout.decayed, t, lr, clip, this.config);
  }
}
