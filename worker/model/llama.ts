// The Llama-style model of MODEL.md as a composition of named blocks over the graph builder.
// Activations inside a stage are [batch·seq, d_model] rows, so every linear layer is one Gemm
// with the Hugging Face [out, in] weight used transposed.
import type { StageSpan } from '../checkpoint/checkpoint.ts';
import type { Graph, Value } from '../engine/graph.ts';
import { type ModelConfig, bottleneckAfter, headDim } from './config.ts';

export interface StageInputs {
  /** int64 [B, T] token ids (first stage) or the previous stage's output [B, T, d or bottleneck_dim]. */
  input: Value;
  /** int64 [B, T] token ids, for a later stage that decodes a bottleneck (stageNeedsTokens). */
  tokens?: Value;
  /** int64 [B, T] next-token targets (last stage only). */
  targets?: Value;
  /** Looks up a parameter view by its Hugging Face name. */
  param: (name: string) => Value;
}

/** Tables shared by every layer of a stage: RoPE, the rotate-half matrix and the causal mask. */
interface Context {
  config: ModelConfig;
  batch: number;
  seq: number;
  cos: Value;
  sin: Value;
  rotateHalf: Value;
  mask: Value;
}

const linear = (g: Graph, x: Value, w: Value): Value => g.gemm(x, w, { transB: true });

/** x / rms(x) over the last axis. */
function unitRms(g: Graph, x: Value, eps: number): Value {
  const meanSquare = g.reduceMean(g.mul(x, x), [-1]);
  return g.mul(x, g.reciprocal(g.sqrt(g.add(meanSquare, g.scalar(eps)))));
}

export function rmsNorm(g: Graph, x: Value, w: Value, eps: number): Value {
  return g.mul(unitRms(g, x, eps), w);
}

/** q·cos + rotate_half(q)·sin; rotate_half is a constant signed permutation, applied as a MatMul. */
function rope(g: Graph, ctx: Context, x: Value): Value {
  return g.add(g.mul(x, ctx.cos), g.mul(g.matmul(x, ctx.rotateHalf), ctx.sin));
}

/**
 * Causal grouped-query attention. Query heads that share a key/value head are stacked along the
 * sequence axis ([B, kv, rep·T, hd]), so keys and values are never copied per query head.
 */
function attention(g: Graph, ctx: Context, x: Value, prefix: string, param: (n: string) => Value): Value {
  const { config: c, batch: B, seq: T } = ctx;
  const hd = headDim(c);
  const kv = c.n_kv_heads;
  const rep = c.n_heads / kv;
  const heads = (w: Value, n: number): Value => g.transpose(g.reshape(linear(g, x, w), [B, T, n, hd]), [0, 2, 1, 3]);
  const q = g.scale(rope(g, ctx, heads(param(`${prefix}q_proj.weight`), c.n_heads)), 1 / Math.sqrt(hd));
  const k = rope(g, ctx, heads(param(`${prefix}k_proj.weight`), kv));
  const v = heads(param(`${prefix}v_proj.weight`), kv);
  const scores = g.add(g.matmul(g.reshape(q, [B, kv, rep * T, hd]), g.transpose(k, [0, 1, 3, 2])), ctx.mask);
  const out = g.reshape(g.matmul(g.softmax(scores), v), [B, c.n_heads, T, hd]);
  const merged = g.reshape(g.transpose(out, [0, 2, 1, 3]), [B * T, c.n_heads * hd]);
  return linear(g, merged, param(`${prefix}o_proj.weight`));
}

function mlp(g: Graph, x: Value, prefix: string, param: (n: string) => Value): Value {
  const gate = g.silu(linear(g, x, param(`${prefix}gate_proj.weight`)));
  return linear(g, g.mul(gate, linear(g, x, param(`${prefix}up_proj.weight`))), param(`${prefix}down_proj.weight`));
}

function decoderLayer(g: Graph, ctx: Context, x: Value, i: number, param: (n: string) => Value): Value {
  const p = `model.layers.${i}.`;
  const eps = ctx.config.norm_eps;
  const h = g.add(x, attention(g, ctx, rmsNorm(g, x, param(`${p}input_layernorm.weight`), eps), `${p}self_attn.`, param));
  return g.add(h, mlp(g, rmsNorm(g, h, param(`${p}post_attention_layernorm.weight`), eps), `${p}mlp.`, param));
}

/**
 * The bottleneck at a stage boundary (docs/COMPRESSION.md). The encoder normalises the residual
 * stream, projects it to bottleneck_dim channels and squashes them with tanh, so what crosses the
 * wire lies in (−1, 1) for the codecs; the decoder projects back, adds its own embedding of the
 * sample's tokens (which every stage reads from the dataset, so the narrow channel carries context
 * rather than token identity) and normalises the sum to unit RMS: a freshly decoded stream is tiny
 * at first, and RMSNorm's 1/rms then magnified its gradients into loss spikes.
 */
