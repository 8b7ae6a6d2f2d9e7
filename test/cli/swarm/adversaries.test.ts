// Cheating miners in a real swarm: 3 stages × 3 replicas of miner processes, one validator process
// per stage, and two miners per test (at different stages) cheating in the ways faults.ts knows. Each cheat must
// be caught within 3 epochs (a failed check, a refused upload, or CLASP), earn nothing from then
// on, have no work of its in any merge after it was caught, and leave the model within 3 % of
// training without it. Honest miners whose floats differ as devices' do are never flagged, and
// the ledger survives an orchestrator restart unchanged and refuses to be rewritten.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { LocalSwarm } from '../../../cli/swarm/local-swarm.ts';
import { readFinalStages } from '../../../cli/commands/swarm.ts';
import { trainRecipe } from '../../../cli/commands/train.ts';
import type { EpochsResponse, Flag, RunStatus } from '../../../orchestrator-client/protocol.ts';
import { openDatabase } from '../../../orchestrator/db/open.ts';
import { loadBrownCorpus } from '../../../worker/data/brown.ts';
import { buildDataset, heldoutBatches } from '../../../worker/data/dataset.ts';
import { byteTokenizer } from '../../../worker/data/tokenizer.ts';
import type { Adversary } from '../../../worker/miner/faults.ts';
import { PipelineTrainer, trainPipeline } from '../../../worker/train/pipeline.ts';
import { tempDir } from '../run-tah.ts';
import { type SwarmCase, caseConfig, caseSpec } from './helpers.ts';

const CASE: SwarmCase = { preset: 'tiny', stages: 3, samples: 6, rows: 2, rounds: 15, seed: 5, lr: 1e-2 };
const EPOCH = 5;
/** Honest device drift, simulated: about twice the largest difference scripts/provider-drift.ts measured (5.6e-4, TF32-like rounding). */
const DEVICE_DRIFT = 1e-3;

const dataset = buildDataset(loadBrownCorpus(), byteTokenizer);
const { config, stages } = caseConfig(CASE);
const optim = trainRecipe(CASE.preset, CASE.rounds, CASE.lr);
const evalSet = heldoutBatches(dataset, { batchSize: config.batch_size, seqLen: config.seq_len, maxBatches: 4 });

/** The held-out loss of one process trained on the same samples: the run without any cheat. */
let reference = 0;
before(async () => {
  reference = (await trainPipeline({ config, stages, optim, rows: CASE.rows, threads: 2, dataset, steps: CASE.rounds, seed: CASE.seed, evalSet })).heldout!;
});

async function heldout(dir: string, status: RunStatus): Promise<number> {
  const states = await readFinalStages(dir, status, stages, CASE.rounds);
  const evaluator = await PipelineTrainer.create({ config, stages, optim, rows: CASE.rows, threads: 2 });
  try {
    return await evaluator.heldoutLoss(
      states.map((s) => s.params),
      evalSet,
    );
  } finally {
    await evaluator.dispose();
  }
}

interface Outcome {
  swarm: LocalSwarm;
  dir: string;
  status: RunStatus;
  flags: Flag[];
  epochs: EpochsResponse;
  verdicts: { outcome: string; miner: string }[];
}

/** A finished run with 9 miners (miner i gets `envOf(i)`) and 3 validators. */
async function run(dir: string, envOf: (i: number) => NodeJS.ProcessEnv, body: (o: Outcome) => Promise<void>): Promise<void> {
  const verdicts: Outcome['verdicts'] = [];
  const swarm = new LocalSwarm({
    dir,
    spec: caseSpec(CASE, { heartbeat_timeout_s: 3, lease_ttl_s: 20, validation: { epoch_rounds: EPOCH } }),
    threadsPerMiner: 1,
    onValidatorEvent: (_v, e) => {
      if (e.event === 'verdict') verdicts.push({ outcome: e.outcome as string, miner: e.miner as string });
    },
  });
  try {
    await swarm.start();
    for (let i = 0; i < CASE.stages; i++) await swarm.addValidator();
    // One at a time, so that miner i holds stage i mod 3.
    for (let i = 0; i < 9; i++) await swarm.minerAssigned(await swarm.addMiner(envOf(i)));
    const status = await swarm.waitFinished(undefined, 250);
    assert.equal(status.status, 'finished', swarm.recentErrors.join('\n'));
    await body({ swarm, dir, status, flags: await swarm.client.flags('case'), epochs: await swarm.client.epochs('case'), verdicts });
  } finally {
    await swarm.close();
  }
}

