// The guard's rules on their own: what counts as a spike, against which rounds, and which state
// a spike shows to be bad.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GuardSpecSchema } from '../../orchestrator-client/protocol.ts';
import { judgeRound, type RoundFigures } from '../../orchestrator/guard.ts';

const guard = GuardSpecSchema.parse({});
// Training as it goes: loss falling, gradient norms wobbling around 1.
const history: RoundFigures[] = [3.0, 2.9, 2.7, 2.6, 2.5, 2.45].map((loss, i) => ({ loss, gradNorm: 0.8 + 0.1 * (i % 3) }));

test('ordinary rounds pass, and so does anything before a full window of history', () => {
  assert.equal(judgeRound(guard, history, { loss: 2.4, gradNorm: 1.1 }), null);
  assert.equal(judgeRound(guard, history, { loss: 3.3, gradNorm: 2.5 }), null, 'a loss 1.35× the median and a norm 2.8× are not spikes');
  assert.equal(judgeRound(guard, history.slice(0, 4), { loss: 100, gradNorm: 100 }), null, 'four rounds of history: too few to judge');
});

test('a gradient norm over 10× the median of the last five rounds trips the guard, before the step is applied', () => {
  const v = judgeRound(guard, history, { loss: 2.4, gradNorm: 9.5 });
  assert.ok(v);
  assert.equal(v.badFrom, 'this_round');
  assert.match(v.reason, /gradient norm 9\.500 is over 10× the median of the last 5 rounds \(0\.9000\)/);
});

test('a loss over 1.5× the median trips the guard and blames the update before it; the window is the last five rounds only', () => {
  const v = judgeRound(guard, history, { loss: 4.0, gradNorm: 1 });
  assert.ok(v);
  assert.equal(v.badFrom, 'previous_update');
  assert.match(v.reason, /loss 4\.000 is over 1\.5× the median of the last 5 rounds \(2\.600\)/);
  // Early rounds with a high loss do not hide a spike now.
  const longer = [{ loss: 50, gradNorm: 1 }, { loss: 40, gradNorm: 1 }, ...history];
  assert.ok(judgeRound(guard, longer, { loss: 4.0, gradNorm: 1 }));
});

test('when loss and gradient norm both spike, the weights were already bad: the update before is blamed', () => {
  assert.equal(judgeRound(guard, history, { loss: 40, gradNorm: 200 })?.badFrom, 'previous_update');
  assert.equal(judgeRound(guard, history, { loss: 40, gradNorm: NaN })?.badFrom, 'previous_update');
});

test('a norm that is not finite always trips it; a check set to 0 is off; an unknown loss is not judged', () => {
  assert.equal(judgeRound(guard, [], { loss: 2, gradNorm: Infinity })?.badFrom, 'this_round');
  assert.ok(judgeRound(guard, [], { loss: 2, gradNorm: NaN }));
  const off = GuardSpecSchema.parse({ loss_spike: 0, grad_spike: 0 });
  assert.equal(judgeRound(off, history, { loss: 100, gradNorm: 100 }), null);
  assert.equal(judgeRound(guard, history, { loss: null, gradNorm: 1 }), null);
  assert.equal(judgeRound(guard, [...history.slice(0, 5), { loss: null, gradNorm: 1 }], { loss: 100, gradNorm: 1 }), null, 'a window with an unknown loss is not used for the loss check');
});
