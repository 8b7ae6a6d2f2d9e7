// `tah bench newcomer`: what sharing the optimizer state buys a miner that joins mid-run. Two
// local-steps swarms, the same in all but one thing: a newcomer that joins at round J loads the
// stage's inner AdamW moments and step count ('shared') or starts them from zero ('fresh').
// Reported for each: the loss after the run, and how many rounds until the newcomer's own samples
// train as well as the old-timers' (its mean sample loss within 2% of theirs). In exact mode there
// is nothing to compare: every replica holds the same state, and a newcomer's first update is an
// old-timer's (tested: the same state hash).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../orchestrator/db/open.ts';
import { loadPreset } from '../../worker/model/config.ts';
import { toOptimizerSpec } from '../../worker/optim/adamw.ts';
import type { Output } from '../output.ts';
import { LocalSwarm } from '../swarm/local-swarm.ts';
import { trainRecipe } from './train.ts';

export interface BenchNewcomerFlags {
  preset: string;
  replicas: number;
  rounds: number;
  join: number;
  localSteps: number;
}

export interface NewcomerArm {
  newcomer_state: 'shared' | 'fresh';
  /** Mean training loss of the last five rounds, all miners. */
  final_loss: number;
  /** Rounds after joining until the newcomer's mean sample loss over 3 rounds is within 2% of the old-timers' (null: never). */
  rounds_to_match: number | null;
  /** The newcomer's mean sample loss over the old-timers' in its first 10 rounds. */
  first_rounds_ratio: number;
  /** Per round from the join: the newcomer's mean sample loss over the old-timers'. */
  loss_ratio_by_round: number[];
  wall_s: number;
}

async function arm(flags: BenchNewcomerFlags, state: 'shared' | 'fresh'): Promise<NewcomerArm> {
  const config = loadPreset(flags.preset);
  const dir = await mkdtemp(join(tmpdir(), 'tah-bench-newcomer-'));
  const started = performance.now();
  let joined: Promise<number> | null = null;
  let newcomer = '';
  const swarm: LocalSwarm = new LocalSwarm({
    dir,
    spec: {
      id: 'bench',
      preset: flags.preset,
      stages: [[0, config.n_layers - 1]],
      samples_per_round: (flags.replicas + 1) * 2,
      rows_per_sample: Math.max(1, Math.floor((config.batch_size * 4) / ((flags.replicas + 1) * 2))),
      rounds: flags.rounds,
      seed: 1,
      snapshot_every: flags.localSteps,
      optimizer: toOptimizerSpec(trainRecipe(flags.preset, flags.rounds)),
      mode: 'local',
      local: { steps: flags.localSteps, newcomer_state: state },
    },
    threadsPerMiner: 1,
    onMinerEvent: (_m, e) => {
      if (!joined && e.event === 'applied' && e.version === flags.join) joined = swarm.addMiner();
    },
  });
  try {
    await swarm.start();
    for (let i = 0; i < flags.replicas; i++) await swarm.addMiner();
    const status = await swarm.waitFinished(undefined, 250);
    if (status.status !== 'finished') throw new Error(`the ${state} run did not finish (${status.status})`);
    if (!joined) throw new Error(`the run ended before round ${flags.join}: no newcomer joined`);
    newcomer = swarm.miners[await joined].hotkey ?? '';
    await swarm.close();
    // Each sample's loss and who computed it (one stage: its forward item).
    const db = await openDatabase(`sqlite:${join(dir, 'orchestrator.db')}`);
    const rows = await db.db
      .selectFrom('samples')
      .innerJoin('work_items', (j) => j.onRef('work_items.sample_id', '=', 'samples.id').onRef('work_items.run_id', '=', 'samples.run_id'))
      .select(['samples.round as round', 'samples.loss as loss', 'work_items.completed_by as by'])
      .where('work_items.direction', '=', 'forward')
      .where('work_items.status', '=', 'done')
      .execute();
    await db.close();
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const ratios: number[] = [];
    for (let r = flags.join; r < flags.rounds; r++) {
      const mine = rows.filter((x) => Number(x.round) === r && x.by === newcomer).map((x) => Number(x.loss));
      const theirs = rows.filter((x) => Number(x.round) === r && x.by !== newcomer).map((x) => Number(x.loss));
      if (mine.length > 0 && theirs.length > 0) ratios.push(mean(mine) / mean(theirs));
    }
    // Per-round ratios are noisy (each miner has its own samples): judged over 3 rounds.
    const matched = ratios.findIndex((_, i) => i >= 2 && mean(ratios.slice(i - 2, i + 1)) <= 1.02);
    const last = status.losses.slice(-5).map((l) => l.loss ?? NaN);
    return { newcomer_state: state, final_loss: mean(last), rounds_to_match: matched < 0 ? null : matched, first_rounds_ratio: mean(ratios.slice(0, 10)), loss_ratio_by_round: ratios, wall_s: (performance.now() - started) / 1000 };
  } finally {
    await swarm.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function benchNewcomerCommand(flags: BenchNewcomerFlags, out: Output): Promise<NewcomerArm[]> {
  if (flags.join >= flags.rounds) throw new Error(`--join ${flags.join} must come before the last round (${flags.rounds})`);
  const bar = out.progress('newcomer', 2);
  const arms: NewcomerArm[] = [];
  for (const [i, state] of (['shared', 'fresh'] as const).entries()) {
    bar.update(i, `${state} optimizer state`);
    const a = await arm(flags, state);
    arms.push(a);
    out.event('arm', { ...a });
  }
  bar.update(2, 'done');
  bar.stop();
  const line = (a: NewcomerArm): string =>
    `${a.newcomer_state.padEnd(7)} final loss ${a.final_loss.toFixed(4)}  newcomer's loss over the old-timers' in its first 10 rounds ${a.first_rounds_ratio.toFixed(3)}; within 2% (over 3 rounds) after ${a.rounds_to_match ?? 'never'} rounds`;
  out.summary(
    { preset: flags.preset, replicas: flags.replicas, rounds: flags.rounds, join: flags.join, local_steps: flags.localSteps, arms },
    [`preset ${flags.preset}, ${flags.replicas} replicas + a newcomer at round ${flags.join}, ${flags.rounds} rounds, merging every ${flags.localSteps}`, ...arms.map(line)].join('\n'),
  );
  return arms;
}
