// The model's configuration (../reference MODEL.md): one zod schema is the single source of truth
// for presets, checkpoints and the command line.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const ModelConfigSchema = z
  .object({
    vocab_size: positiveInt,
    d_model: positiveInt,
    n_layers: positiveInt,
    n_heads: positiveInt,
    n_kv_heads: positiveInt.optional(),
    ffn_hidden: positiveInt,
    seq_len: positiveInt,
    batch_size: positiveInt,
    rope_theta: z.number().positive(),
    norm_eps: z.number().positive(),
    // Activation compression (MODEL.md, docs/COMPRESSION.md): the output of each layer listed in
    // bottleneck_after is encoded to bottleneck_dim channels and decoded by the next layer.
    bottleneck_dim: positiveInt.optional(),
    bottleneck_after: z.array(z.number().int().nonnegative()).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const kv = c.n_kv_heads ?? c.n_heads;
    if (c.d_model % c.n_heads !== 0) ctx.addIssue({ code: 'custom', message: `d_model ${c.d_model} is not divisible by n_heads ${c.n_heads}` });
    else if ((c.d_model / c.n_heads) % 2 !== 0) ctx.addIssue({ code: 'custom', message: `head_dim ${c.d_model / c.n_heads} must be even for RoPE` });
    if (c.n_heads % kv !== 0) ctx.addIssue({ code: 'custom', message: `n_heads ${c.n_heads} is not a multiple of n_kv_heads ${kv}` });
    if ((c.bottleneck_dim === undefined) !== (c.bottleneck_after === undefined)) ctx.addIssue({ code: 'custom', message: 'bottleneck_dim and bottleneck_after come together' });
    if (c.bottleneck_dim !== undefined && c.bottleneck_dim >= c.d_model) ctx.addIssue({ code: 'custom', message: `bottleneck_dim ${c.bottleneck_dim} must be below d_model ${c.d_model}` });
    const after = c.bottleneck_after ?? [];
    if (after.some((l, i) => l >= c.n_layers - 1 || (i > 0 && l <= after[i - 1]))) {
      ctx.addIssue({ code: 'custom', message: `bottleneck_after [${after.join(', ')}] must be increasing layers below the last (${c.n_layers - 1})` });
    }
  })
  .transform((c) => ({ ...c, n_kv_heads: c.n_kv_heads ?? c.n_heads }));

export type ModelConfig = z.output<typeof ModelConfigSchema>;

/**
 * The bundled presets (worker/model/presets/*.json), smallest first. tiny, small and demo train in
 * minutes on a laptop; medium (about 309M parameters, byte vocabulary) and iota-1.5b (IOTA's
 * 1.5B layout, docs/ENGINE.md "Memory and stage plans") are the real sizes the stage plans and
 * the memory model are checked on.
 */
export const PRESET_NAMES = ['tiny', 'small', 'demo', 'medium', 'iota-1.5b'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** "tiny, small, demo, medium, iota-1.5b": the bundled presets, for help texts and messages. */
export const PRESET_LIST = PRESET_NAMES.join(', ');

export const headDim = (c: ModelConfig): number => c.d_model / c.n_heads;

/** Whether the output of layer `i` crosses a bottleneck. */
export const bottleneckAfter = (c: ModelConfig, i: number): boolean => c.bottleneck_after?.includes(i) ?? false;

/** The model with a bottleneck at every boundary of a stage split (the layer ranges of the stages). */
export function withBottlenecks(c: ModelConfig, dim: number, stages: readonly (readonly [number, number])[]): ModelConfig {
  return parseModelConfig({ ...c, bottleneck_dim: dim, bottleneck_after: stages.slice(0, -1).map((s) => s[1]) });
}

/** Parses and checks a configuration; throws one readable line naming every problem. */
export function parseModelConfig(value: unknown, source = 'model config'): ModelConfig {
  const r = ModelConfigSchema.safeParse(value);
  if (!r.success) {
    const problems = r.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
    throw new Error(`invalid ${source}: ${problems.join('; ')}`);
  }
  return r.data;
}

/** The model a swarm run trains: its preset, with a bottleneck at every stage boundary when the run asks for one. */
export function runModelConfig(run: { preset: string; stages: readonly (readonly [number, number])[]; compression?: { bottleneck_dim?: number } }): ModelConfig {
  const preset = loadPreset(run.preset);
  const dim = run.compression?.bottleneck_dim;
  return dim === undefined || run.stages.length < 2 ? preset : withBottlenecks(preset, dim, run.stages);
}

/** A preset name (PRESET_NAMES) or the path of a JSON file with the same keys. */
export function loadPreset(nameOrPath: string): ModelConfig {
  if ((PRESET_NAMES as readonly string[]).includes(nameOrPath)) {
    const file = fileURLToPath(new URL(`./presets/${nameOrPath}.json`, import.meta.url));
    return parseModelConfig(JSON.parse(readFileSync(file, 'utf8')), `preset ${nameOrPath}`);
  }
  let text: string;
  try {
    text = readFileSync(nameOrPath, 'utf8');
  } catch (e) {
    throw new Error(`preset ${nameOrPath}: not one of ${PRESET_LIST} and not a readable file (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`preset ${nameOrPath}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return parseModelConfig(json, `preset ${nameOrPath}`);
}