// Each mode where it can do harm, two cheats in a swarm at different stages (each stage keeps two
// honest replicas): 'scaled' at stage 0 lies only in its gradient sum (stage 0 sends no gradient
// on), which only a check of its share can see; the others where their outputs travel on.
const PAIRS: [Adversary, number][][] = [
  [
    ['scaled', 0],
    ['random', 1],
  ],
  [
    ['stale', 1],
    ['lazy', 2],
  ],
  [
    ['subtle', 1],
    ['nan', 2],
  ],
];

for (const pair of PAIRS) {
  const names = pair.map(([mode, stage]) => `a '${mode}' miner at stage ${stage}`).join(' and ');
  test(`${names}: each is caught within 3 epochs, paid nothing after, kept out of merges, and the model stays within 3 %`, { timeout: 300_000 }, async () => {
    const { dir, cleanup } = await tempDir(`tah-adversary-${pair.map(([m]) => m).join('-')}-`);
    // Miner i holds stage i mod 3; the cheats are the first miners of their stages.
    const cheatAt = new Map(pair.map(([mode, stage]) => [stage, mode]));
    try {
      await run(dir, (i) => (cheatAt.has(i) ? { TAH_FAULTS: `adversary:${cheatAt.get(i)}` } : {}), async ({ swarm, status, flags, epochs }) => {
        const cheats = pair.map(([mode, stage]) => ({ mode, hotkey: swarm.miners[stage].hotkey! }));
        assert.deepEqual(
          [...new Set(flags.map((f) => f.hotkey))].sort(),
          cheats.map((c) => c.hotkey).sort(),
          `exactly the cheats are flagged: ${JSON.stringify(flags.map((f) => [f.hotkey, f.kind]))}`,
        );
        assert.equal(epochs.epochs.length, CASE.rounds / EPOCH);
        for (const e of epochs.epochs) assert.ok(e.top.reduce((a, t) => a + t.share, 0) > 0.5, `epoch ${e.epoch} pays honest miners`);

        const db = await openDatabase(`sqlite:${join(dir, 'orchestrator.db')}`);
        try {
          for (const { mode, hotkey: cheat } of cheats) {
            const caught = flags.find((f) => f.hotkey === cheat)!;
            assert.ok(caught.round !== null && caught.round < 3 * EPOCH, `${mode}: caught in round ${caught.round}, not within 3 epochs of ${EPOCH} rounds`);

            // Paid nothing from the epoch after the one it was caught in (the ledger's own line says why).
            const history = await swarm.client.rewards('case', cheat);
            const caughtEpoch = Math.floor(caught.round! / EPOCH);
            for (const e of history.epochs.filter((x) => x.epoch > caughtEpoch)) assert.equal(e.share, 0, `${mode}: epoch ${e.epoch}`);
            for (const e of epochs.epochs) assert.ok(e.excluded.includes(cheat) || e.epoch <= caughtEpoch, `${mode}: excluded after epoch ${caughtEpoch}`);

            // Kept out: nothing it did after its exclusion counts, and no merge after it has its share.
            const excluded = await db.db.selectFrom('events').select('at').where('kind', '=', 'excluded').where('hotkey', '=', cheat).orderBy('id').executeTakeFirst();
            assert.ok(excluded, `${mode}: the cheat was excluded`);
            const p = await db.db.selectFrom('participants').select('status').where('hotkey', '=', cheat).executeTakeFirstOrThrow();
            assert.equal(p.status, 'excluded');
            const late = await db.db.selectFrom('work_items').select(['id', 'round']).where('completed_by', '=', cheat).where('status', '=', 'done').where('completed_at', '>', Number(excluded.at)).execute();
            assert.deepEqual(late, [], `${mode}: no work of the cheat is accepted after its exclusion`);
            const after = await db.db.selectFrom('rounds').select('round').where('reduced_at', '>', Number(excluded.at)).execute();
            const merged = await db.db.selectFrom('stage_rounds').select(['round', 'contributors_json']).where('round', 'in', after.length ? after.map((r) => r.round) : [-1]).execute();
            for (const m of merged) assert.ok(!(JSON.parse(m.contributors_json) as string[]).includes(cheat), `${mode}: round ${m.round} merged the cheat's share`);
            console.log(`# ${mode}: caught in round ${caught.round} (${caught.kind})`);
          }
        } finally {
          await db.close();
        }

        const loss = await heldout(dir, status);
        assert.ok(Math.abs(loss - reference) / reference <= 0.03, `held-out ${loss.toFixed(4)} vs ${reference.toFixed(4)} without the cheats`);
        console.log(`# ${pair.map(([m]) => m).join(' + ')}: held-out ${loss.toFixed(4)} vs ${reference.toFixed(4)}`);
      });
    } finally {
      await cleanup();
    }
  });
}

