// Stage assignment: a new miner goes where the pipeline is thinnest. Capacity is measured in
// throughput, not heads, so one fast machine counts for as much as several slow ones; a stage
// at its miner limit takes nobody.

export interface StageLoad {
  stage: number;
  miners: number;
  /** Sum of the miners' measured tokens/s. */
  tokensPerS: number;
}

export type AssignmentResult = { ok: true; stage: number } | { ok: false; reason: 'run_full' | 'stage_full' | 'no_such_stage' };

/**
 * Picks the stage that most needs capacity: the lowest total throughput (a stage with no miner at
 * all first), ties to the fewest miners, then the lowest index. `maxPerStage` 0 means no limit.
 */
export function chooseStage(loads: StageLoad[], maxPerStage: number): AssignmentResult {
  const open = loads.filter((l) => maxPerStage === 0 || l.miners < maxPerStage);
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
export function chooseMove(loads: StageLoad[], maxPerStage: number, current: number | null, wanted?: number): AssignmentResult {
  // The miner's own seat does not count against the stage it leaves.
  const without = loads.map((l) => (l.stage === current ? { ...l, miners: l.miners - 1 } : l));
  if (wanted === undefined) return chooseStage(without, maxPerStage);
  const target = without.find((l) => l.stage === wanted);
  if (!target) return { ok: false, reason: 'no_such_stage' };
  if (maxPerStage !== 0 && target.miners >= maxPerStage) return { ok: false, reason: 'stage_full' };
  return { ok: true, stage: wanted };
}
