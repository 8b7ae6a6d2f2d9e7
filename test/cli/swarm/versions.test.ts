// Versions: every round's stage states, hashed by each replica. Real processes: the orchestrator
// and `tah miner` processes over HTTP, SQLite and the local blob store, and `tah checkpoint` as
// the operator runs it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCheckpoint } from '../../../worker/checkpoint/checkpoint.ts';
import { jsonLines, runTah, show, tempDir } from '../run-tah.ts';
import { type SwarmCase, assertEqualWeights, compareWithSingle, relativeErrors, runCase, singleProcessWeights } from './helpers.ts';

const TINY: SwarmCase = { preset: 'tiny', stages: 3, samples: 4, rows: 2, rounds: 6, seed: 8, lr: 3e-3 };

test('replicas report the same state hash every round; a newcomer loading the shared state (weights, AdamW moments, step) reports it from its first round', { timeout: 300_000 }, async () => {
  const c = { ...TINY, rounds: 12 };
  const { dir, cleanup } = await tempDir('tah-versions-newcomer-');
  try {
    const reference = await singleProcessWeights(c);
    let joined: Promise<number> | null = null;
    const { swarm, status, versions, events } = await runCase(c, dir, [{}, {}, {}, {}, {}, {}], (swarm, _m, e) => {
      // After round 2 is applied (a state is stored every 2 rounds), a seventh miner joins.
      if (!joined && e.event === 'applied' && e.version === 3) joined = swarm.addMiner();
    }, { snapshot_every: 2 });
    assert.equal(status.status, 'finished');
    assertEqualWeights(await compareWithSingle(c, dir, status, reference));
    assert.ok(joined, 'a newcomer joined');
    const newcomer = swarm.miners[await joined!].hotkey!;
    assert.equal(versions.length, c.rounds * c.stages, 'a version per round and stage');
    for (const v of versions) {
      const hashes = new Set(Object.values(v.reports));
      assert.equal(hashes.size, 1, `stage ${v.stage} after ${v.rounds} rounds: every replica holds the same state (${JSON.stringify(v.reports)})`);
    }
    const first = versions.find((v) => newcomer in v.reports);
    assert.ok(first, 'the newcomer reported its state');
    assert.ok(Object.keys(first.reports).length >= 2, 'beside an old-timer');
    assert.ok(!events.some((e) => e.kind === 'state_diverged'), 'nobody diverged');
  } finally {
    await cleanup();
  }
});

test('a replica whose state diverged (one weight nudged after round 2) is resynchronised from storage, and the run ends exact', { timeout: 300_000 }, async () => {
  const c = { ...TINY, seed: 9 };
  const { dir, cleanup } = await tempDir('tah-versions-skew-');
  try {
    const reference = await singleProcessWeights(c);
    const { swarm, status, versions, events } = await runCase(c, dir, [{ TAH_FAULTS: 'skew:2' }, {}, {}, {}, {}, {}], undefined, { snapshot_every: 2 });
    assert.equal(status.status, 'finished');
    assertEqualWeights(await compareWithSingle(c, dir, status, reference));
    const skewed = swarm.miners[0].hotkey!;
    assert.ok(events.some((e) => e.kind === 'state_diverged' && e.hotkey === skewed && e.details.rounds === 3), 'its hash after round 2 was caught');
    assert.ok(events.some((e) => e.kind === 'resync' && e.hotkey === skewed), 'it reloaded a stored state');
    // Its later reports (after the reload and replay) agree with its partner's. The run may finish
    // before a replica that is still catching up reports its last rounds, so those are not required.
    const later = versions.filter((v) => v.rounds > 3 && skewed in v.reports && Object.keys(v.reports).length >= 2);
    assert.ok(later.length >= 1, `it reported a later state beside its partner (${JSON.stringify(versions.filter((v) => skewed in v.reports))})`);
    for (const v of later) assert.equal(new Set(Object.values(v.reports)).size, 1, `after ${v.rounds} rounds: ${JSON.stringify(v.reports)}`);
  } finally {
    await cleanup();
  }
});

