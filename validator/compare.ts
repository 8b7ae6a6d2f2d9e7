// How a validator compares its re-run with what a miner sent: one relative error per tensor,
// measured against the validator's own result, and the verdict from the run's tolerances.

/**
 * ‖theirs − mine‖ / ‖mine‖ (1e30 when theirs holds a value that is not finite, or mine is zero
 * and theirs is not). Relative L2: device rounding spreads thinly over every value, while a
 * cheat (noise, scaling, a replay, a copy) moves the whole vector.
 */
export function relativeError(mine: Float32Array, theirs: Float32Array): number {
  if (mine.length !== theirs.length) return 1e30;
  let num = 0;
  let den = 0;
  for (let i = 0; i < mine.length; i++) {
    const t = theirs[i];
    if (!Number.isFinite(t)) return 1e30;
    num += (t - mine[i]) ** 2;
    den += mine[i] * mine[i];
  }
  if (den === 0) return num === 0 ? 0 : 1e30;
  return Math.sqrt(num / den);
}

export interface Findings {
  /** The largest relative error over the tensors compared. */
  error: number;
  /** |loss re-run − loss reported|, where a loss was compared. */
  lossDiff?: number;
  /** What was wrong, for people; empty when nothing was. */
  problems: string[];
}

/** The verdict: pass when every error is within the tolerances. */
export function judge(f: Findings, tolerance: number, lossTolerance: number): 'pass' | 'fail' {
  if (f.problems.length > 0) return 'fail';
  if (!(f.error <= tolerance)) return 'fail';
  if (f.lossDiff !== undefined && !(f.lossDiff <= lossTolerance)) return 'fail';
  return 'pass';
}
