// `tah export CKPT --hf DIR`: a Hugging Face LlamaForCausalLM folder from a fresh tiny
// checkpoint, with transformers' config keys and tensor names, and no optimizer state; an
// existing non-empty folder is replaced only with --overwrite.
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadCheckpoint } from '../../worker/checkpoint/checkpoint.ts';
import { decodeSafetensors } from '../../worker/checkpoint/safetensors.ts';
import { loadPreset } from '../../worker/model/config.ts';
import { assertFailsOnStderr, assertJsonFailure, jsonLines, runTah, show, tempDir } from './run-tah.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
let checkpoint = '';
const preset = loadPreset('tiny');

before(async () => {
  ({ dir, cleanup } = await tempDir('export'));
  checkpoint = join(dir, 'tiny.safetensors');
  const r = await runTah(['train', '--preset', 'tiny', '--steps', '5', '--eval-batches', '1', '--checkpoint', checkpoint, '--json'], { cwd: dir });
  assert.equal(r.code, 0, show(r));
});
after(() => cleanup());

/** transformers' LlamaForCausalLM parameter names and shapes, written out independently of the product code. */
function huggingFaceLlamaShapes(c: typeof preset): Map<string, number[]> {
  const hd = c.d_model / c.n_heads;
  const m = new Map<string, number[]>([['model.embed_tokens.weight', [c.vocab_size, c.d_model]]]);
  for (let i = 0; i < c.n_layers; i++) {
    m.set(`model.layers.${i}.self_attn.q_proj.weight`, [c.n_heads * hd, c.d_model]);
    m.set(`model.layers.${i}.self_attn.k_proj.weight`, [c.n_kv_heads * hd, c.d_model]);
    m.set(`model.layers.${i}.self_attn.v_proj.weight`, [c.n_kv_heads * hd, c.d_model]);
    m.set(`model.layers.${i}.self_attn.o_proj.weight`, [c.d_model, c.n_heads * hd]);
    m.set(`model.layers.${i}.mlp.gate_proj.weight`, [c.ffn_hidden, c.d_model]);
    m.set(`model.layers.${i}.mlp.up_proj.weight`, [c.ffn_hidden, c.d_model]);
    m.set(`model.layers.${i}.mlp.down_proj.weight`, [c.d_model, c.ffn_hidden]);
    m.set(`model.layers.${i}.input_layernorm.weight`, [c.d_model]);
    m.set(`model.layers.${i}.post_attention_layernorm.weight`, [c.d_model]);
  }
  m.set('model.norm.weight', [c.d_model]);
  m.set('lm_head.weight', [c.vocab_size, c.d_model]);
  return m;
}

test('tah export writes config.json and model.safetensors with the Hugging Face names', async () => {
  const hf = join(dir, 'hf');
  const r = await runTah(['export', checkpoint, '--hf', hf, '--json'], { cwd: dir });
  assert.equal(r.code, 0, show(r));
  const summary = jsonLines(r.stdout).pop()!;
  assert.equal(summary.summary, true);
  assert.equal(summary.ok, true);
  assert.equal(summary.hf, hf);
  assert.deepEqual((await readdir(hf)).sort(), ['config.json', 'model.safetensors']);

  const config = JSON.parse(await readFile(join(hf, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config.model_type, 'llama');
  assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
  assert.equal(config.vocab_size, preset.vocab_size);
  assert.equal(config.hidden_size, preset.d_model);
  assert.equal(config.intermediate_size, preset.ffn_hidden);
  assert.equal(config.num_hidden_layers, preset.n_layers);
  assert.equal(config.num_attention_heads, preset.n_heads);
  assert.equal(config.num_key_value_heads, preset.n_kv_heads);
  assert.equal(config.head_dim, preset.d_model / preset.n_heads);
  assert.equal(config.max_position_embeddings, preset.seq_len);
  assert.equal(config.rms_norm_eps, preset.norm_eps);
  assert.equal(config.rope_theta, preset.rope_theta);
  assert.equal(config.hidden_act, 'silu');
  assert.equal(config.tie_word_embeddings, false);

  const { tensors, metadata } = decodeSafetensors(await readFile(join(hf, 'model.safetensors')), 'model.safetensors');
  assert.equal(metadata.format, 'pt');
  const names = [...tensors.keys()];
  assert.deepEqual(names.filter((n) => n.startsWith('optimizer.')), [], 'optimizer state must not be exported');
  const expected = huggingFaceLlamaShapes(preset);
  assert.deepEqual([...names].sort(), [...expected.keys()].sort());
  const trained = await loadCheckpoint(checkpoint);
  assert.ok(trained.optimizer, 'the training checkpoint itself carries the AdamW moments');
  for (const [name, t] of tensors) {
    assert.equal(t.dtype, 'F32', name);
    assert.deepEqual(t.shape, expected.get(name), name);
    const values = new Float32Array(new Uint8Array(t.bytes).buffer); // an aligned copy
    assert.deepEqual(values, trained.weights.get(name)!.data, `${name} differs from the checkpoint`);
  }
});

test('exporting into a non-empty folder needs --overwrite', async () => {
  const hf = join(dir, 'again');
  const first = await runTah(['export', checkpoint, '--hf', hf], { cwd: dir });
  assert.equal(first.code, 0, show(first));
  assert.match(first.stdout, /wrote .*config\.json and .*model\.safetensors/);
  // Something of the user's in the folder: kept on refusal, gone after --overwrite.
  await writeFile(join(hf, 'notes.txt'), 'mine\n');
  const config = await readFile(join(hf, 'config.json'));

  const refused = await runTah(['export', checkpoint, '--hf', hf, '--json'], { cwd: dir });
  assertFailsOnStderr(refused, /directory exists and is not empty/);
  assertJsonFailure(refused, /directory exists and is not empty/);
  assert.deepEqual((await readdir(hf)).sort(), ['config.json', 'model.safetensors', 'notes.txt']);
  assert.deepEqual(await readFile(join(hf, 'config.json')), config);

  const replaced = await runTah(['export', checkpoint, '--hf', hf, '--overwrite', '--json'], { cwd: dir });
  assert.equal(replaced.code, 0, show(replaced));
  assert.equal(jsonLines(replaced.stdout).pop()!.ok, true);
  assert.deepEqual((await readdir(hf)).sort(), ['config.json', 'model.safetensors']);
  // No temporary or set-aside folders next to it.
  assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.')), []);
});
