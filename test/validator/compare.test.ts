import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judge, relativeError } from '../../validator/compare.ts';
import { perturb } from '../../worker/miner/faults.ts';

const vector = (n: number, seed = 1): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 3);

test('relative error: 0 for the same values, the noise level for noise, huge for non-finite or wrong shape', () => {
  const x = vector(10_000);
  assert.equal(relativeError(x, x.slice()), 0);
  const noisy = perturb(x.slice(), 0.01);
  assert.ok(Math.abs(relativeError(x, noisy) - 0.01) < 0.001, `${relativeError(x, noisy)}`);
  assert.ok(Math.abs(relativeError(x, Float32Array.from(x, (v) => v * 10)) - 9) < 1e-5);
  const nan = x.slice();
  nan[7] = Number.NaN;
  assert.equal(relativeError(x, nan), 1e30);
  assert.equal(relativeError(x, x.subarray(1)), 1e30);
  assert.equal(relativeError(new Float32Array(3), new Float32Array(3)), 0);
  assert.equal(relativeError(new Float32Array(3), Float32Array.of(0, 1, 0)), 1e30);
});

test('judge: the default tolerance passes device drift and fails a 1 % cheat', () => {
  const x = vector(20_000, 2);
  const tol = 5e-3;
  assert.equal(judge({ error: relativeError(x, perturb(x.slice(), 1e-3)), problems: [] }, tol, 1e-3), 'pass');
  assert.equal(judge({ error: relativeError(x, perturb(x.slice(), 0.01)), problems: [] }, tol, 1e-3), 'fail');
  assert.equal(judge({ error: 0, lossDiff: 0.02, problems: [] }, tol, 1e-3), 'fail', 'a wrong loss fails');
  assert.equal(judge({ error: 0, problems: ['unusable upload'] }, tol, 1e-3), 'fail');
  assert.equal(judge({ error: Number.NaN, problems: [] }, tol, 1e-3), 'fail');
});
