// Exports a whole-model checkpoint as a Hugging Face LlamaForCausalLM directory (config.json +
// model.safetensors), loadable with `AutoModelForCausalLM.from_pretrained(dir)`.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ModelConfig } from '../model/config.ts';
import { headDim } from '../model/config.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { encodeSafetensors, type TensorIn } from './safetensors.ts';

/** The transformers config.json of a model configuration. */
export function huggingFaceConfig(c: ModelConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: c.vocab_size,
    hidden_size: c.d_model,
    intermediate_size: c.ffn_hidden,
    num_hidden_layers: c.n_layers,
    num_attention_heads: c.n_heads,
    num_key_value_heads: c.n_kv_heads,
    head_dim: headDim(c),
    hidden_act: 'silu',
    max_position_embeddings: c.seq_len,
    rms_norm_eps: c.norm_eps,
    rope_theta: c.rope_theta,
    rope_scaling: null,
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    initializer_range: 0.02,
    use_cache: true,
    bos_token_id: null,
    eos_token_id: null,
  };
}

/**
 * Writes `outDir` with config.json and model.safetensors (weights only). Everything is written
 * into a temporary sibling directory that is renamed into place, so a failure leaves nothing
 * behind. A non-empty existing `outDir` is replaced only with `overwrite: true`.
 */
export async function exportHuggingFace(checkpointPath: string, outDir: string, opts: { overwrite?: boolean } = {}): Promise<void> {
  const existing = await readdir(outDir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new Error(`export to ${outDir}: cannot use the output directory (${e.code ?? String(e)})`, { cause: e });
  });
  if (existing?.length && !opts.overwrite) throw new Error(`export to ${outDir}: directory exists and is not empty (use --overwrite to replace it)`);

  const ckpt = await loadCheckpoint(checkpointPath);
  if (!ckpt.hasEmbed || !ckpt.hasHead) {
    throw new Error(`checkpoint ${checkpointPath}: holds only a stage (layers ${ckpt.layers.join('-')}, embed ${ckpt.hasEmbed}, head ${ckpt.hasHead}); only a whole-model checkpoint can be exported`);
  }
  const tensors: Record<string, TensorIn> = {};
  for (const [name, t] of ckpt.weights) tensors[name] = { dtype: 'F32', shape: t.shape, data: t.data };

  const suffix = `${process.pid}.${randomBytes(4).toString('hex')}`;
  const tmp = join(dirname(outDir), `.${basename(outDir)}.${suffix}.tmp`);
  const old = join(dirname(outDir), `.${basename(outDir)}.${suffix}.old`);
  let movedAside = false;
  try {
    await mkdir(dirname(outDir), { recursive: true }).catch((e: NodeJS.ErrnoException) => {
      throw new Error(`export to ${outDir}: cannot create its parent folder ${dirname(outDir)} (${e.code === 'EEXIST' || e.code === 'ENOTDIR' ? 'a file is in the way' : (e.code ?? e.message)})`, { cause: e });
    });
    await mkdir(tmp);
    await writeFile(join(tmp, 'config.json'), JSON.stringify(huggingFaceConfig(ckpt.config), null, 2) + '\n');
    await writeFile(join(tmp, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
    // Move the old directory aside first (rename cannot replace a non-empty directory).
    if (existing) {
      await rename(outDir, old);
      movedAside = true;
    }
    await rename(tmp, outDir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if (movedAside) await rename(old, outDir).catch(() => {});
    throw e;
  }
  await rm(old, { recursive: true, force: true });
}
