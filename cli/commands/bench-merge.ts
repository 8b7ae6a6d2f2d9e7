// `tah bench merge`: bytes each miner moves to merge a round (share, redundant reduce, apply),
// against the size of its stage, for several replica counts in the same run. A one-stage swarm
// of real miner processes, so nothing but the merge crosses the network: what the miners count
// is what the merge costs. The peer is the naive merge, where every replica downloads every
// other replica's whole gradient: (R − 1) × stage bytes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../orchestrator/db/open.ts';
import { ParamLayout } from '../../worker/model/params.ts';
import { loadPreset } from '../../worker/model/config.ts';
import { toOptimizerSpec } from '../../worker/optim/adamw.ts';
import type { Output } from '../output.ts';
import { LocalSwarm } from '../swarm/local-swarm.ts';
import { trainRecipe } from './train.ts';

export interface BenchMergeFlags {
  preset: string;
  replicas: number[];
  rounds: number;
}

export interface MergeMeasurement {
  replicas: number;
  stage_bytes: number;
  /** Merge bytes (up + down) per miner per round, and that over the stage's bytes. */
  bytes_per_miner_round: number;
  ratio: number;
  /** The naive merge's ratio: every replica downloads every other replica's gradient. */
  naive_ratio: number;
  wall_s: number;
}

/** One run of `replicas` miners holding the whole model (one stage) for `rounds` rounds. */
async function measure(preset: string, replicas: number, rounds: number): Promise<MergeMeasurement> {
  const config = loadPreset(preset);
  const stageBytes = 4 * new ParamLayout(config, { layers: [0, config.n_layers - 1], hasEmbed: true, hasHead: true }).size;
  const dir = await mkdtemp(join(tmpdir(), 'tah-bench-merge-'));
  const bytes = new Map<number, { up: number; down: number }>();
  const started = performance.now();
  const swarm = new LocalSwarm({
    dir,
    spec: {
      id: 'bench',
      preset,
      stages: [[0, config.n_layers - 1]],
      samples_per_round: replicas * 2,
      rows_per_sample: 1,
      rounds,
      seed: 1,
      optimizer: toOptimizerSpec(trainRecipe(preset, rounds, 1e-3)),
    },
    threadsPerMiner: 1,
    onMinerEvent: (m, e) => {
      if (e.event === 'throughput') bytes.set(m, { up: Number(e.bytes_up), down: Number(e.bytes_down) });
    },
  });
  try {
    await swarm.start();
    for (let i = 0; i < replicas; i++) await swarm.addMiner();
    const status = await swarm.waitFinished(undefined, 250);
    if (status.status !== 'finished') throw new Error(`the run with ${replicas} replicas did not finish (${status.status})`);
    await swarm.close();
    // The stage's final state is stored once; it is not part of any round's merge.
    const db = await openDatabase(`sqlite:${join(dir, 'orchestrator.db')}`);
    const snapshots = await db.db.selectFrom('snapshots').select('bytes').where('status', '=', 'done').execute();
    await db.close();
    const stored = snapshots.reduce((n, s) => n + Number(s.bytes), 0);
    const total = [...bytes.values()].reduce((n, b) => n + b.up + b.down, 0) - stored;
    const perMinerRound = total / replicas / rounds;
    return { replicas, stage_bytes: stageBytes, bytes_per_miner_round: perMinerRound, ratio: perMinerRound / stageBytes, naive_ratio: replicas - 1, wall_s: (performance.now() - started) / 1000 };
  } finally {
    await swarm.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function benchMergeCommand(flags: BenchMergeFlags, out: Output): Promise<MergeMeasurement[]> {
  const results: MergeMeasurement[] = [];
  const bar = out.progress('merge', flags.replicas.length);
  for (const [i, r] of flags.replicas.entries()) {
    bar.update(i, `${r} replicas`);
    const m = await measure(flags.preset, r, flags.rounds);
    results.push(m);
    out.event('measurement', { ...m });
  }
  bar.update(flags.replicas.length, 'done');
  bar.stop();
  const table = [
    'replicas  merge bytes per miner per round  ÷ stage bytes  naive (R−1)',
    ...results.map((m) => `${String(m.replicas).padStart(8)}  ${(m.bytes_per_miner_round / 2 ** 20).toFixed(2).padStart(26)} MiB  ${m.ratio.toFixed(2).padStart(13)}  ${m.naive_ratio.toFixed(2).padStart(11)}`),
  ].join('\n');
  out.summary({ preset: flags.preset, rounds: flags.rounds, results }, `preset ${flags.preset}, stage of ${((results[0]?.stage_bytes ?? 0) / 2 ** 20).toFixed(2)} MiB, ${flags.rounds} rounds\n${table}`);
  return results;
}
