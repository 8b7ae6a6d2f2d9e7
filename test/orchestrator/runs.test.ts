// How a stage's all-reduce is cut: contiguous slices that cover the stage exactly, C/2 of them for
// an even number of contributors (one pair of reducers a slice) and C for an odd one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sliceCount, splitRange } from '../../orchestrator/runs.ts';

test('slices: pairs of replicas when they are even, one slice each when odd', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 8].map(sliceCount), [1, 1, 3, 2, 5, 3, 4]);
});

test('splitRange covers [0, n) with k contiguous, nearly equal ranges', () => {
  for (const n of [1, 7, 401_920]) {
    for (const k of [1, 2, 3, 4]) {
      if (k > n) continue;
      const r = splitRange(n, k);
      assert.equal(r.length, k);
      assert.equal(r[0][0], 0);
      assert.equal(r[k - 1][1], n);
      for (let i = 1; i < k; i++) assert.equal(r[i][0], r[i - 1][1], `contiguous at ${i}`);
      const sizes = r.map(([a, b]) => b - a);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `nearly equal: ${sizes.join(', ')}`);
    }
  }
});
