import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { expectedParameterShapes, saveCheckpoint, wholeModel } from '../../../worker/checkpoint/checkpoint.ts';
import { exportHuggingFace } from '../../../worker/checkpoint/hf-export.ts';
import { decodeSafetensors, toFloat32 } from '../../../worker/checkpoint/safetensors.ts';
import { parseModelConfig } from '../../../worker/model/config.ts';
import { randomWeights } from '../../helpers/random-weights.ts';

const config = parseModelConfig({ vocab_size: 64, d_model: 16, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_hidden: 32, seq_len: 8, batch_size: 2, rope_theta: 500000, norm_eps: 1e-6 });
let dir = '', whole = '', stage = '';
const weights = randomWeights(config, 7);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tah-hf-export-'));
  whole = join(dir, 'whole.safetensors');
  stage = join(dir, 'stage.safetensors');
  const moments = new Map([...weights].map(([n, t]) => [n, { shape: t.shape, data: new Float32Array(t.data.length) }]));
  await saveCheckpoint(whole, { config, step: 10, ...wholeModel(config), weights, optimizer: { expAvg: moments, expAvgSq: moments } });
  const span = { layers: [0, 0] as [number, number], hasEmbed: true, hasHead: false };
  await saveCheckpoint(stage, { config, step: 10, ...span, weights: randomWeights(config, 7, span) });
});
after(() => rm(dir, { recursive: true, force: true }));

test('writes config.json and model.safetensors with exactly the model names', async () => {
  const out = join(dir, 'hf');
  await exportHuggingFace(whole, out);
  assert.deepEqual((await readdir(out)).sort(), ['config.json', 'model.safetensors']);
  const cfg = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
  assert.deepEqual(cfg.architectures, ['LlamaForCausalLM']);
  assert.equal(cfg.model_type, 'llama');
  assert.deepEqual(
    [cfg.vocab_size, cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim],
    [64, 16, 32, 2, 4, 2, 4],
  );
  assert.deepEqual([cfg.max_position_embeddings, cfg.rms_norm_eps, cfg.rope_theta, cfg.rope_scaling, cfg.tie_word_embeddings, cfg.torch_dtype], [8, 1e-6, 500000, null, false, 'float32']);
  assert.equal(cfg.hidden_act, 'silu');

  const { tensors, metadata } = decodeSafetensors(await readFile(join(out, 'model.safetensors')));
  assert.deepEqual(metadata, { format: 'pt' });
  assert.deepEqual([...tensors.keys()].sort(), [...expectedParameterShapes(config, wholeModel(config)).keys()].sort());
  for (const [name, t] of weights) {
    assert.deepEqual(tensors.get(name)!.shape, t.shape);
    assert.deepEqual(toFloat32(tensors.get(name)!), t.data, name);
  }
  assert.deepEqual((await readdir(dir)).sort(), ['hf', 'stage.safetensors', 'whole.safetensors']);
});

test('refuses a stage checkpoint and leaves nothing behind', async () => {
  await assert.rejects(exportHuggingFace(stage, join(dir, 'hf-stage')), /holds only a stage \(layers 0-0, embed true, head false\); only a whole-model checkpoint can be exported/);
  await assert.rejects(exportHuggingFace(join(dir, 'missing.safetensors'), join(dir, 'hf-missing')), /cannot read \(ENOENT\)/);
  assert.deepEqual((await readdir(dir)).sort(), ['hf', 'stage.safetensors', 'whole.safetensors']);
});

test('refuses a non-empty directory unless told to overwrite', async () => {
  const out = join(dir, 'hf2');
  await mkdir(out);
  await exportHuggingFace(whole, out); // empty: fine
  await writeFile(join(out, 'stale.txt'), 'old');
  await assert.rejects(exportHuggingFace(whole, out), /directory exists and is not empty \(use --overwrite to replace it\)/);
  await exportHuggingFace(whole, out, { overwrite: true });
  assert.deepEqual((await readdir(out)).sort(), ['config.json', 'model.safetensors']);
  assert.ok(!(await readdir(dir)).some((f) => f.startsWith('.')), 'no temporary directories left');
});
