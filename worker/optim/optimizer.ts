// AdamW as its own graph over a stage's flat buffers, for when gradients come from elsewhere
// (several micro-batches, or a pipeline whose global gradient norm spans stages). The update
// reads the current buffers and writes the next ones; callers swap them.
import { Graph, type FloatType, type Value } from '../engine/graph.ts';
import { CompiledGraph, type SessionOptions } from '../engine/session.ts';
import type { FloatArray, ParamLayout } from '../model/params.ts';
import { type AdamWConfig, STEP_SCALARS, adamwUpdate, scalarValues, stepScalars } from './adamw.ts';

export interface AdamWState<T extends FloatArray = FloatArray> {
  params: T;
  m: T;
  v: T;
}

export class StageOptimizer {
  private constructor(
    readonly layout: ParamLayout,
    readonly config: AdamWConfig,
    private readonly floatType: FloatType,
    private readonly session: CompiledGraph,
  ) {}

  static async create(layout: ParamLayout, config: AdamWConfig, opts: SessionOptions & { floatType?: FloatType } = {}): Promise<StageOptimizer> {
    const floatType = opts.floatType ?? 'float32';
    const g = new Graph(floatType);
    const seg = (name: string, size: number): Value => g.input(name, floatType, [size]);
    const sizes = { decay: layout.decayed, nodecay: layout.size - layout.decayed };
    const part = (kind: 'decay' | 'nodecay') => ({
      param: seg(`params.${kind}`, sizes[kind]),
      grad: seg(`grad.${kind}`, sizes[kind]),
      m: seg(`m.${kind}`, sizes[kind]),
      v: seg(`v.${kind}`, sizes[kind]),
      decay: kind === 'decay',
    });
    const segments = [part('decay'), part('nodecay')];
    const scalars = g.input('scalars', floatType, [STEP_SCALARS]);
    const clip = g.reshape(g.input('clip', floatType, [1]), []);
    const updated = adamwUpdate(g, segments, scalarValues(g, scalars, clip), config);
    updated.forEach((u, i) => {
      const kind = i === 0 ? 'decay' : 'nodecay';
      g.output(`next.params.${kind}`, u.param);
      g.output(`next.m.${kind}`, u.m);
      g.output(`next.v.${kind}`, u.v);
    });
    return new StageOptimizer(layout, config, floatType, await CompiledGraph.create(g, opts));
  }

  /**
   * Optimizer step t (1-based) with learning rate lr; `clip` scales the gradient (1 for none,
   * clipCoefficient() of the global norm otherwise). Writes the new state into `next`.
   */
  async step(cur: AdamWState, grads: FloatArray, next: AdamWState, t: number, lr: number, clip: number): Promise<void> {
    const make = (xs: number[]): FloatArray => (this.floatType === 'float32' ? Float32Array.from(xs) : Float64Array.from(xs));
    const { layout } = this;
    await this.session.run(
      { ...layout.feeds({ params: cur.params, grad: grads, m: cur.m, v: cur.v }), scalars: make(stepScalars(t, lr, this.config)), clip: make([clip]) },
      layout.feeds({ params: next.params, m: next.m, v: next.v }, 'next.'),
    );
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
