// `tah train` end to end, as a user runs it: the tiny preset learns (the acceptance run), its
// checkpoint gives the same loss in the PyTorch reference as in our engine, and the small
// preset stays within its memory budget.
import assert from 'node:assert/strict';
import { constants, existsSync } from 'node:fs';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { loadCheckpoint } from '../../worker/checkpoint/checkpoint.ts';
import { bpeFromJSON } from '../../worker/data/bpe.ts';
import { loadPreset } from '../../worker/model/config.ts';
import { engineLoss, heldoutLikeTokens, relativeError, writeTokens } from '../helpers/engine-loss.ts';
import { runTorchScript, torchSkip } from '../helpers/torch.ts';
import { type TahRun, jsonLines, runTah, show, tempDir } from './run-tah.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
interface TinyRun { run: TahRun; lines: Record<string, unknown>[]; summary: Record<string, unknown>; checkpoint: string }
/** The one 300-step tiny run that the tests of this file share (started once, even if it fails). */
let tiny: Promise<TinyRun> | undefined;

before(async () => {
  ({ dir, cleanup } = await tempDir('train'));
});
after(() => cleanup());

function tinyRun(): Promise<TinyRun> {
  tiny ??= startTinyRun();
  return tiny;
}

async function startTinyRun(): Promise<TinyRun> {
  const run = await runTah(['train', '--preset', 'tiny', '--steps', '300', '--json'], { cwd: dir, timeoutMs: 180_000 });
  assert.equal(run.code, 0, show(run));
  const lines = jsonLines(run.stdout);
  const summary = lines[lines.length - 1];
  assert.equal(typeof summary?.checkpoint, 'string', show(run));
  return { run, lines, summary, checkpoint: resolve(dir, summary.checkpoint as string) };
}

test('tah train --preset tiny --steps 300 --json learns and ends with a summary', async (t) => {
  const { run, lines, summary, checkpoint } = await tinyRun();
  t.diagnostic(`wall time of the 300-step tiny run: ${run.wallS.toFixed(1)} s (summary wall_s ${summary.wall_s}, train_s ${summary.train_s}, ${summary.tokens_per_s} tokens/s)`);
  t.diagnostic(`held-out loss ${summary.initial_heldout_loss} -> ${summary.heldout_loss}, final train loss ${summary.final_train_loss}`);

  assert.equal(summary.summary, true);
  assert.equal(summary.ok, true);
  assert.equal(lines.filter((l) => l.summary === true).length, 1, 'exactly one summary line');
  for (const key of ['heldout_loss', 'initial_heldout_loss', 'tokens_per_s', 'wall_s']) {
    assert.equal(typeof summary[key], 'number', `summary.${key} should be a number: ${JSON.stringify(summary)}`);
    assert.ok(Number.isFinite(summary[key]), `summary.${key} = ${summary[key]}`);
  }
  assert.ok((summary.tokens_per_s as number) > 0);
  assert.ok((summary.wall_s as number) > 0);
  assert.match(summary.checkpoint as string, /^runs[\\/]train-tiny-.*\.safetensors$/, 'the default checkpoint goes under runs/ of the working directory');
  assert.ok(existsSync(checkpoint), `checkpoint ${checkpoint} does not exist`);
  assert.equal(summary.steps, 300);

  // An untrained byte model starts near ln(256) = 5.55; 300 steps bring it well below 2.45.
  const initial = summary.initial_heldout_loss as number;
  assert.ok(initial > 5.3 && initial < 5.8, `initial held-out loss ${initial} should be about 5.5`);
  assert.ok((summary.heldout_loss as number) < 2.45, `held-out loss ${summary.heldout_loss} should be below 2.45`);

  const steps = lines.filter((l) => l.event === 'step').map((l) => l.step as number);
  assert.ok(steps.length > 0, 'no step events');
  for (let i = 1; i < steps.length; i++) assert.ok(steps[i] > steps[i - 1], `step events out of order: ${steps[i - 1]} then ${steps[i]}`);
  assert.equal(steps[steps.length - 1], 300);
  for (const l of lines.filter((x) => x.event === 'step')) assert.ok(Number.isFinite(l.loss), `step ${l.step} loss ${l.loss}`);
});

