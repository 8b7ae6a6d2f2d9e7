// CLASP on simulated swarms: rounds whose loss falls as training goes on, samples spread at random
// over 3 stages × 3 miners, and per-sample noise of the size real losses show. A miner that adds
// loss is found, honest miners are not, and training progress is not mistaken for a miner's fault.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type PathwaySample, clasp } from '../../orchestrator/clasp.ts';
import { rng } from '../helpers/gradcheck.ts';

const MINERS = [
  ['a0', 'a1', 'a2'],
  ['b0', 'b1', 'b2'],
  ['c0', 'c1', 'c2'],
];

/** Rounds × samples of losses; `extra` adds loss to samples through a miner; `pick` chooses the pathway. */
function simulate(seed: number, rounds: number, perRound: number, extra: Record<string, number> = {}, noise = 0.05, pick?: (round: number, k: number, r: () => number) => string): PathwaySample[] {
  const r = rng(seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const out: PathwaySample[] = [];
  for (let round = 0; round < rounds; round++) {
    const trend = 5 * Math.exp(-round / 20) + 2;
    for (let i = 0; i < perRound; i++) {
      const miners = MINERS.map((stage, k) => (pick ? pick(round, k, r) : stage[Math.floor(r() * stage.length)]));
      out.push({ loss: trend + noise * gauss() + miners.reduce((a, m) => a + (extra[m] ?? 0), 0), group: round, miners });
    }
  }
  return out;
}

test('a miner whose samples carry more loss is flagged; honest miners are not', () => {
  const result = clasp(simulate(1, 30, 12, { b1: 0.1 }));
  const flagged = result.effects.filter((e) => e.flagged).map((e) => e.miner);
  assert.deepEqual(flagged, ['b1']);
  const b1 = result.effects.find((e) => e.miner === 'b1')!;
  // Its effect against its stage's average: +0.1 against the other two, so about 2/3 of 0.1.
  assert.ok(Math.abs(b1.effect - 0.1 * (2 / 3)) < 0.02, `effect ${b1.effect}`);
  assert.ok(Math.abs(result.sigma - 0.05) < 0.01, `sigma ${result.sigma}`);
});

test('with no cheater, no miner is flagged in 40 simulated swarms', () => {
  let falseFlags = 0;
  for (let seed = 0; seed < 40; seed++) falseFlags += clasp(simulate(100 + seed, 20, 12)).effects.filter((e) => e.flagged).length;
  assert.equal(falseFlags, 0);
});

test('a real but tiny difference (an honest device\'s rounding) is below minEffect and not flagged', () => {
  const result = clasp(simulate(2, 60, 12, { c2: 0.01 }, 0.02));
  const c2 = result.effects.find((e) => e.miner === 'c2')!;
  assert.ok(c2.z > result.threshold, 'significant with this much data');
  assert.equal(c2.flagged, false);
});

test('training progress is not blamed on a miner that only worked early rounds', () => {
  // a0 takes every stage-0 sample of the first 10 rounds (high loss), then leaves.
  const pick = (round: number, k: number, r: () => number): string => (k === 0 ? (round < 10 ? 'a0' : MINERS[0][1 + Math.floor(r() * 2)]) : MINERS[k][Math.floor(r() * 3)]);
  const result = clasp(simulate(3, 30, 12, {}, 0.05, pick));
  assert.deepEqual(result.effects.filter((e) => e.flagged), []);
});

test('bad input is refused with what is wrong', () => {
  assert.throws(() => clasp([{ loss: NaN, group: 0, miners: ['a'] }]), /sample 0 has loss NaN/);
  assert.throws(() => clasp([{ loss: 1, group: 0, miners: ['a', 'b'] }, { loss: 1, group: 0, miners: ['a'] }]), /sample 1 passed 1 stages/);
  assert.throws(() => clasp([], { alpha: 0 }), /alpha/);
  assert.deepEqual(clasp([]).effects, []);
});
