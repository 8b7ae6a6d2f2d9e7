import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseMove, chooseStage } from '../../orchestrator/assignment.ts';
import { checkRunSpec, evenStages } from '../../orchestrator/runs.ts';

const load = (stage: number, miners: number, tokensPerS: number) => ({ stage, miners, tokensPerS });

test('a new miner joins the stage that most needs capacity', () => {
  assert.deepEqual(chooseStage([load(0, 2, 2000), load(1, 0, 0), load(2, 1, 500)], 0), { ok: true, stage: 1 }, 'an empty stage first');
  assert.deepEqual(chooseStage([load(0, 2, 2000), load(1, 1, 3000), load(2, 3, 1500)], 0), { ok: true, stage: 2 }, 'then the least throughput');
  assert.deepEqual(chooseStage([load(0, 2, 1000), load(1, 1, 1000)], 0), { ok: true, stage: 1 }, 'then the fewest miners');
  assert.deepEqual(chooseStage([load(0, 1, 1000), load(1, 1, 1000)], 0), { ok: true, stage: 0 }, 'then the lowest index');
});

test('capacity limits are respected and a full run says so', () => {
  assert.deepEqual(chooseStage([load(0, 2, 10), load(1, 1, 5000)], 2), { ok: true, stage: 1 });
  assert.deepEqual(chooseStage([load(0, 2, 10), load(1, 2, 5000)], 2), { ok: false, reason: 'run_full' });
});

test('moves go to the asked stage when it has room, never counting the mover twice', () => {
  const loads = [load(0, 2, 10), load(1, 2, 10)];
  assert.deepEqual(chooseMove(loads, 2, 0, 1), { ok: false, reason: 'stage_full' });
  assert.deepEqual(chooseMove(loads, 2, 0, 0), { ok: true, stage: 0 }, 'staying put always fits');
  assert.deepEqual(chooseMove(loads, 2, 0, 5), { ok: false, reason: 'no_such_stage' });
  assert.deepEqual(chooseMove([load(0, 3, 300), load(1, 1, 200)], 0, 0), { ok: true, stage: 1 });
});

test('run specs must split the model into contiguous stages covering every layer', () => {
  const base = { id: 'r1', preset: 'tiny', samples_per_round: 8 };
  assert.equal(checkRunSpec({ ...base, stages: [[0, 1], [2, 3]] }).config.n_layers, 4);
  assert.throws(() => checkRunSpec({ ...base, stages: [[0, 1], [3, 3]] }), /stage 1 covers layers 3-3; stages must be contiguous, starting at layer 2/);
  assert.throws(() => checkRunSpec({ ...base, stages: [[0, 2]] }), /stages cover layers 0-2, the tiny model has 4/);
  assert.throws(() => checkRunSpec({ ...base, preset: 'huge', stages: [[0, 3]] }), /preset must be one of/);
  assert.throws(() => checkRunSpec({ ...base, stages: [[0, 3]], extra: 1 }), /invalid run/);
  assert.deepEqual(evenStages(6, 4), [[0, 1], [2, 3], [4, 4], [5, 5]]);
  assert.throws(() => evenStages(2, 3), /cannot split 2 layers into 3 stages/);
});

test('a miner is only given a stage it can hold; none held is its own refusal, not a full run', () => {
  const loads = [load(0, 0, 0), load(1, 3, 900), load(2, 0, 0)];
  assert.deepEqual(chooseStage(loads, 0, [false, true, true]), { ok: true, stage: 2 });
  assert.deepEqual(chooseStage(loads, 0, [false, true, false]), { ok: true, stage: 1 }, 'the crowded stage it holds, not the empty ones it cannot');
  assert.deepEqual(chooseStage(loads, 0, [false, false, false]), { ok: false, reason: 'too_small' });
  assert.deepEqual(chooseStage(loads, 3, [false, true, false]), { ok: false, reason: 'run_full' }, 'the stage it holds is full');
  assert.deepEqual(chooseStage(loads, 0), { ok: true, stage: 0 }, 'without fits every stage counts');
  assert.deepEqual(chooseMove(loads, 0, 1, 2, [false, true, false]), { ok: false, reason: 'too_small' });
  assert.deepEqual(chooseMove(loads, 0, 1, undefined, [false, true, false]), { ok: true, stage: 1 });
});
