// `tah bench merge` as a user runs it: one-stage swarms of real miner processes, and a --json
// summary of the bytes each miner moved to merge a round. Byte counts do not depend on the
// machine, so the test holds them to the design: O(stage size) per miner, whatever the replicas.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jsonLines, runTah, show, tempDir } from './run-tah.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
before(async () => {
  ({ dir, cleanup } = await tempDir('bench-merge'));
});
after(() => cleanup());

test('bench merge --json: per miner, a round moves 3 to 4 stage sizes, not C − 1, whatever the replicas', { timeout: 180_000 }, async () => {
  const r = await runTah(['bench', 'merge', '--replicas', '2,4', '--rounds', '2', '--json'], { cwd: dir, timeoutMs: 170_000 });
  assert.equal(r.code, 0, show(r));
  const lines = jsonLines(r.stdout);
  const last = lines[lines.length - 1];
  assert.equal(last.summary, true, show(r));
  const results = last.results as { replicas: number; ratio: number; naive_ratio: number; stage_bytes: number }[];
  assert.deepEqual(results.map((m) => m.replicas), [2, 4]);
  for (const m of results) {
    // Share up 1; reduce 2/C of the stage (C even: one slice of 2/C; odd: two of 1/C), down C − 1
    // shares of it (its own is read locally) and up 2/C; apply down the slices it did not reduce
    // itself, (C − 2)/C: 4 − 2/C in all, plus
    // safetensors headers (C, the replicas that had samples in a round, may be fewer than the
    // replicas: a fast one takes more).
    assert.ok(m.ratio > 2.9 && m.ratio < 4.1, `replicas ${m.replicas}: ${m.ratio} stage sizes, expected 3 to 4`);
    assert.equal(m.naive_ratio, m.replicas - 1);
  }
  // Two replicas: nothing a miner computed itself is fetched back, so exactly 3 stage sizes.
  assert.ok(results[0].ratio < 3.1, `2 replicas: ${results[0].ratio} stage sizes, expected 3`);
  assert.equal(lines.filter((l) => l.event === 'measurement').length, 2);
});
