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

test('bench merge --json: per miner, a round moves 4 to 5 stage sizes, not C − 1, and no more with more replicas', { timeout: 180_000 }, async () => {
  const r = await runTah(['bench', 'merge', '--replicas', '2,4', '--rounds', '2', '--json'], { cwd: dir, timeoutMs: 170_000 });
  assert.equal(r.code, 0, show(r));
  const lines = jsonLines(r.stdout);
  const last = lines[lines.length - 1];
  assert.equal(last.summary, true, show(r));
  const results = last.results as { replicas: number; ratio: number; naive_ratio: number; stage_bytes: number }[];
  assert.deepEqual(results.map((m) => m.replicas), [2, 4]);
  for (const m of results) {
    // Share up 1, two reductions down 2 and up 2/C, apply down 1, plus safetensors headers (C, the
    // replicas that had samples in a round, may be fewer than the replicas: a fast one takes more).
    assert.ok(m.ratio > 3.5 && m.ratio < 5.1, `replicas ${m.replicas}: ${m.ratio} stage sizes, expected 4 to 5`);
    assert.equal(m.naive_ratio, m.replicas - 1);
  }
  assert.ok(results[1].ratio <= results[0].ratio + 0.1, `more replicas, no more bytes per miner: ${results.map((m) => m.ratio).join(' vs ')}`);
  assert.equal(lines.filter((l) => l.event === 'measurement').length, 2);
});