test('tah checkpoint: the operator lists versions, rolls the run back mid-run (it finishes, still exact), and exports a stored version; others may not', { timeout: 300_000 }, async () => {
  // Enough rounds after the trigger that the rollback command (a process to start) arrives while the run is live.
  const c = { ...TINY, rounds: 30, seed: 10 };
  const { dir, cleanup } = await tempDir('tah-versions-rollback-');
  try {
    const reference = await singleProcessWeights(c);
    let rollback: Promise<void> | null = null;
    const { swarm, status, events } = await runCase(
      c,
      dir,
      [{}, {}, {}, {}, {}, {}],
      (swarm, _m, e) => {
        if (rollback || e.event !== 'applied' || e.version !== 5) return;
        const base = ['checkpoint', 'rollback', '--orchestrator', swarm.url, '--run', 'case', '--to', '4', '--reason', 'test', '--json'];
        rollback = (async () => {
          const r = await runTah([...base, '--wallet', swarm.operatorWallet], { cwd: dir, timeoutMs: 60_000 });
          assert.equal(r.code, 0, show(r));
          const summary = jsonLines(r.stdout).at(-1)!;
          assert.equal(summary.rounds, 4, show(r));
        })();
      },
      // Every stored state kept: the command may arrive some rounds after its trigger.
      { snapshot_every: 2, keep_versions: 100 },
    );
    assert.ok(rollback, 'the rollback was asked for');
    await rollback;
    assert.equal(status.status, 'finished');
    const rolled = events.find((e) => e.kind === 'rollback');
    assert.ok(rolled, 'the run was rolled back');
    assert.equal(rolled.details.to, 4);
    assert.ok((rolled.details.contributors as string[]).length > 0, 'the discarded rounds\' contributors are recorded');
    // Rounds 4.. were trained again on the same samples from the same state: still exact.
    assertEqualWeights(await compareWithSingle(c, dir, status, reference));

    // The orchestrator has stopped with the swarm; list and export from a restarted one.
    await swarm.start();
    try {
      // A miner's key is not the operator's (asked here, where the orchestrator is surely up: the
      // run may end before a request made during it arrives).
      const refused = await runTah(['checkpoint', 'rollback', '--orchestrator', swarm.url, '--run', 'case', '--to', '4', '--reason', 'test', '--json', '--wallet', join(dir, 'wallets', 'miner-0.json')], { cwd: dir, timeoutMs: 60_000 });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr + refused.stdout, /operator/);
      const list = await runTah(['checkpoint', 'list', '--orchestrator', swarm.url, '--run', 'case', '--wallet', swarm.operatorWallet, '--json'], { cwd: dir, timeoutMs: 60_000 });
      assert.equal(list.code, 0, show(list));
      const summary = jsonLines(list.stdout).at(-1)!;
      assert.equal(summary.rounds_done, c.rounds);
      assert.ok((summary.stored as number[]).includes(c.rounds), show(list));
      const file = join(dir, 'exported.safetensors');
      const exported = await runTah(['checkpoint', 'export', '--orchestrator', swarm.url, '--run', 'case', '--version', String(c.rounds), '--out', file, '--wallet', swarm.operatorWallet, '--json'], { cwd: dir, timeoutMs: 60_000 });
      assert.equal(exported.code, 0, show(exported));
      const ckpt = await loadCheckpoint(file);
      assert.equal(ckpt.step, c.rounds);
      assertEqualWeights(relativeErrors(reference, (name) => ckpt.weights.get(name)!.data));
      const missing = await runTah(['checkpoint', 'export', '--orchestrator', swarm.url, '--run', 'case', '--version', '3', '--out', join(dir, 'x.safetensors'), '--wallet', swarm.operatorWallet], { cwd: dir, timeoutMs: 60_000 });
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /no stored state of stage .* after 3 rounds/);
    } finally {
      await swarm.close();
    }
  } finally {
    await cleanup();
  }
});

test('a corrupted round (one replica shares its gradient ×10⁴ from round 6 on, once) trips the guard: the run rolls back to the last good version by itself and ends as an undisturbed run would', { timeout: 300_000 }, async () => {
  const c = { ...TINY, rounds: 9, seed: 11 };
  const { dir, cleanup } = await tempDir('tah-versions-guard-');
  try {
    const reference = await singleProcessWeights(c);
    const { swarm, status, events } = await runCase(c, dir, [{ TAH_FAULTS: 'share:6' }, {}, {}, {}, {}, {}], undefined, { snapshot_every: 2 });
    assert.equal(status.status, 'finished');
    const tripped = events.find((e) => e.kind === 'guard_tripped');
    assert.ok(tripped, 'the guard tripped');
    // The first round from 6 on where the faulty replica had samples (it usually has in round 6).
    const round = tripped.details.round as number;
    assert.ok(round >= 6 && round < c.rounds, `tripped in round ${round}`);
    assert.match(String(tripped.details.reason), /gradient norm .* over 10× the median/);
    const rolled = events.find((e) => e.kind === 'rollback');
    assert.ok(rolled);
    // States are stored every 2 rounds: the newest one the corrupted gradient never reached.
    assert.equal(rolled.details.to, round - (round % 2), `back to the stored state before round ${round}`);
    assert.ok((rolled.details.offenders as string[]).includes(swarm.miners[0].hotkey!), 'the corrupting replica is among the offending round\'s contributors');
    // The round is trained again, cleanly: the same weights (and so the same loss) as without the fault.
    assertEqualWeights(await compareWithSingle(c, dir, status, reference));
  } finally {
    await cleanup();
  }
});

test('a bad update every replica agrees on (all weights ×20 after round 5) makes the next round\'s loss spike: the guard rolls back to before it, and the run ends as an undisturbed run would', { timeout: 300_000 }, async () => {
  const c = { ...TINY, rounds: 9, seed: 14 };
  const { dir, cleanup } = await tempDir('tah-versions-loss-spike-');
  try {
    const reference = await singleProcessWeights(c);
    const poison = { TAH_FAULTS: 'poison:5' };
    const { status, events } = await runCase(c, dir, [poison, poison, poison, poison, poison, poison], undefined, { snapshot_every: 2 });
    assert.equal(status.status, 'finished');
    const tripped = events.find((e) => e.kind === 'guard_tripped');
    assert.ok(tripped, 'the guard tripped');
    assert.equal(tripped.details.round, 6, 'on the first round trained on the bad weights');
    assert.match(String(tripped.details.reason), /^loss .* is over 1\.5× the median of the last 5 rounds/);
    const rolled = events.find((e) => e.kind === 'rollback');
    assert.ok(rolled);
    assert.equal(rolled.details.to, 4, 'back to the newest stored state from before the bad update (version 6 has it)');
    assertEqualWeights(await compareWithSingle(c, dir, status, reference));
  } finally {
    await cleanup();
  }
});
