// `tah plan`: the stages of a model, what each needs to train and which minimum machines hold it,
// as a table and as a --json summary; bad flags are one-line errors.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadPreset } from '../../worker/model/config.ts';
import { MINIMUM_MACHINES } from '../../worker/model/machines.ts';
import { ParamLayout } from '../../worker/model/params.ts';
import { assertFailsOnStderr, assertJsonFailure, jsonLines, runTah, show, tempDir } from './run-tah.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
before(async () => {
  ({ dir, cleanup } = await tempDir('plan'));
});
after(() => cleanup());

type Stage = { stage: number; layers: [number, number]; params: number; train_bytes: number; activation_bytes_per_token: number | null; fits: string[]; state_bytes: number };

test('tah plan --json: every stage with its parameters (by hand), training memory, boundary bytes and machines', async () => {
  const r = await runTah(['plan', '--preset', 'small', '--stages', '3', '--batch', '2', '--json'], { cwd: dir });
  assert.equal(r.code, 0, show(r));
  const lines = jsonLines(r.stdout);
  const summary = lines.at(-1)!;
  assert.equal(summary.summary, true);
  assert.equal(summary.ok, true);
  assert.equal(summary.batch, 2);
  const c = loadPreset('small');
  const stages = summary.stages as Stage[];
  assert.deepEqual([stages[0].layers[0], stages[2].layers[1]], [0, 5]);
  // Parameters by hand: the embedding, equal layers, and the head with the final norm.
  const d = c.d_model;
  const layer = 4 * d * d + 3 * d * c.ffn_hidden + 2 * d;
  const layers = (s: Stage): number => s.layers[1] - s.layers[0] + 1;
  assert.deepEqual(stages.map((s) => s.params), [c.vocab_size * d + layers(stages[0]) * layer, layers(stages[1]) * layer, layers(stages[2]) * layer + c.vocab_size * d + d]);
  assert.deepEqual(stages.map((s) => s.params), stages.map((s, i) => new ParamLayout(c, { layers: s.layers, hasEmbed: i === 0, hasHead: i === 2 }).size));
  assert.equal(summary.params, stages.reduce((a, s) => a + s.params, 0));
  for (const s of stages) {
    assert.equal(s.state_bytes, 16 * s.params);
    assert.ok(s.train_bytes > s.state_bytes);
    assert.deepEqual(s.fits, ['apple-8gb', 'cuda-16gb', 'cpu-16gb'], 'a small model fits every minimum machine');
  }
  assert.deepEqual(stages.map((s) => s.activation_bytes_per_token), [8 * d, 8 * d, null], 'float32 forward + backward across each boundary');
  assert.deepEqual(summary.smallest_stages, { 'apple-8gb': 1, 'cuda-16gb': 1, 'cpu-16gb': 1 });
  assert.deepEqual((summary.machines as { id: string }[]).map((m) => m.id), MINIMUM_MACHINES.map((m) => m.id));
});

test('tah plan for iota-1.5b in 3 stages: IOTA\'s split, the machines that hold each stage, and the fewest stages for each machine', async () => {
  const r = await runTah(['plan', '--preset', 'iota-1.5b', '--stages', '3'], { cwd: dir });
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^iota-1\.5b in 3 stages: 1,498,482,688 parameters; a step is 1 × 800 tokens$/m);
  assert.match(r.stdout, /^\s+0\s+0–3 \+embed\s+505,954,304\s+\d+\.\d GB █+/m);
  assert.match(r.stdout, /^\s+1\s+4–11\s+486,572,032\s/m);
  assert.match(r.stdout, /^\s+2\s+12–15 \+head\s+505,956,352\s/m);
  assert.match(r.stdout, /^fewest stages in which every stage fits:$/m);
  assert.match(r.stdout, /^ {2}8 GB Apple Silicon\s+(none: even with one layer a stage \(16 stages\), stage \d+ .* needs \d+\.\d GB|\d+ stages) \(training may use 5\.6 GB\)$/m);
  assert.match(r.stdout, /^ {2}16 GB RAM CPU\s+\d+ stages? \(training may use 12\.0 GB\)$/m);
});

for (const [what, args, problem] of [
  ['an unknown preset', ['--preset', 'huge', '--stages', '2'], /preset huge: not one of tiny, small, demo, medium, iota-1\.5b and not a readable file/],
  ['no stages', ['--preset', 'tiny', '--stages', '0'], /--stages <n>' argument '0' is invalid\. expected an integer ≥ 1, got '0'/],
  ['more stages than layers', ['--preset', 'tiny', '--stages', '5'], /--stages 5: the tiny model has 4 layers, so 1 to 4 stages/],
  ['a fractional stage count', ['--preset', 'tiny', '--stages', '1.5'], /expected an integer ≥ 1, got '1\.5'/],
  ['a batch that is not a number', ['--preset', 'tiny', '--stages', '2', '--batch', 'x'], /--batch <n>' argument 'x' is invalid/],
  ['no --stages', ['--preset', 'tiny'], /required option '--stages <n>' not specified/],
] as const) {
  test(`tah plan refuses ${what} in one line`, async () => {
    const r = await runTah(['plan', ...args, '--json'], { cwd: dir });
    assertFailsOnStderr(r, problem);
    assertJsonFailure(r, problem);
  });
}

test('tah --help lists plan', async () => {
  const r = await runTah(['--help'], { cwd: dir });
  assert.match(r.stdout, /^\s+plan \[options\]\s+cut a model into stages/m);
});