function bottleneckEncode(g: Graph, ctx: Context, x: Value, i: number, param: (n: string) => Value): Value {
  const p = `model.layers.${i}.bottleneck.`;
  const code = linear(g, rmsNorm(g, x, param(`${p}encode_norm.weight`), ctx.config.norm_eps), param(`${p}encode.weight`));
  return g.tanh(code);
}

function bottleneckDecode(g: Graph, ctx: Context, z: Value, tokens: Value, i: number, param: (n: string) => Value): Value {
  const p = `model.layers.${i}.bottleneck.`;
  const h = g.add(linear(g, z, param(`${p}decode.weight`)), g.gather(param(`${p}decode_embed.weight`), tokens));
  return unitRms(g, h, ctx.config.norm_eps);
}

/** Channels of a stage's input (and of its output, `end`): bottleneck_dim where a bottleneck crosses. */
export function stageWidth(config: ModelConfig, span: StageSpan, end: 'input' | 'output'): number {
  const crosses = end === 'input' ? !span.hasEmbed && bottleneckAfter(config, span.layers[0] - 1) : !span.hasHead && bottleneckAfter(config, span.layers[1]);
  return crosses ? config.bottleneck_dim! : config.d_model;
}

/** Whether a stage needs the sample's token ids beside its input: it decodes a bottleneck and has no embedding. */
export function stageNeedsTokens(config: ModelConfig, span: StageSpan): boolean {
  if (span.hasEmbed) return false;
  for (let i = span.layers[0]; i <= span.layers[1]; i++) if (bottleneckAfter(config, i - 1)) return true;
  return false;
}

function context(g: Graph, config: ModelConfig, batch: number, seq: number): Context {
  const hd = headDim(config);
  const half = hd / 2;
  const float = (n: number): Float32Array | Float64Array => (g.floatType === 'float32' ? new Float32Array(n) : new Float64Array(n));
  const cos = float(seq * hd);
  const sin = float(seq * hd);
  for (let t = 0; t < seq; t++) {
    for (let i = 0; i < half; i++) {
      const f = t * Math.pow(config.rope_theta, (-2 * i) / hd);
      cos[t * hd + i] = cos[t * hd + i + half] = Math.cos(f);
      sin[t * hd + i] = sin[t * hd + i + half] = Math.sin(f);
    }
  }
  // rotate_half([a, b]) = [-b, a] as x @ R: column j < half takes -x[j + half], column j ≥ half takes x[j - half].
  const rot = float(hd * hd);
  for (let j = 0; j < half; j++) {
    rot[(j + half) * hd + j] = -1;
    rot[j * hd + j + half] = 1;
  }
  // Causal mask for query rows stacked rep times along the sequence axis (see attention()).
  const rep = config.n_heads / config.n_kv_heads;
  const mask = float(rep * seq * seq);
  for (let r = 0; r < rep * seq; r++) for (let s = (r % seq) + 1; s < seq; s++) mask[r * seq + s] = -Infinity;
  return {
    config,
    batch,
    seq,
    cos: g.constant(cos, g.floatType, [seq, hd]),
    sin: g.constant(sin, g.floatType, [seq, hd]),
    rotateHalf: g.constant(rot, g.floatType, [hd, hd]),
    mask: g.constant(mask, g.floatType, [rep * seq, seq]),
  };
}

/**
 * A stage's forward computation. Returns the stage output [B, T, d] or, for the last stage, the
 * mean cross-entropy loss (a scalar).
 */
export function buildStage(g: Graph, config: ModelConfig, span: StageSpan, { input, tokens, targets, param }: StageInputs): { output?: Value; loss?: Value } {
  const [B, T] = input.shape;
  const ctx = context(g, config, B, T);
  const ids = span.hasEmbed ? g.reshape(input, [B * T]) : tokens && g.reshape(tokens, [B * T]);
  const decode = (z: Value, i: number): Value => {
    if (!ids) throw new Error(`layer ${i} decodes a bottleneck: the stage needs the token ids`);
    return bottleneckDecode(g, ctx, z, ids, i, param);
  };
  const [first, last] = span.layers;
  let x = span.hasEmbed ? g.gather(param('model.embed_tokens.weight'), ids!) : g.reshape(input, [B * T, stageWidth(config, span, 'input')]);
  if (!span.hasEmbed && bottleneckAfter(config, first - 1)) x = decode(x, first);
  for (let i = first; i <= last; i++) {
    x = decoderLayer(g, ctx, x, i, param);
    if (!bottleneckAfter(config, i)) continue;
    x = bottleneckEncode(g, ctx, x, i, param);
    // A boundary inside the stage (a whole-model graph of a split model): the float32 codec.
    if (i < last) x = decode(x, i + 1);
  }
  if (!span.hasHead) return { output: g.reshape(x, [B, T, stageWidth(config, span, 'output')]) };
  if (!targets) throw new Error('the last stage needs targets');
  const logits = linear(g, rmsNorm(g, x, param('model.norm.weight'), config.norm_eps), param('lm_head.weight'));
  return { loss: g.softmaxCrossEntropy(logits, g.reshape(targets, [B * T])).loss };
}
