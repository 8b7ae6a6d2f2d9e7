// Scores and reward shares of an epoch, and how often a miner's work is checked: plain functions
// of what the database recorded, so the rules are read and tested in one place.
import type { ValidationSpec } from '../orchestrator-client/protocol.ts';
import type { RewardsTable } from './db/schema.ts';

/** What one miner did in an epoch, as recorded. */
export interface EpochWork {
  hotkey: string;
  /** Compute-weighted work items done (see workCost). */
  work: number;
  /** Checks of its work in the epoch that passed and failed. */
  passed: number;
  failed: number;
  /** Rounds of the epoch in which it completed work. */
  activeRounds: number;
  /** Whether any check of its work has passed yet, in this epoch or before. */
  vouched: boolean;
  /** Why it is excluded (a flag at or before the epoch's close), or null. */
  excluded: string | null;
}

/** A miner's line of an epoch, as the rewards table keeps it. */
export type EpochScore = Omit<RewardsTable, 'run_id' | 'epoch'>;

/**
 * A work item's compute cost: forward 1, backward 2 (the usual ratio of their FLOPs), the last
 * stage's forward 3 (it runs its backward too), a redo 2 or 3 likewise, scaled by the stage's
 * share of the model's parameters, which its FLOPs per token follow.
 */
export function workCost(direction: string, last: boolean, stageParams: number, modelParams: number): number {
  const passes = direction === 'forward' ? (last ? 3 : 1) : direction === 'backward' ? 2 : direction === 'redo' ? (last ? 3 : 2) : 0;
  return (passes * stageParams) / modelParams;
}

/**
 * Scores: work × liveness (the fraction of the epoch's rounds it worked in), for miners that are
 * not excluded and whose work has passed at least one check — nothing for merely being
 * registered, never a negative score. Shares are scores over their sum (all 0 when nobody scores).
 */
export function scoreEpoch(miners: readonly EpochWork[], epochRounds: number): EpochScore[] {
  const lines = miners.map((m): EpochScore => {
    const liveness = Math.min(1, m.activeRounds / epochRounds);
    const base = { hotkey: m.hotkey, work: m.work, passed: m.passed, failed: m.failed, liveness, share: 0 };
    if (m.excluded !== null) return { ...base, score: 0, reason: m.excluded };
    if (m.work <= 0) return { ...base, score: 0, reason: 'no work done in this epoch' };
    if (!m.vouched) return { ...base, score: 0, reason: 'no check of its work has passed yet' };
    return { ...base, score: m.work * liveness, reason: liveness < 1 ? `worked in ${m.activeRounds} of ${epochRounds} rounds` : null };
  });
  const total = lines.reduce((a, l) => a + l.score, 0);
  if (total > 0) for (const l of lines) l.share = l.score / total;
  return lines.sort((a, b) => b.score - a.score || a.hotkey.localeCompare(b.hotkey));
}

/**
 * The probability that a miner's next work item is checked: 1 while it is flagged, else
 * max(rate, probation / (probation + checks it passed)) — newcomers are checked often, seasoned
 * miners at the base rate. The draw is the orchestrator's (crypto randomness), after the work is
 * in, so a miner cannot know which of its items will be checked. Probation 0: the base rate from
 * the start.
 */
export function checkProbability(v: Pick<ValidationSpec, 'rate' | 'probation'>, passed: number, flagged: boolean): number {
  if (flagged) return 1;
  return Math.min(1, Math.max(v.rate, v.probation > 0 ? v.probation / (v.probation + passed) : 0));
}
