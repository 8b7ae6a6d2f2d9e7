// The PyTorch reference reads our checkpoints: strict load of the Hugging Face names, and a loss
// near ln(vocab) for small random weights. Skips, saying how to install it, where torch is not.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { expectedParameterShapes, saveCheckpoint, wholeModel } from '../../../worker/checkpoint/checkpoint.ts';
import { parseModelConfig } from '../../../worker/model/config.ts';
import { gaussian, randomWeights } from '../../helpers/random-weights.ts';
import { runTorchScript, torchSkip } from '../../helpers/torch.ts';

const config = parseModelConfig({ vocab_size: 64, d_model: 16, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_hidden: 32, seq_len: 8, batch_size: 2, rope_theta: 10000, norm_eps: 1e-5 });
let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tah-torch-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function tokensFile(): Promise<string> {
  const normal = gaussian(3);
  const seq = () => Array.from({ length: config.seq_len + 1 }, () => Math.floor(Math.abs(normal()) * 1e6) % config.vocab_size);
  const windows = Array.from({ length: config.batch_size }, seq);
  const path = join(dir, 'tokens.json');
  await writeFile(path, JSON.stringify({ inputs: windows.map((w) => w.slice(0, -1)), targets: windows.map((w) => w.slice(1)) }));
  return path;
}

test('torch_llama.py loss loads a random-weights checkpoint strictly', { skip: torchSkip }, async () => {
  const weights = randomWeights(config, 11);
  const moments = new Map([...weights].map(([n, w]) => [n, { shape: w.shape, data: new Float32Array(w.data.length) }]));
  const path = join(dir, 'ckpt.safetensors');
  await saveCheckpoint(path, { config, step: 1, ...wholeModel(config), weights, optimizer: { expAvg: moments, expAvgSq: moments } });
  const r = (await runTorchScript(['loss', '--checkpoint', path, '--tokens', await tokensFile()])) as { loss: number; params: number };
  const params = [...expectedParameterShapes(config, wholeModel(config)).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  assert.equal(r.params, params);
  assert.ok(Math.abs(r.loss - Math.log(config.vocab_size)) < 0.05, `loss ${r.loss} should be near ln(64) = ${Math.log(64)}`);
});

test('torch_llama.py loss refuses a stage checkpoint with a clear message', { skip: torchSkip }, async () => {
  const span = { layers: [1, 1] as [number, number], hasEmbed: false, hasHead: false };
  const path = join(dir, 'stage.safetensors');
  await saveCheckpoint(path, { config, step: 1, ...span, weights: randomWeights(config, 1, span) });
  await assert.rejects(runTorchScript(['loss', '--checkpoint', path, '--tokens', await tokensFile()]), /torch_llama\.py: checkpoint .*stage\.safetensors: holds one stage \(layers 1-1\), not the whole model/);
  await assert.rejects(runTorchScript(['loss', '--checkpoint', join(dir, 'none'), '--tokens', 'x']), /cannot read \(No such file or directory\)/);
});

test('torch_llama.py bench reports throughput', { skip: torchSkip }, async () => {
  const preset = join(dir, 'preset.json');
  await writeFile(preset, JSON.stringify(config));
  const r = (await runTorchScript(['bench', preset, '--steps', '1', '--cores', '2'])) as Record<string, number> & { impl: string; layout: string; layouts: { layout: string; tokens_per_s: number; peak_rss_bytes: number }[] };
  assert.equal(r.tokens_per_step, config.batch_size * config.seq_len);
  assert.ok(r.tokens_per_s > 0);
  assert.match(r.impl, /^pytorch-\d+\.\d+/);
  // Every layout tried, each in its own process with its own peak resident size; the best is reported.
  assert.ok(r.layouts.length >= 2, JSON.stringify(r.layouts));
  assert.equal(new Set(r.layouts.map((l) => l.layout)).size, r.layouts.length);
  assert.equal(r.tokens_per_s, Math.max(...r.layouts.map((l) => l.tokens_per_s)));
  assert.equal(r.layout, r.layouts.find((l) => l.tokens_per_s === r.tokens_per_s)!.layout);
  // A python with torch holds well over 50 MiB and (here) under 4 GiB.
  for (const l of r.layouts) assert.ok(Number.isInteger(l.peak_rss_bytes) && l.peak_rss_bytes > 50 * 2 ** 20 && l.peak_rss_bytes < 4 * 2 ** 30, `${l.layout}: ${l.peak_rss_bytes}`);
  assert.ok(r.omp_threads >= 1 && r.omp_threads <= 2);
});