test('honest miners whose floats differ as devices do are never flagged; the ledger survives a restart and cannot be rewritten', { timeout: 300_000 }, async () => {
  const { dir, cleanup } = await tempDir('tah-adversary-honest-');
  try {
    await run(dir, () => ({ TAH_FAULTS: `perturb:${DEVICE_DRIFT}` }), async ({ swarm, status, flags, epochs, verdicts }) => {
      assert.deepEqual(flags, [], 'nobody is flagged');
      assert.ok(verdicts.length > 20 && verdicts.every((v) => v.outcome === 'pass'), `every check passes: ${JSON.stringify(verdicts.filter((v) => v.outcome !== 'pass'))}`);
      assert.equal(epochs.epochs.length, CASE.rounds / EPOCH);
      for (const e of epochs.epochs) assert.deepEqual(e.excluded, []);
      const last = epochs.epochs.at(-1)!;
      const shares = await Promise.all(swarm.miners.map(async (m) => (await swarm.client.rewards('case', m.hotkey!)).epochs.find((x) => x.epoch === last.epoch)?.share ?? 0));
      assert.ok(Math.abs(shares.reduce((a, b) => a + b, 0) - 1) < 1e-9, `the last epoch's shares sum to 1: ${shares}`);
      // Miners join one by one while the run goes on: every one that was there when the last
      // epoch began earns in it (a tiny round takes a fraction of a second, a miner's start longer).
      const began = status.losses.find((l) => l.round === last.from_round - 1)!.reduced_at;
      const events = await openDatabase(`sqlite:${join(dir, 'orchestrator.db')}`);
      const joined = await events.db.selectFrom('events').select(['hotkey', 'at']).where('kind', '=', 'registered').execute();
      await events.close();
      const there = swarm.miners.map((m) => joined.some((e) => e.hotkey === m.hotkey && Number(e.at) < began));
      assert.ok(there.filter(Boolean).length >= 3, `at least a miner per stage was there: ${there}`);
      assert.ok(
        shares.every((x, i) => x > 0 || !there[i]),
        `every honest miner there when the last epoch began earns in it: shares ${shares.map((x) => x.toFixed(3))}, there ${there}`,
      );
      const loss = await heldout(dir, status);
      assert.ok(Math.abs(loss - reference) / reference <= 0.03, `held-out ${loss} vs ${reference}`);

      // The ledger after a restart is the ledger before it.
      const miner = swarm.miners[4].hotkey!;
      const before = { epochs, history: await swarm.client.rewards('case', miner) };
      await swarm.killOrchestrator('SIGKILL');
      await swarm.startOrchestrator();
      assert.deepEqual(await swarm.client.epochs('case'), before.epochs);
      assert.deepEqual((await swarm.client.rewards('case', miner)).epochs, before.history.epochs);
      // And the database itself refuses to change a paid epoch.
      const db = await openDatabase(`sqlite:${join(dir, 'orchestrator.db')}`);
      try {
        await assert.rejects(db.db.updateTable('rewards').set({ share: 1 }).where('hotkey', '=', miner).execute(), /append-only/);
        await assert.rejects(db.db.deleteFrom('epochs').execute(), /append-only/);
      } finally {
        await db.close();
      }
    });
  } finally {
    await cleanup();
  }
});
