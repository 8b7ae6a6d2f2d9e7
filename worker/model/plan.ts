// Stage plans: a model cut into N contiguous layer ranges that balance the memory for training
// each (the first stage holds the embedding, the last the final norm and the head), each
// stage's memory (memory.ts), and which of the published minimum machines (machines.ts) holds it.
import type { StageSpan } from '../checkpoint/checkpoint.ts';
import type { ModelConfig } from './config.ts';
import { type MachineId, MINIMUM_MACHINES, type StageNeed, checkFit, fittingMachines } from './machines.ts';
import { type StageMemory, stageMemory } from './memory.ts';

export type LayerRange = [number, number];

export interface PlannedStage extends StageMemory {
  stage: number;
  /** The minimum machines that can hold this stage (machines.ts). */
  fits: MachineId[];
}

export const spanOf = (ranges: readonly (readonly [number, number])[], i: number): StageSpan => ({
  layers: [ranges[i][0], ranges[i][1]],
  hasEmbed: i === 0,
  hasHead: i === ranges.length - 1,
});

const NEED_KEYS = ['train_bytes', 'cuda_host_bytes', 'cuda_device_bytes'] as const;
const needOf = (m: StageNeed): StageNeed => ({ train_bytes: m.train_bytes, cuda_host_bytes: m.cuda_host_bytes, cuda_device_bytes: m.cuda_device_bytes });
const combine = (f: (k: (typeof NEED_KEYS)[number]) => number): StageNeed => ({ train_bytes: f('train_bytes'), cuda_host_bytes: f('cuda_host_bytes'), cuda_device_bytes: f('cuda_device_bytes') });

/**
 * Plans one model at one batch size. Simulations are cached per layer range, so asking for
 * several stage counts (smallestStageCount) simulates each range once.
 */
export class Planner {
  private readonly cache = new Map<string, StageMemory>();
  private estimates?: { base: StageNeed; layer: StageNeed[]; embed: StageNeed; head: StageNeed };

  constructor(
    readonly config: ModelConfig,
    readonly batch: number = config.batch_size,
  ) {}

  /** The memory of training one stage (simulated once per range). */
  memory(span: StageSpan): StageMemory {
    const key = `${span.layers[0]}-${span.layers[1]}-${span.hasEmbed ? 'e' : ''}${span.hasHead ? 'h' : ''}`;
    let m = this.cache.get(key);
    if (!m) {
      m = stageMemory(this.config, span, this.batch);
      this.cache.set(key, m);
    }
    return m;
  }

  /**
   * An additive estimate of any range's needs, from single-layer simulations: a fixed part (the
   * runtime, the graph's tables), each layer's own part (its parameters and activations; a
   * layer beside a bottleneck includes its encoder or decoder), and the embedding's and the
   * head's. Only the split uses it; the plan reports each stage's own simulation.
   */
  private estimate(span: StageSpan): StageNeed {
    const n = this.config.n_layers;
    if (!this.estimates) {
      const one = (i: number, hasEmbed = false, hasHead = false): StageNeed => needOf(this.memory({ layers: [i, i], hasEmbed, hasHead }));
      const first = one(0);
      const pair = n > 1 ? needOf(this.memory({ layers: [0, 1], hasEmbed: false, hasHead: false })) : first;
      // base = one layer − (two layers − one layer)
      const base = n > 1 ? combine((k) => 2 * first[k] - pair[k]) : combine(() => 0);
      const layer = Array.from({ length: n }, (_, i) => combine((k) => one(i)[k] - base[k]));
      const embedded = one(0, true);
      const headed = one(n - 1, false, true);
      const last = one(n - 1);
      this.estimates = { base, layer, embed: combine((k) => embedded[k] - first[k]), head: combine((k) => headed[k] - last[k]) };
    }
    const e = this.estimates;
    return combine((k) => {
      let v = e.base[k] + (span.hasEmbed ? e.embed[k] : 0) + (span.hasHead ? e.head[k] : 0);
      for (let i = span.layers[0]; i <= span.layers[1]; i++) v += e.layer[i][k];
      return v;
    });
  }

  /**
   * N contiguous layer ranges that minimise the largest stage's training memory (then the spread
   * between stages): dynamic programming over the additive estimate, then each cut moved a layer
   * either way while the stages' own simulations say it helps (a stage's peak is not a sum: the
   * first stage's, say, is reached at the end of its backward, when its gradients are all out).
   */
  split(stages: number): LayerRange[] {
    return this.refine(this.estimatedSplit(stages));
  }

