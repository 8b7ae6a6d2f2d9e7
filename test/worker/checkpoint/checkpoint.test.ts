import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  expectedParameterShapes, loadCheckpoint, saveCheckpoint, wholeModel, type Checkpoint, type TensorMap,
} from '../../../worker/checkpoint/checkpoint.ts';
import { encodeSafetensors, readSafetensorsFile, type TensorIn } from '../../../worker/checkpoint/safetensors.ts';
import { loadPreset, parseModelConfig } from '../../../worker/model/config.ts';
import { randomWeights } from '../../helpers/random-weights.ts';

const config = parseModelConfig({ vocab_size: 64, d_model: 16, n_layers: 3, n_heads: 4, n_kv_heads: 2, ffn_hidden: 32, seq_len: 8, batch_size: 2, rope_theta: 10000, norm_eps: 1e-5 });
const scaled = (m: TensorMap, k: number): TensorMap => new Map([...m].map(([n, t]) => [n, { shape: t.shape, data: t.data.map((x) => Math.abs(x) * k) }]));

function whole(seed = 1): Checkpoint {
  const weights = randomWeights(config, seed);
  return { config, step: 42, ...wholeModel(config), weights, optimizer: { expAvg: scaled(weights, -1), expAvgSq: scaled(weights, 0.01) }, extra: { tokenizer: 'bytes', recipe: '{"lr":0.003}' } };
}

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tah-checkpoint-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** Writes a file in checkpoint form without saveCheckpoint's checks, to test what loading catches. */
async function writeRaw(name: string, c: Checkpoint, edit: (t: Record<string, TensorIn>, meta: Record<string, string>) => void): Promise<string> {
  const tensors: Record<string, TensorIn> = {};
  for (const [n, t] of c.weights) tensors[n] = { dtype: 'F32', shape: t.shape, data: t.data };
  for (const [n, t] of c.optimizer?.expAvg ?? []) tensors[`optimizer.exp_avg.${n}`] = { dtype: 'F32', shape: t.shape, data: t.data };
  for (const [n, t] of c.optimizer?.expAvgSq ?? []) tensors[`optimizer.exp_avg_sq.${n}`] = { dtype: 'F32', shape: t.shape, data: t.data };
  const meta = { format: 'tah-checkpoint', format_version: '1', config: JSON.stringify(c.config), step: String(c.step), layers: c.layers.join('-'), has_embed: String(c.hasEmbed), has_head: String(c.hasHead) };
  edit(tensors, meta);
  const path = join(dir, name);
  await writeFile(path, encodeSafetensors(tensors, meta));
  return path;
}
const loadFails = (path: string, pattern: RegExp) =>
  assert.rejects(loadCheckpoint(path), (e: Error) => {
    assert.ok(e.message.startsWith(`checkpoint ${path}: `), e.message);
    assert.match(e.message, pattern);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });

