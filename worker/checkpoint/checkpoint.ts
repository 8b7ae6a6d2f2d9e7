// The training engine's checkpoint: ONE safetensors file per stage with the model weights under
// their Hugging Face names (MODEL.md), the AdamW moments under `optimizer.exp_avg.<name>` and
// `optimizer.exp_avg_sq.<name>`, and string metadata saying what the file holds. A whole-model
// checkpoint without optimizer state therefore loads into transformers or torch as it is.
import { bottleneckAfter, headDim, parseModelConfig, type ModelConfig } from '../model/config.ts';
import { encodeSafetensors, readSafetensorsFile, toFloat32, writeFileAtomic, type TensorIn } from './safetensors.ts';

export const CHECKPOINT_FORMAT = 'tah-checkpoint';
export const CHECKPOINT_FORMAT_VERSION = '1';
const RESERVED_KEYS = ['format', 'format_version', 'config', 'step', 'layers', 'has_embed', 'has_head'];
const EXP_AVG = 'optimizer.exp_avg.';
const EXP_AVG_SQ = 'optimizer.exp_avg_sq.';

/** Which part of the model a stage owns: layers first..last (inclusive), plus embed and/or head. */
export interface StageSpan { layers: [number, number]; hasEmbed: boolean; hasHead: boolean }
export interface Tensor32 { shape: number[]; data: Float32Array }
export type TensorMap = Map<string, Tensor32>;
export interface Checkpoint extends StageSpan {
  config: ModelConfig;
  /** Optimizer steps taken. */
  step: number;
  weights: TensorMap;
  optimizer?: { expAvg: TensorMap; expAvgSq: TensorMap };
  /** Free-form metadata (training recipe, tokenizer, ...). */
  extra?: Record<string, string>;
}

/** The span of a single-process (unsplit) model. */
export const wholeModel = (config: ModelConfig): StageSpan => ({ layers: [0, config.n_layers - 1], hasEmbed: true, hasHead: true });

/**
 * The parameters a stage owns, by Hugging Face name, in model order (embed, per layer: input
 * norm, q, k, v, o, post-attention norm, gate, up, down, then final norm and lm_head). This is
 * the one source of parameter names and shapes for the engine and for checkpoints. A bottleneck
 * after layer i (llama.ts) puts its encoder under layer i and its decoder under layer i + 1.
 */
export function expectedParameterShapes(config: ModelConfig, span: StageSpan): Map<string, number[]> {
  const [first, last] = span.layers;
  const n = config.n_layers;
  if (!Number.isInteger(first) || !Number.isInteger(last) || first < 0 || last < first || last >= n) {
    throw new Error(`layer range ${first}-${last} is not within 0-${n - 1}`);
  }
  if (span.hasEmbed && first !== 0) throw new Error(`a stage that owns the embedding must start at layer 0, not ${first}`);
  if (span.hasHead && last !== n - 1) throw new Error(`a stage that owns the head must end at layer ${n - 1}, not ${last}`);
  const { vocab_size: v, d_model: d, ffn_hidden: f } = config;
  const q = config.n_heads * headDim(config), kv = config.n_kv_heads * headDim(config);
  const shapes = new Map<string, number[]>();
  if (span.hasEmbed) shapes.set('model.embed_tokens.weight', [v, d]);
  const b = config.bottleneck_dim ?? 0;
  for (let i = first; i <= last; i++) {
    const p = `model.layers.${i}.`;
    if (i > 0 && bottleneckAfter(config, i - 1)) {
      shapes.set(`${p}bottleneck.decode.weight`, [d, b]);
      shapes.set(`${p}bottleneck.decode_embed.weight`, [v, d]);
    }
    shapes.set(`${p}input_layernorm.weight`, [d]);
    shapes.set(`${p}self_attn.q_proj.weight`, [q, d]);
    shapes.set(`${p}self_attn.k_proj.weight`, [kv, d]);
    shapes.set(`${p}self_attn.v_proj.weight`, [kv, d]);
    shapes.set(`${p}self_attn.o_proj.weight`, [d, q]);
    shapes.set(`${p}post_attention_layernorm.weight`, [d]);
    shapes.set(`${p}mlp.gate_proj.weight`, [f, d]);
    shapes.set(`${p}mlp.up_proj.weight`, [f, d]);
    shapes.set(`${p}mlp.down_proj.weight`, [d, f]);
    if (bottleneckAfter(config, i)) {
      shapes.set(`${p}bottleneck.encode_norm.weight`, [d]);
      shapes.set(`${p}bottleneck.encode.weight`, [b, d]);
    }
  }
  if (span.hasHead) {
    shapes.set('model.norm.weight', [d]);
    shapes.set('lm_head.weight', [v, d]);
  }
  return shapes;
}

