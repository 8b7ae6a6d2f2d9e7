// The merge's arithmetic on flat buffers: float32 results bit for bit as the all-reduce defines
// them (each addition and product rounded to float32, in order), sums of squares in float64.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addInto, meanInto, scaleInPlace, sumOfSquares } from '../../../worker/miner/flat.ts';

let seed = 5;
const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const values = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => rand() * 10 ** ((i % 7) - 3));

test('addInto and scaleInPlace round every step to float32, in order', () => {
  const parts = [values(1001), values(1001), values(1001)];
  const sum = new Float32Array(1001);
  for (const p of parts) addInto(sum, p);
  scaleInPlace(sum, 1 / 24);
  for (let i = 0; i < sum.length; i++) {
    let v = 0;
    for (const p of parts) v = Math.fround(v + p[i]);
    assert.ok(Object.is(sum[i], Math.fround(v * (1 / 24))), `element ${i}`);
  }
  // Not the float64 sum rounded once: the order and the roundings are the contract.
  const f64 = parts[0].map((_, i) => (parts[0][i] + parts[1][i] + parts[2][i]) / 24);
  assert.ok(f64.some((v, i) => !Object.is(v, sum[i])), 'some element differs from the float64 sum');
  assert.throws(() => addInto(sum, values(1000)), /1000 values added to 1001/);
});

test('sumOfSquares and meanInto', () => {
  const x = values(513);
  let expected = 0;
  for (const v of x) expected += v * v;
  assert.equal(sumOfSquares(x), expected);
  const out = new Float32Array(513);
  const s = meanInto(out, x, 3);
  let again = 0;
  for (let i = 0; i < x.length; i++) {
    assert.ok(Object.is(out[i], Math.fround(x[i] / 3)), `element ${i}`);
    again += out[i] * out[i];
  }
  assert.equal(s, again);
});