describe('expectedParameterShapes', () => {
  test('lists the Hugging Face names in model order with their shapes', () => {
    const s = expectedParameterShapes(config, { layers: [1, 1], hasEmbed: false, hasHead: false });
    assert.deepEqual([...s], [
      ['model.layers.1.input_layernorm.weight', [16]],
      ['model.layers.1.self_attn.q_proj.weight', [16, 16]],
      ['model.layers.1.self_attn.k_proj.weight', [8, 16]],
      ['model.layers.1.self_attn.v_proj.weight', [8, 16]],
      ['model.layers.1.self_attn.o_proj.weight', [16, 16]],
      ['model.layers.1.post_attention_layernorm.weight', [16]],
      ['model.layers.1.mlp.gate_proj.weight', [32, 16]],
      ['model.layers.1.mlp.up_proj.weight', [32, 16]],
      ['model.layers.1.mlp.down_proj.weight', [16, 32]],
    ]);
    const all = [...expectedParameterShapes(config, wholeModel(config)).keys()];
    assert.equal(all.length, 2 + 9 * 3 + 1);
    assert.equal(all[0], 'model.embed_tokens.weight');
    assert.deepEqual(all.slice(-2), ['model.norm.weight', 'lm_head.weight']);
  });

  test('counts the parameters of the tiny preset', () => {
    const tiny = loadPreset('tiny');
    const n = [...expectedParameterShapes(tiny, wholeModel(tiny)).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    // embed + head, 4 layers of (2 norms, q and o, k and v with 2 of 4 heads, gate/up/down), final norm
    assert.equal(n, 2 * 256 * 64 + 4 * (2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 176) + 64);
  });

  test('refuses inconsistent spans', () => {
    assert.throws(() => expectedParameterShapes(config, { layers: [1, 2], hasEmbed: true, hasHead: false }), /must start at layer 0/);
    assert.throws(() => expectedParameterShapes(config, { layers: [0, 1], hasEmbed: false, hasHead: true }), /must end at layer 2/);
    assert.throws(() => expectedParameterShapes(config, { layers: [2, 3], hasEmbed: false, hasHead: false }), /not within 0-2/);
  });
});

describe('checkpoints', () => {
  test('round-trip with optimizer moments and extra metadata', async () => {
    const c = whole();
    const path = join(dir, 'whole.safetensors');
    await saveCheckpoint(path, c);
    const got = await loadCheckpoint(path);
    assert.deepEqual(got, c);
    assert.deepEqual([...got.weights.keys()], [...expectedParameterShapes(config, wholeModel(config)).keys()]);
    const { metadata, tensors } = await readSafetensorsFile(path);
    assert.equal(metadata.format, 'tah-checkpoint');
    assert.equal(metadata.layers, '0-2');
    assert.equal(metadata.has_embed, 'true');
    assert.ok(tensors.has('optimizer.exp_avg_sq.lm_head.weight'));
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('whole')), ['whole.safetensors']);
  });

  test('round-trip of a middle stage without optimizer state', async () => {
    const span = { layers: [1, 1] as [number, number], hasEmbed: false, hasHead: false };
    const c: Checkpoint = { config, step: 0, ...span, weights: randomWeights(config, 2, span) };
    const path = join(dir, 'stage.safetensors');
    await saveCheckpoint(path, c);
    const got = await loadCheckpoint(path);
    assert.equal(got.optimizer, undefined);
    assert.deepEqual({ ...got, extra: undefined }, { ...c, extra: undefined });
    assert.equal((await readSafetensorsFile(path)).metadata.layers, '1-1');
  });

  test('save refuses bad input and leaves no file', async () => {
    const path = join(dir, 'refused.safetensors');
    const c = whole();
    c.weights.get('model.norm.weight')!.data[3] = NaN;
    await assert.rejects(saveCheckpoint(path, c), /tensor model.norm.weight holds a non-finite value \(NaN\) at index 3/);
    await assert.rejects(saveCheckpoint(path, { ...whole(), extra: { step: '9' } }), /extra metadata key "step" is reserved/);
    await assert.rejects(saveCheckpoint(path, { ...whole(), step: -1 }), /step must be a non-negative integer/);
    await assert.rejects(saveCheckpoint(path, { ...whole(), optimizer: undefined, layers: [0, 1] }), /must end at layer 2/);
    assert.ok(!(await readdir(dir)).some((f) => f.includes('refused')));
  });

  test('missing tensor', async () => {
    const path = await writeRaw('missing.safetensors', whole(), (t) => delete t['model.layers.1.mlp.up_proj.weight']);
    await loadFails(path, /missing tensor model\.layers\.1\.mlp\.up_proj\.weight$/);
  });

  test('unexpected tensor', async () => {
    const path = await writeRaw('extra.safetensors', whole(), (t) => (t['model.layers.3.input_layernorm.weight'] = { dtype: 'F32', shape: [16], data: new Float32Array(16) }));
    await loadFails(path, /unexpected tensor model\.layers\.3\.input_layernorm\.weight$/);
  });

  test('shape mismatch', async () => {
    const path = await writeRaw('shape.safetensors', whole(), (t) => (t['model.layers.0.self_attn.k_proj.weight'].shape = [16, 8]));
    await loadFails(path, /shape mismatch for model\.layers\.0\.self_attn\.k_proj\.weight: expected \[8, 16\] got \[16, 8\]$/);
  });

  test('NaN in weights', async () => {
    const c = whole();
    c.weights.get('lm_head.weight')!.data[5] = NaN;
    await loadFails(await writeRaw('nan.safetensors', c, () => {}), /tensor lm_head\.weight holds a non-finite value \(NaN\) at index 5/);
  });

  test('optimizer moments partly present', async () => {
    const path = await writeRaw('partial.safetensors', whole(), (t) => delete t['optimizer.exp_avg_sq.model.norm.weight']);
    await loadFails(path, /missing tensor optimizer\.exp_avg_sq\.model\.norm\.weight$/);
    const c = whole();
    c.optimizer!.expAvgSq.get('model.norm.weight')!.data[0] = -1;
    await loadFails(await writeRaw('negative.safetensors', c, () => {}), /negative second moment/);
  });

  test('wrong dtype', async () => {
    const path = await writeRaw('dtype.safetensors', whole(), (t) => (t['model.norm.weight'] = { dtype: 'F16', shape: [16], data: new Uint16Array(16) }));
    await loadFails(path, /tensor model\.norm\.weight has dtype F16, expected F32/);
  });

  test('bad metadata', async () => {
    await loadFails(await writeRaw('fmt.safetensors', whole(), (_, m) => (m.format = 'pt')), /not a tah-checkpoint file \(metadata format is "pt"\)/);
    await loadFails(await writeRaw('ver.safetensors', whole(), (_, m) => (m.format_version = '2')), /unsupported format_version "2"/);
    await loadFails(await writeRaw('cfg.safetensors', whole(), (_, m) => (m.config = '{"vocab_size": 64}')), /bad config metadata: invalid model config: d_model/);
    await loadFails(await writeRaw('layers.safetensors', whole(), (_, m) => (m.layers = '0..2')), /bad layers metadata "0\.\.2"/);
    await loadFails(await writeRaw('flag.safetensors', whole(), (_, m) => (m.has_head = 'yes')), /bad has_head metadata "yes"/);
    await loadFails(await writeRaw('span.safetensors', whole(), (_, m) => (m.layers = '1-2')), /must start at layer 0/);
  });

  test('corrupt and missing files', async () => {
    const path = join(dir, 'intact.safetensors');
    await saveCheckpoint(path, whole());
    const bytes = await readFile(path);
    const cut = join(dir, 'cut.safetensors');
    await writeFile(cut, bytes.subarray(0, bytes.length - 1000));
    await loadFails(cut, /truncated: header says \d+ bytes of tensor data, file has \d+$/);
    await loadFails(join(dir, 'nope.safetensors'), /cannot read \(ENOENT\)/);
  });
});
