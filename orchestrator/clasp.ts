// CLASP: contribution loss assessment by sampling pathways. A sample's loss depends on every miner
// it passed through, one per stage, and samples are spread over the miners at random, so the
// miners' effects can be told apart: we fit
//
//     loss(s) = round mean(s) + Σ_stages effect[stage][miner of s at that stage] + noise
//
// by least squares (the round means take out training progress; each stage's effects sum to zero
// over its samples) and flag a miner whose effect is significantly above zero: a one-sided z-test
// against the noise the fit leaves, at a family-wise error rate shared by every miner tested
// (Bonferroni), and at least `minEffect` nats, so that tiny real differences between honest
// devices are never flagged. docs/VALIDATION.md explains the method and its limits.
import { probit } from 'simple-statistics';

export interface PathwaySample {
  /** The sample's loss at the last stage. */
  loss: number;
  /** What the loss is compared within: the round (weights change between rounds). */
  group: number;
  /** The miner that computed the sample at each stage, stage order. */
  miners: string[];
}

export interface ClaspOptions {
  /** Family-wise false-flag rate over all miners tested (default 0.001). */
  alpha?: number;
  /** Smallest effect worth flagging, in loss units (default 0.02). */
  minEffect?: number;
  /** Miners with fewer samples at a stage are estimated but not tested (default 8). */
  minSamples?: number;
  /** Backfitting sweeps (default 50; the fit converges in a few for balanced data). */
  sweeps?: number;
}

export interface MinerEffect {
  miner: string;
  stage: number;
  samples: number;
  /** Extra loss of the samples that passed through this miner, against its stage's average. */
  effect: number;
  /** Its standard error, and effect / se. */
  se: number;
  z: number;
  tested: boolean;
  flagged: boolean;
}

export interface ClaspResult {
  effects: MinerEffect[];
  /** The noise left after the fit (standard deviation of a sample's loss). */
  sigma: number;
  /** The z a tested miner had to exceed. */
  threshold: number;
}

export function clasp(samples: PathwaySample[], opts: ClaspOptions = {}): ClaspResult {
  const { alpha = 0.001, minEffect = 0.02, minSamples = 8, sweeps = 50 } = opts;
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`clasp: alpha must be in (0, 1), got ${alpha}`);
  const stages = samples[0]?.miners.length ?? 0;
  for (const [i, s] of samples.entries()) {
    if (!Number.isFinite(s.loss)) throw new Error(`clasp: sample ${i} has loss ${s.loss}`);
    if (s.miners.length !== stages) throw new Error(`clasp: sample ${i} passed ${s.miners.length} stages, sample 0 passed ${stages}`);
  }
  // Loss against its round's mean.
  const byGroup = new Map<number, { sum: number; n: number }>();
  for (const s of samples) {
    const g = byGroup.get(s.group) ?? { sum: 0, n: 0 };
    g.sum += s.loss;
    g.n += 1;
    byGroup.set(s.group, g);
  }
  const centred = samples.map((s) => s.loss - byGroup.get(s.group)!.sum / byGroup.get(s.group)!.n);

  // Backfitting: each stage's effects are the mean of what the other stages leave unexplained.
  const effects = Array.from({ length: stages }, () => new Map<string, number>());
  const counts = Array.from({ length: stages }, () => new Map<string, number>());
  for (const s of samples) s.miners.forEach((m, k) => counts[k].set(m, (counts[k].get(m) ?? 0) + 1));
  const fitted = (s: PathwaySample, skip: number): number => s.miners.reduce((a, m, k) => (k === skip ? a : a + (effects[k].get(m) ?? 0)), 0);
  for (let sweep = 0; sweep < sweeps; sweep++) {
    let moved = 0;
    for (let k = 0; k < stages; k++) {
      const sums = new Map<string, number>();
      samples.forEach((s, i) => sums.set(s.miners[k], (sums.get(s.miners[k]) ?? 0) + centred[i] - fitted(s, k)));
      let mean = 0;
      for (const sum of sums.values()) mean += sum;
      mean /= samples.length;
      for (const [m, sum] of sums) {
        const next = sum / counts[k].get(m)! - mean;
        moved = Math.max(moved, Math.abs(next - (effects[k].get(m) ?? 0)));
        effects[k].set(m, next);
      }
    }
    if (moved < 1e-12) break;
  }

  const params = byGroup.size + counts.reduce((a, c) => a + c.size - 1, 0);
  const rss = samples.reduce((a, s, i) => a + (centred[i] - fitted(s, -1)) ** 2, 0);
  const sigma = Math.sqrt(rss / Math.max(1, samples.length - params));
  const out: MinerEffect[] = [];
  for (let k = 0; k < stages; k++) {
    for (const [miner, effect] of effects[k]) {
      const n = counts[k].get(miner)!;
      // A miner's effect is a contrast with its stage's average, which it is part of.
      const se = sigma * Math.sqrt(Math.max(1 / n - 1 / samples.length, 1e-12));
      out.push({ miner, stage: k, samples: n, effect, se, z: se > 0 ? effect / se : 0, tested: n >= minSamples, flagged: false });
    }
  }
  const tested = out.filter((e) => e.tested).length;
  const threshold = tested > 0 ? probit(1 - alpha / tested) : Infinity;
  for (const e of out) e.flagged = e.tested && e.z > threshold && e.effect >= minEffect;
  return { effects: out, sigma, threshold };
}