/** Checks a checkpoint and writes it atomically: the file is either the old one or complete. */
export async function saveCheckpoint(path: string, ckpt: Checkpoint): Promise<void> {
  const fail: Fail = failer(path);
  const config = parseModelConfig(ckpt.config);
  if (!Number.isSafeInteger(ckpt.step) || ckpt.step < 0) fail(`step must be a non-negative integer, got ${ckpt.step}`);
  for (const k of Object.keys(ckpt.extra ?? {})) if (RESERVED_KEYS.includes(k)) fail(`extra metadata key "${k}" is reserved`);
  const { weights, optimizer } = checkTensors(fail, config, ckpt, ckpt.weights, ckpt.optimizer?.expAvg, ckpt.optimizer?.expAvgSq);

  const tensors: Record<string, TensorIn> = {};
  const add = (prefix: string, m: TensorMap) => {
    for (const [name, t] of m) tensors[prefix + name] = { dtype: 'F32', shape: t.shape, data: t.data };
  };
  add('', weights);
  if (optimizer) {
    add(EXP_AVG, optimizer.expAvg);
    add(EXP_AVG_SQ, optimizer.expAvgSq);
  }
  const metadata: Record<string, string> = {
    ...ckpt.extra,
    format: CHECKPOINT_FORMAT,
    format_version: CHECKPOINT_FORMAT_VERSION,
    config: JSON.stringify(config),
    step: String(ckpt.step),
    layers: `${ckpt.layers[0]}-${ckpt.layers[1]}`,
    has_embed: String(ckpt.hasEmbed),
    has_head: String(ckpt.hasHead),
  };
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Reads and fully validates a checkpoint; throws one line naming the file and the problem. */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  const fail: Fail = failer(path);
  const { tensors, metadata: meta } = await readSafetensorsFile(path, `checkpoint ${path}`);
  if (meta.format !== CHECKPOINT_FORMAT) fail(`not a ${CHECKPOINT_FORMAT} file (metadata format is ${JSON.stringify(meta.format ?? null)})`);
  if (meta.format_version !== CHECKPOINT_FORMAT_VERSION) fail(`unsupported format_version ${JSON.stringify(meta.format_version ?? null)}`);
  let config: ModelConfig;
  try {
    config = parseModelConfig(JSON.parse(meta.config ?? 'null'));
  } catch (e) {
    fail(`bad config metadata: ${(e as Error).message}`);
  }
  if (!/^\d+$/.test(meta.step ?? '')) fail(`bad step metadata ${JSON.stringify(meta.step ?? null)}`);
  const range = /^(\d+)-(\d+)$/.exec(meta.layers ?? '');
  if (!range) fail(`bad layers metadata ${JSON.stringify(meta.layers ?? null)} (want "first-last")`);
  const flag = (key: string): boolean => {
    if (meta[key] !== 'true' && meta[key] !== 'false') fail(`bad ${key} metadata ${JSON.stringify(meta[key] ?? null)}`);
    return meta[key] === 'true';
  };
  const span: StageSpan = { layers: [Number(range[1]), Number(range[2])], hasEmbed: flag('has_embed'), hasHead: flag('has_head') };

  const weights: TensorMap = new Map(), expAvg: TensorMap = new Map(), expAvgSq: TensorMap = new Map();
  for (const [name, t] of tensors) {
    if (t.dtype !== 'F32') fail(`tensor ${name} has dtype ${t.dtype}, expected F32`);
    const v = { shape: t.shape, data: toFloat32(t) };
    if (name.startsWith(EXP_AVG)) expAvg.set(name.slice(EXP_AVG.length), v);
    else if (name.startsWith(EXP_AVG_SQ)) expAvgSq.set(name.slice(EXP_AVG_SQ.length), v);
    else weights.set(name, v);
  }
  const checked = checkTensors(fail, config, span, weights, expAvg, expAvgSq);
  const extra = Object.fromEntries(Object.entries(meta).filter(([k]) => !RESERVED_KEYS.includes(k)));
  return { config, step: Number(meta.step), ...span, ...checked, extra };
}

type Fail = (problem: string) => never;
const failer = (path: string): Fail => (problem) => {
  throw new Error(`checkpoint ${path}: ${problem}`);
};
const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Checks weights (and moments, when any are given) against the names and shapes the config
 * implies; returns them in model order. Moments are all present or all absent.
 */
function checkTensors(fail: Fail, config: ModelConfig, span: StageSpan, weights: TensorMap, expAvg?: TensorMap, expAvgSq?: TensorMap) {
  let expected: Map<string, number[]>;
  try {
    expected = expectedParameterShapes(config, span);
  } catch (e) {
    fail((e as Error).message);
  }
  const check = (m: TensorMap, prefix: string, nonNegative = false): TensorMap => {
    for (const name of m.keys()) if (!expected.has(name)) fail(`unexpected tensor ${prefix}${name}`);
    const ordered: TensorMap = new Map();
    for (const [name, shape] of expected) {
      const t = m.get(name);
      if (!t) fail(`missing tensor ${prefix}${name}`);
      if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
        fail(`shape mismatch for ${prefix}${name}: expected ${fmt(shape)} got ${fmt(t.shape)}`);
      }
      const size = shape.reduce((a, b) => a * b, 1);
      if (t.data.length !== size) fail(`tensor ${prefix}${name} has ${t.data.length} values, shape ${fmt(shape)} needs ${size}`);
      for (let i = 0; i < size; i++) {
        const x = t.data[i];
        if (!Number.isFinite(x)) fail(`tensor ${prefix}${name} holds a non-finite value (${x}) at index ${i}`);
        if (nonNegative && x < 0) fail(`tensor ${prefix}${name} holds a negative second moment (${x}) at index ${i}`);
      }
      ordered.set(name, t);
    }
    return ordered;
  };
  const out: Pick<Checkpoint, 'weights' | 'optimizer'> = { weights: check(weights, '') };
  if (expAvg?.size || expAvgSq?.size) {
    out.optimizer = { expAvg: check(expAvg ?? new Map(), EXP_AVG), expAvgSq: check(expAvgSq ?? new Map(), EXP_AVG_SQ, true) };
  }
  return out;
}
