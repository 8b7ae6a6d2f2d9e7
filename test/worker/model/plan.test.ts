// Stage plans: splits that balance training memory, every stage's figures, and the fewest stages
// in which a model fits each minimum machine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadPreset } from '../../../worker/model/config.ts';
import { checkFit, MINIMUM_MACHINES } from '../../../worker/model/machines.ts';
import { stageMemory } from '../../../worker/model/memory.ts';
import { ParamLayout } from '../../../worker/model/params.ts';
import { Planner, spanOf } from '../../../worker/model/plan.ts';

test('a split covers every layer once, the embedding first and the head last', () => {
  const c = loadPreset('demo');
  const p = new Planner(c);
  for (let n = 1; n <= c.n_layers; n++) {
    const ranges = p.split(n);
    assert.equal(ranges.length, n);
    assert.equal(ranges[0][0], 0);
    assert.equal(ranges[n - 1][1], c.n_layers - 1);
    for (let i = 1; i < n; i++) assert.equal(ranges[i][0], ranges[i - 1][1] + 1);
    const plan = p.plan(ranges);
    assert.deepEqual(plan.map((s) => [s.span.hasEmbed, s.span.hasHead]), ranges.map((_, i) => [i === 0, i === n - 1]));
    const whole = new ParamLayout(c, { layers: [0, c.n_layers - 1], hasEmbed: true, hasHead: true }).size;
    assert.equal(plan.reduce((s, x) => s + x.params, 0), whole, 'the stages hold the whole model once');
  }
  assert.throws(() => p.split(0), /cannot split 6 layers into 0 stages/);
  assert.throws(() => p.split(7), /cannot split 6 layers into 7 stages \(1 to 6\)/);
});

test('each stage of a plan is its own simulation, with the machines that hold it', () => {
  const c = loadPreset('small');
  const p = new Planner(c, 2);
  const ranges = p.split(3);
  for (const s of p.plan(ranges)) {
    const m = stageMemory(c, spanOf(ranges, s.stage), 2);
    assert.equal(s.train_bytes, m.train_bytes);
    assert.deepEqual(s.fits, MINIMUM_MACHINES.filter((x) => checkFit(m, x.memory).ok).map((x) => x.id));
  }
});

test("iota-1.5b in 3 stages balances to IOTA's own split; the largest stage needs more than an 8 GB Mac may use", () => {
  const p = new Planner(loadPreset('iota-1.5b'));
  assert.deepEqual(p.split(3), [[0, 3], [4, 11], [12, 15]]);
  const plan = p.plan(p.split(3));
  const train = plan.map((s) => s.train_bytes);
  assert.ok(Math.max(...train) / Math.min(...train) < 1.2, `balanced: ${train.map((b) => (b / 2 ** 30).toFixed(1)).join(', ')} GB`);
  for (const s of plan) assert.ok(!s.fits.includes('apple-8gb'));
  // The fewest stages: none reaches the 8 GB Mac (the embedding or the head with one layer is already too much).
  const apple = p.smallestStageCount('apple-8gb');
  const floor = p.plan(p.split(16));
  assert.equal(apple === null, floor.some((s) => !s.fits.includes('apple-8gb')));
  const cpu = p.smallestStageCount('cpu-16gb');
  assert.ok(cpu !== null && cpu.plan.every((s) => s.fits.includes('cpu-16gb')));
  assert.ok(cpu.stages === 1 || p.plan(p.split(cpu.stages - 1)).some((s) => !s.fits.includes('cpu-16gb')), 'one stage fewer does not fit');
});

test('the fewest stages for a model that fits everywhere is one', () => {
  const p = new Planner(loadPreset('tiny'));
  for (const m of MINIMUM_MACHINES) assert.equal(p.smallestStageCount(m.id)?.stages, 1, m.id);
});
