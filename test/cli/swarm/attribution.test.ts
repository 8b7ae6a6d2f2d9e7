// CLASP on a real swarm: 3 stages × 3 replicas of real miner processes, one of which (stage 1)
// sends random activations of the right scale. They decode fine, so no receiver refuses them; the
// loss of the samples that passed through it gives it away, and nobody honest is accused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocalSwarm } from '../../../cli/swarm/local-swarm.ts';
import { tempDir } from '../run-tah.ts';
import { type SwarmCase, caseSpec } from './helpers.ts';

const CASE: SwarmCase = { preset: 'tiny', stages: 3, samples: 6, rows: 2, rounds: 30, seed: 5, lr: 1e-2 };

test('GET /runs/:run/attribution flags the miner whose samples carry more loss, and only it', { timeout: 300_000 }, async () => {
  const { dir, cleanup } = await tempDir('tah-attribution-');
  const swarm = new LocalSwarm({ dir, spec: caseSpec(CASE, { heartbeat_timeout_s: 3, lease_ttl_s: 20 }), threadsPerMiner: 1 });
  try {
    await swarm.start();
    // Each miner joins once the one before has its stage, so they are given 0, 1, 2, 0, 1, 2, …:
    // the cheat is at stage 1, where what it sends on decides the loss of its samples.
    const stages: number[] = [];
    for (let i = 0; i < 9; i++) stages.push(await swarm.minerAssigned(await swarm.addMiner(i === 1 ? { TAH_FAULTS: 'adversary:random' } : {})));
    assert.equal(stages[1], 1);
    const status = await swarm.waitFinished(undefined, 250);
    assert.equal(status.status, 'finished', swarm.recentErrors.join('\n'));

    // From round 10 on: before that the model hardly uses its context, so what a stage sends on
    // matters little to the loss and early rounds only add noise.
    const a = await swarm.client.attribution('case', { from: 10 });
    assert.equal(a.samples, CASE.samples * (CASE.rounds - 10));
    const cheat = swarm.miners[1].hotkey!;
    const flagged = a.miners.filter((m) => m.flagged);
    assert.deepEqual(flagged.map((m) => [m.hotkey, m.stage]), [[cheat, 1]], JSON.stringify(a.miners, null, 1));
    assert.ok(flagged[0].effect > 0.1, `effect ${flagged[0].effect}`);
    assert.equal(a.miners.length, 9);

    const early = await swarm.client.attribution('case', { from: 0, to: 4 });
    assert.equal(early.samples, CASE.samples * 5);
    assert.deepEqual([early.from_round, early.to_round], [0, 4]);
    await assert.rejects(swarm.client.attribution('case', { from: 5, to: 2 }), /from must not be after to/);
  } finally {
    await swarm.close();
    await cleanup();
  }
});
