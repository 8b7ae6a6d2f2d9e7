import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toU16Weights } from '../../orchestrator/chain.ts';
import { type EpochWork, checkProbability, scoreEpoch, workCost } from '../../orchestrator/rewards.ts';

const miner = (hotkey: string, over: Partial<EpochWork> = {}): EpochWork => ({ hotkey, work: 10, passed: 1, failed: 0, activeRounds: 5, vouched: true, excluded: null, ...over });

test('scores: work × liveness for vouched miners; shares sum to 1 over those who score', () => {
  const lines = scoreEpoch([miner('a'), miner('b', { work: 30 }), miner('c', { activeRounds: 1 })], 5);
  const by = new Map(lines.map((l) => [l.hotkey, l]));
  assert.equal(by.get('a')!.score, 10);
  assert.equal(by.get('b')!.score, 30);
  assert.equal(by.get('c')!.score, 2);
  assert.match(by.get('c')!.reason!, /1 of 5 rounds/);
  assert.ok(Math.abs(lines.reduce((s, l) => s + l.share, 0) - 1) < 1e-12);
  assert.deepEqual(lines.map((l) => l.hotkey), ['b', 'a', 'c'], 'largest first');
});

test('scores: nothing for being registered, for unchecked work, or once excluded; never negative', () => {
  const lines = scoreEpoch([miner('idle', { work: 0, activeRounds: 0 }), miner('new', { vouched: false, passed: 0 }), miner('cheat', { failed: 3, excluded: 'excluded: failed check in round 2 (flag 1)' }), miner('ok')], 5);
  const by = new Map(lines.map((l) => [l.hotkey, l]));
  for (const h of ['idle', 'new', 'cheat']) {
    assert.equal(by.get(h)!.score, 0, h);
    assert.equal(by.get(h)!.share, 0, h);
    assert.ok(by.get(h)!.reason, `${h} has a reason`);
  }
  assert.equal(by.get('ok')!.share, 1);
  assert.ok(lines.every((l) => l.score >= 0));
  assert.ok(scoreEpoch([miner('x', { excluded: 'excluded' })], 5).every((l) => l.share === 0), 'nobody scores: all shares 0');
});

test('work cost: backward twice a forward, the last stage both, scaled by the stage size', () => {
  assert.equal(workCost('forward', false, 50, 100), 0.5);
  assert.equal(workCost('backward', false, 50, 100), 1);
  assert.equal(workCost('forward', true, 50, 100), 1.5);
  assert.equal(workCost('redo', false, 100, 100), 2);
  assert.equal(workCost('share', false, 100, 100), 0);
});

test('check probability: newcomers and the flagged are checked most, seasoned miners at the base rate', () => {
  const v = { rate: 0.05, probation: 4 };
  assert.equal(checkProbability(v, 0, false), 1);
  assert.equal(checkProbability(v, 4, false), 0.5);
  assert.equal(checkProbability(v, 1000, false), 0.05);
  assert.equal(checkProbability(v, 1000, true), 1);
  assert.ok(checkProbability(v, 10, false) > checkProbability(v, 20, false));
  // No probation: the base rate from the first item (not 0/0).
  assert.equal(checkProbability({ rate: 0.02, probation: 0 }, 0, false), 0.02);
  assert.equal(checkProbability({ rate: 0.02, probation: 0 }, 0, true), 1);
  assert.equal(checkProbability({ rate: 0, probation: 0 }, 7, false), 0);
});

test('chain seam: shares become u16 weights with the largest at 65535', () => {
  assert.deepEqual(toU16Weights([{ hotkey: 'a', share: 0.5 }, { hotkey: 'b', share: 0.25 }, { hotkey: 'c', share: 0 }]), [
    { hotkey: 'a', weight: 65535 },
    { hotkey: 'b', weight: 32768 },
  ]);
  assert.deepEqual(toU16Weights([{ hotkey: 'a', share: 0 }]), []);
  assert.deepEqual(toU16Weights([]), []);
});
