// Local-steps mode (DiLoCo) with real processes: the orchestrator and `tah miner` processes over
// HTTP, SQLite and the local blob store. Replicas step on their own samples between merges; a merge
// all-reduces their pseudo-gradients and every replica applies the same outer Nesterov step.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDatabase } from '../../../orchestrator/db/open.ts';
import { tempDir } from '../run-tah.ts';
import { type SwarmCase, runCase } from './helpers.ts';

const CASE: SwarmCase = { preset: 'tiny', stages: 2, samples: 4, rows: 2, rounds: 8, seed: 12, lr: 3e-3 };

test('local steps: inner steps every round, merges only every H rounds, and after each merge every replica holds the same weights', { timeout: 300_000 }, async () => {
  const { dir, cleanup } = await tempDir('tah-local-');
  try {
    const { status, versions } = await runCase(CASE, dir, [{}, {}, {}, {}], undefined, { mode: 'local', local: { steps: 4 }, snapshot_every: 4 });
    assert.equal(status.status, 'finished');
    assert.equal(status.rounds_done, CASE.rounds);
    const db = await openDatabase(`sqlite:${join(dir, 'orchestrator.db')}`);
    try {
      const items = await db.db.selectFrom('work_items').select(['round', 'stage', 'direction', 'completed_by']).where('status', '=', 'done').execute();
      const roundsWith = (direction: string) => [...new Set(items.filter((i) => i.direction === direction).map((i) => Number(i.round)))].sort((a, b) => a - b);
      assert.deepEqual(roundsWith('share'), [3, 7], 'pseudo-gradients are shared at the end of each period of 4 rounds only');
      assert.deepEqual(roundsWith('local'), [0, 1, 2, 3, 4, 5, 6, 7], 'every round, each replica with samples takes its own step');
      // A local step per replica that had samples at the stage in that round.
      for (const r of [0, 5]) {
        for (const stage of [0, 1]) {
          const workers = new Set(items.filter((i) => Number(i.round) === r && i.stage === stage && (i.direction === 'backward' || (stage === 1 && i.direction === 'forward'))).map((i) => i.completed_by));
          const locals = new Set(items.filter((i) => Number(i.round) === r && i.stage === stage && i.direction === 'local').map((i) => i.completed_by));
          assert.deepEqual([...locals].sort(), [...workers].sort());
        }
      }
    } finally {
      await db.close();
    }
    // Replicas report their shared state (merged weights, outer momentum) after merges only, and agree.
    assert.deepEqual([...new Set(versions.map((v) => v.rounds))].sort((a, b) => a - b), [4, 8]);
    for (const v of versions) assert.equal(new Set(Object.values(v.reports)).size, 1, `stage ${v.stage} after ${v.rounds} rounds: ${JSON.stringify(v.reports)}`);
    const losses = status.losses.map((l) => l.loss!);
    assert.ok(losses[losses.length - 1] < losses[0], `it learns: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  } finally {
    await cleanup();
  }
});

test('local steps with int8 merges: shares and reductions are int8 blocks, a quarter of the bytes, and the replicas still agree after each merge', { timeout: 300_000 }, async () => {
  const c = { ...CASE, stages: 1, seed: 13 };
  const { dir, cleanup } = await tempDir('tah-local-q8-');
  try {
    const { status, versions } = await runCase(c, dir, [{}, {}], undefined, { mode: 'local', local: { steps: 4, quantize: 'int8' }, snapshot_every: 4 });
    assert.equal(status.status, 'finished');
    for (const v of versions) assert.equal(new Set(Object.values(v.reports)).size, 1, `after ${v.rounds} rounds: ${JSON.stringify(v.reports)}`);
    const db = await openDatabase(`sqlite:${join(dir, 'orchestrator.db')}`);
    try {
      const reduced = await db.db.selectFrom('work_items').select(['output_bytes', 'detail_json']).where('direction', '=', 'reduce').where('status', '=', 'done').execute();
      assert.ok(reduced.length > 0);
      for (const r of reduced) {
        const [from, to] = (JSON.parse(r.detail_json) as { range: [number, number] }).range;
        const f32 = 4 * (to - from);
        assert.ok(Number(r.output_bytes) < 0.27 * f32 + 512, `a reduced slice of ${to - from} values is ${r.output_bytes} bytes (float32: ${f32})`);
      }
    } finally {
      await db.close();
    }
    const losses = status.losses.map((l) => l.loss!);
    assert.ok(losses[losses.length - 1] < losses[0], `it learns: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  } finally {
    await cleanup();
  }
});
