// The merge under attack and under failure: every slice of a stage's all-reduce is reduced by two
// different miners whose results must agree bit for bit. Real processes: the orchestrator and
// six `tah miner` processes over HTTP, SQLite and the local blob store; the dishonest miners are
// real miners started with TAH_FAULTS, which makes them lie consistently about their reductions.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../run-tah.ts';
import { type SwarmCase, assertEqualWeights, compareWithSingle, runCase, singleProcessWeights } from './helpers.ts';

const TINY: SwarmCase = { preset: 'tiny', stages: 3, samples: 4, rows: 2, rounds: 4, seed: 6, lr: 3e-3 };

test('replicas returning a wrong reduction (one float32 ulp off, or garbage): the slices are re-reduced, the weights equal single-process training, and the cheaters are flagged with evidence', { timeout: 400_000 }, async () => {
  const { dir, cleanup } = await tempDir('tah-merge-cheat-');
  try {
    const reference = await singleProcessWeights(TINY);
    // Miners join in turn and are given the stage most in need: 0, 1, 2, 0, 1, 2.
    const { swarm, status, flags, events } = await runCase(TINY, dir, [{ TAH_FAULTS: 'reduce:tiny' }, { TAH_FAULTS: 'reduce:garbage' }, {}, {}, {}, {}]);
    assert.equal(status.status, 'finished');
    assertEqualWeights(await compareWithSingle(TINY, dir, status, reference));

    const [tiny, garbage] = [swarm.miners[0].hotkey!, swarm.miners[1].hotkey!];
    const honest = new Set(swarm.miners.slice(2).map((m) => m.hotkey!));
    assert.ok(events.some((e) => e.kind === 'reduction_disputed'), 'disagreements sent slices to a third reducer');
    const flagged = new Set(flags.map((f) => f.hotkey));
    assert.deepEqual([...flagged].sort(), [tiny, garbage].sort(), 'both cheaters, and nobody else, are flagged');
    for (const f of flags) {
      assert.equal(f.kind, 'bad_reduction');
      const e = f.evidence;
      assert.match(String(e.digest), /^[0-9a-f]{64}$/);
      assert.notEqual(e.digest, e.agreed_digest, 'the losing result differs from the agreed one');
      const agreedBy = e.agreed_by as string[];
      assert.equal(agreedBy.length, 2, 'two different miners agreed');
      assert.ok(agreedBy.every((h) => honest.has(h)), `the agreed result came from honest miners: ${agreedBy.join(', ')}`);
      // The losing blob is kept as evidence, beside the agreed ones.
      const kept = await stat(join(dir, 'blobs', String(e.key)));
      assert.ok(kept.size > 0);
    }
    // Every round, each cheater reduced slices of its own stage and lost every time.
    for (const cheater of [tiny, garbage]) {
      const rounds = new Set(flags.filter((f) => f.hotkey === cheater).map((f) => f.round));
      assert.equal(rounds.size, TINY.rounds, `${cheater} is flagged in every round`);
    }
  } finally {
    await cleanup();
  }
});

test('a reducer killed (SIGKILL) mid-merge: its copies are reassigned, every slice is reduced, and the weights equal single-process training', { timeout: 300_000 }, async () => {
  const c = { ...TINY, seed: 7 };
  const { dir, cleanup } = await tempDir('tah-merge-kill-');
  try {
    const reference = await singleProcessWeights(c);
    let killed = -1;
    const { swarm, status, events } = await runCase(c, dir, [{}, {}, {}, {}, {}, {}], (swarm, m, e) => {
      if (killed < 0 && e.event === 'status' && e.state === 'reduce' && e.version === 1) {
        killed = m;
        void swarm.killMiner(m, 'SIGKILL');
      }
    });
    assert.ok(killed >= 0, 'a reducer was killed');
    assert.equal(status.status, 'finished');
    assertEqualWeights(await compareWithSingle(c, dir, status, reference));
    const victim = swarm.miners[killed].hotkey!;
    assert.ok(events.some((e) => e.kind === 'gone' && e.hotkey === victim), 'the killed reducer was reaped');
    assert.ok(events.some((e) => e.kind === 'reduction_reassigned' && e.hotkey === victim), 'its copies went to other reducers');
  } finally {
    await cleanup();
  }
});