  /** Hill-climbs a split on simulated memory: a cut moves by one layer while the largest stage (then the sum of squares) shrinks. */
  private refine(start: LayerRange[]): LayerRange[] {
    const n = this.config.n_layers;
    const score = (cuts: number[]): [number, number] => {
      const needs = this.rangesOf(cuts).map((_, i, all) => this.memory(spanOf(all, i)).train_bytes / 2 ** 30);
      return [Math.max(...needs), needs.reduce((a, x) => a + x * x, 0)];
    };
    const better = (a: [number, number], b: [number, number]): boolean => a[0] < b[0] - 1e-9 || (Math.abs(a[0] - b[0]) <= 1e-9 && a[1] < b[1] - 1e-9);
    // cuts[i]: the first layer of stage i + 1.
    let cuts = start.slice(1).map((r) => r[0]);
    let best = score(cuts);
    for (let moved = true; moved; ) {
      moved = false;
      for (let i = 0; i < cuts.length; i++) {
        for (const step of [-1, 1]) {
          const c = [...cuts];
          c[i] += step;
          if (c[i] <= (i === 0 ? 0 : c[i - 1]) || c[i] >= (i === cuts.length - 1 ? n : c[i + 1])) continue;
          const sc = score(c);
          if (better(sc, best)) [cuts, best, moved] = [c, sc, true];
        }
      }
    }
    return this.rangesOf(cuts);
  }

  private rangesOf(cuts: number[]): LayerRange[] {
    const bounds = [0, ...cuts, this.config.n_layers];
    return bounds.slice(0, -1).map((from, i): LayerRange => [from, bounds[i + 1] - 1]);
  }

  /** The split that is best by the additive estimate (dynamic programming). */
  private estimatedSplit(stages: number): LayerRange[] {
    const n = this.config.n_layers;
    if (!Number.isInteger(stages) || stages < 1 || stages > n) throw new Error(`cannot split ${n} layers into ${stages} stages (1 to ${n})`);
    if (stages === 1) return [[0, n - 1]];
    type Best = { max: number; sq: number; cuts: number[] } | null;
    const cost = (from: number, to: number, k: number): number => this.estimate({ layers: [from, to], hasEmbed: from === 0, hasHead: k === stages - 1 }).train_bytes / 2 ** 30;
    // best[k][j]: layers [0, j) in k + 1 stages, the (k+1)-th ending at layer j − 1.
    const best: Best[][] = Array.from({ length: stages }, () => new Array<Best>(n + 1).fill(null));
    for (let j = 1; j <= n - stages + 1; j++) {
      const c = cost(0, j - 1, 0);
      best[0][j] = { max: c, sq: c * c, cuts: [j] };
    }
    for (let k = 1; k < stages; k++) {
      for (let j = k + 1; j <= n; j++) {
        if (k === stages - 1 && j !== n) continue;
        for (let i = k; i < j; i++) {
          const prev = best[k - 1][i];
          if (!prev) continue;
          const c = cost(i, j - 1, k);
          const cand = { max: Math.max(prev.max, c), sq: prev.sq + c * c, cuts: [...prev.cuts, j] };
          const cur = best[k][j];
          if (!cur || cand.max < cur.max - 1e-9 || (Math.abs(cand.max - cur.max) <= 1e-9 && cand.sq < cur.sq)) best[k][j] = cand;
        }
      }
    }
    const cuts = best[stages - 1][n]!.cuts;
    return cuts.map((end, i): LayerRange => [i === 0 ? 0 : cuts[i - 1], end - 1]);
  }

  /** Every stage of a split, with its memory and the minimum machines that hold it. */
  plan(ranges: readonly (readonly [number, number])[]): PlannedStage[] {
    return ranges.map((_, i) => {
      const m = this.memory(spanOf(ranges, i));
      return { stage: i, ...m, fits: fittingMachines(m) };
    });
  }

  /**
   * The fewest stages for which every stage of the balanced split (the one `tah plan --stages N`
   * prints) fits the machine, with that plan; null when even one layer per stage does not fit.
   */
  smallestStageCount(machine: MachineId): { stages: number; plan: PlannedStage[] } | null {
    const m = MINIMUM_MACHINES.find((x) => x.id === machine)!.memory;
    for (let stages = 1; stages <= this.config.n_layers; stages++) {
      const ranges = this.split(stages);
      // The estimate rules out most counts without simulating their stages; 5 % is its margin.
      const margin = (need: StageNeed): StageNeed => combine((k) => need[k] * 0.95);
      if (!ranges.every((_, i) => checkFit(margin(this.estimate(spanOf(ranges, i))), m).ok)) continue;
      const plan = this.plan(ranges);
      if (plan.every((s) => s.fits.includes(machine))) return { stages, plan };
    }
    return null;
  }
}