test('the trained checkpoint gives the same loss in the PyTorch reference as in the engine', { skip: torchSkip }, async (t) => {
  const { checkpoint } = await tinyRun();
  const ckpt = await loadCheckpoint(checkpoint);
  const config = ckpt.config;
  assert.deepEqual(config, loadPreset('tiny'));
  const tokens = heldoutLikeTokens(config.batch_size, config.seq_len);
  const tokensFile = join(dir, 'tokens.json');
  await writeTokens(tokensFile, tokens);

  const engine = await engineLoss(checkpoint, tokens);
  const torch = (await runTorchScript(['loss', '--checkpoint', checkpoint, '--tokens', tokensFile])) as { loss: number };
  const rel = relativeError(engine, torch.loss);
  t.diagnostic(`loss on the fixed tokens: engine ${engine}, torch ${torch.loss}, relative error ${rel.toExponential(2)}`);
  assert.ok(Number.isFinite(engine) && Number.isFinite(torch.loss));
  assert.ok(rel <= 1e-4, `engine loss ${engine} vs torch ${torch.loss}: relative error ${rel}`);
});

test('tah train --preset small --steps 20 --eval-batches 2 --json peaks under 1.5 GiB resident', async (t) => {
  const time = '/usr/bin/time';
  try {
    await access(time, constants.X_OK);
  } catch {
    return t.skip(`${time} is not installed: cannot measure the peak resident size of the child`);
  }
  const rssFile = join(dir, 'small.maxrss');
  const checkpoint = join(dir, 'small.safetensors');
  const run = await runTah(['train', '--preset', 'small', '--steps', '20', '--eval-batches', '2', '--checkpoint', checkpoint, '--json'], {
    cwd: dir,
    timeoutMs: 300_000,
    wrapper: [time, '-f', '%M', '-o', rssFile],
  });
  assert.equal(run.code, 0, show(run));
  const lines = jsonLines(run.stdout);
  const summary = lines[lines.length - 1];
  assert.equal(summary.summary, true);
  assert.equal(summary.ok, true);
  // GNU time's %M: the maximum resident set size in KiB.
  const kib = Number((await readFile(rssFile, 'utf8')).trim().split('\n').pop());
  assert.ok(Number.isInteger(kib) && kib > 0, `cannot read the peak RSS from ${time}'s output`);
  const gib = (kib * 1024) / 2 ** 30;
  t.diagnostic(`small preset, 20 steps: peak RSS ${(kib / 1024).toFixed(0)} MiB (${gib.toFixed(3)} GiB), wall ${run.wallS.toFixed(1)} s, held-out loss ${summary.initial_heldout_loss} -> ${summary.heldout_loss}`);
  assert.ok(gib < 1.5, `peak resident size ${gib.toFixed(3)} GiB is over 1.5 GiB`);
});

test('Ctrl-C stops after the current step and still evaluates and saves a whole checkpoint', async () => {
  const run = await runTah(['train', '--preset', 'tiny', '--steps', '100000', '--eval-batches', '1', '--checkpoint', 'stopped.safetensors', '--json'], {
    cwd: dir,
    signalOn: { text: '"event":"step"', signal: 'SIGINT' },
  });
  assert.equal(run.code, 0, show(run));
  const lines = jsonLines(run.stdout);
  const summary = lines[lines.length - 1];
  assert.equal(summary.interrupted, true);
  assert.equal(summary.steps_requested, 100000);
  assert.ok((summary.steps as number) >= 1 && (summary.steps as number) < 100000);
  const ckpt = await loadCheckpoint(join(dir, 'stopped.safetensors'));
  assert.equal(ckpt.step, summary.steps);
});

test('--tokenizer bpe learns a BPE vocabulary of the preset size and stores it in the checkpoint', async () => {
  const preset = { ...loadPreset('tiny'), vocab_size: 512 };
  await writeFile(join(dir, 'bpe512.json'), JSON.stringify(preset));
  const run = await runTah(['train', '--preset', 'bpe512.json', '--tokenizer', 'bpe', '--steps', '3', '--eval-batches', '1', '--checkpoint', 'bpe.safetensors', '--json'], { cwd: dir });
  assert.equal(run.code, 0, show(run));
  const lines = jsonLines(run.stdout);
  assert.equal(lines[lines.length - 1].tokenizer, 'bpe-512');
  const ckpt = await loadCheckpoint(join(dir, 'bpe.safetensors'));
  const tokenizer = bpeFromJSON(JSON.parse(ckpt.extra!.tokenizer_json));
  assert.equal(tokenizer.vocabSize, 512);
  assert.equal(tokenizer.decode(tokenizer.encode('The jury said it did not know.')), 'The jury said it did not know.');
});
