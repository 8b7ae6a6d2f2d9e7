// `tah bench compression`: what compressing stage boundaries costs in loss and buys in bytes. The
// same model trains for the same tokens, on the same batches from the same initialisation, once
// uncompressed (the peer) and once per configuration of a grid (bottleneck width, codecs), each
// computed as the swarm computes it: stage by stage, every activation and gradient through its
// codec (worker/train/pipeline.ts). Bytes are exact: the activation and gradient blobs a swarm
// sample of --rows-per-sample sequences sends across one boundary, headers included.
import { availableParallelism } from 'node:os';
import { writeFile } from 'node:fs/promises';
import { InvalidArgumentError } from 'commander';
import { CODECS, type CodecName } from '../../orchestrator-client/codecs.ts';
import { evenStages } from '../../orchestrator/runs.ts';
import { loadBrownCorpus } from '../../worker/data/brown.ts';
import { buildDataset, heldoutBatches } from '../../worker/data/dataset.ts';
import { byteTokenizer } from '../../worker/data/tokenizer.ts';
import { boundaryBytesPerToken } from '../../worker/miner/blobs.ts';
import { loadPreset, withBottlenecks } from '../../worker/model/config.ts';
import { type WireCodecs, trainPipeline } from '../../worker/train/pipeline.ts';
import { lineChartSvg } from '../loss-chart.ts';
import type { Output } from '../output.ts';
import { trainRecipe } from './train.ts';

export interface BenchCompressionFlags {
  preset: string;
  steps: number;
  stages: number;
  batch?: number;
  rowsPerSample: number;
  grid: CompressionConfig[];
  lr?: number;
  seed: number;
  evalBatches: number;
  threads?: number;
  plot?: string;
}

/** One point of the grid: a bottleneck width (none: the full model width) and the two codecs. */
export interface CompressionConfig {
  bottleneck?: number;
  codecs: WireCodecs;
}

/** The default grid: codecs alone, then bottlenecks of falling width with stronger codecs. */
export const DEFAULT_GRID = ['bf16', 'int8', 'b32:bf16', 'b16:int8', 'b8:int4', 'b4:int4'];

/** `[bN:]forward[/backward]`, e.g. `int8`, `b16:bf16`, `b4:int4/int8`. */
export function parseCompressionConfig(text: string): CompressionConfig {
  const m = /^(?:b(\d+):)?([a-z0-9]+)(?:\/([a-z0-9]+))?$/.exec(text.trim());
  const codec = (c: string): CodecName => {
    if (!(CODECS as readonly string[]).includes(c)) throw new InvalidArgumentError(`'${text}': unknown codec '${c}' (one of ${CODECS.join(', ')})`);
    return c as CodecName;
  };
  if (!m) throw new InvalidArgumentError(`'${text}' is not [bWIDTH:]CODEC[/BACKWARD_CODEC], e.g. b4:int4 or int8/bf16`);
  const bottleneck = m[1] === undefined ? undefined : Number(m[1]);
  if (bottleneck !== undefined && bottleneck < 1) throw new InvalidArgumentError(`'${text}': the bottleneck needs at least one channel`);
  return { ...(bottleneck !== undefined ? { bottleneck } : {}), codecs: { forward: codec(m[2]), backward: codec(m[3] ?? m[2]) } };
}

export const describeConfig = (c: CompressionConfig): string =>
  `${c.bottleneck !== undefined ? `b${c.bottleneck}:` : ''}${c.codecs.forward}${c.codecs.backward !== c.codecs.forward ? `/${c.codecs.backward}` : ''}`;

export interface CompressionResult {
  config: string;
  bottleneck_dim: number | null;
  forward: CodecName;
  backward: CodecName;
  /** Forward + backward, per token, across one stage boundary. */
  activation_bytes_per_token: number;
  /** Float32 at the full model width (8 · d_model bytes a token) over the above. */
  compression_ratio: number;
  heldout_loss: number;
  /** Held-out loss above the uncompressed model's, in percent. */
  loss_cost_pct: number;
  tokens_per_s: number;
  /** Tokens a second one boundary's 10 Mbit/s link carries at this size. */
  link_tokens_per_s: number;
  train_s: number;
}

const LINK_BYTES_PER_S = 10e6 / 8;

export async function benchCompressionCommand(flags: BenchCompressionFlags, out: Output): Promise<CompressionResult[]> {
  const preset = loadPreset(flags.preset);
  const batch = flags.batch ?? preset.batch_size;
  if (flags.stages < 2) throw new Error('--stages must be at least 2: compression acts on stage boundaries');
  const stages = evenStages(preset.n_layers, flags.stages);
  for (const c of flags.grid) if (c.bottleneck !== undefined && c.bottleneck >= preset.d_model) throw new Error(`${describeConfig(c)}: the bottleneck must be narrower than d_model ${preset.d_model}`);
  const optim = trainRecipe(flags.preset, flags.steps, flags.lr);
  const dataset = buildDataset(loadBrownCorpus(), byteTokenizer);
  const evalSet = heldoutBatches(dataset, { batchSize: batch, seqLen: preset.seq_len, maxBatches: flags.evalBatches });
  const threads = flags.threads ?? availableParallelism();
  // The uncompressed model first: every other configuration's loss cost is measured against it.
  const grid = [{ codecs: { forward: 'f32', backward: 'f32' } } as CompressionConfig, ...flags.grid.filter((c) => c.bottleneck !== undefined || c.codecs.forward !== 'f32' || c.codecs.backward !== 'f32')];
  out.event('start', { preset: flags.preset, stages, steps: flags.steps, batch, tokens: flags.steps * batch * preset.seq_len, rows_per_sample: flags.rowsPerSample, grid: grid.map(describeConfig), threads });
  const bar = out.progress('compression', grid.length * flags.steps);
  const results: CompressionResult[] = [];
  try {
    for (const [k, point] of grid.entries()) {
      const config = { ...(point.bottleneck !== undefined ? withBottlenecks(preset, point.bottleneck, stages) : preset), batch_size: batch };
      // One micro-batch per step: the codecs act per token row (int8) or per block of 32 values that
      // never straddles a sequence, so splitting the batch as the swarm does changes nothing but time.
      const run = await trainPipeline({
        config,
        stages,
        optim,
        rows: batch,
        codecs: point.codecs,
        threads,
        dataset,
        steps: flags.steps,
        seed: flags.seed,
        evalSet,
        onStep: (step, loss) => bar.update(k * flags.steps + step, `${k + 1}: loss ${loss.toFixed(3)}`),
      });
      const heldout = run.heldout!;
      const tokensPerS = (flags.steps * batch * preset.seq_len) / run.trainS;
      const trainS = run.trainS;
      const bytes = boundaryBytesPerToken({ rows: flags.rowsPerSample, seqLen: preset.seq_len, dModel: preset.d_model, width: point.bottleneck ?? preset.d_model, codecs: point.codecs, length: 0 });
      const base = results[0]?.heldout_loss ?? heldout;
      const r: CompressionResult = {
        config: describeConfig(point),
        bottleneck_dim: point.bottleneck ?? null,
        forward: point.codecs.forward,
        backward: point.codecs.backward,
        activation_bytes_per_token: bytes,
        compression_ratio: (8 * preset.d_model) / bytes,
        heldout_loss: heldout,
        loss_cost_pct: (100 * (heldout - base)) / base,
        tokens_per_s: tokensPerS,
        link_tokens_per_s: LINK_BYTES_PER_S / bytes,
        train_s: trainS,
      };
      results.push(r);
      out.event('config', { ...r });
    }
  } finally {
    bar.stop();
  }
  if (flags.plot) await writeFile(flags.plot, plot(flags, results));
  const best = results.filter((r) => r.loss_cost_pct <= 3).sort((a, b) => b.compression_ratio - a.compression_ratio)[0];
  out.summary(
    { preset: flags.preset, stages: flags.stages, steps: flags.steps, batch, rows_per_sample: flags.rowsPerSample, results, best_within_3pct: best?.config ?? null, best_ratio_within_3pct: best?.compression_ratio ?? null, ...(flags.plot ? { plot: flags.plot } : {}) },
    [
      `${flags.preset}, ${flags.stages} stages, ${flags.steps} steps of ${batch} sequences each (${flags.steps * batch * preset.seq_len} tokens); bytes for swarm samples of ${flags.rowsPerSample} sequences`,
      table(results),
      best ? `most compressed within 3% of the uncompressed loss: ${best.config}, ${best.compression_ratio.toFixed(1)}× smaller than float32` : 'no configuration stayed within 3% of the uncompressed loss',
      ...(flags.plot ? [`plot ${flags.plot}`] : []),
    ].join('\n'),
  );
  return results;
}

function table(results: CompressionResult[]): string {
  const head = ['config', 'bytes/token', 'ratio', 'held-out', 'cost', 'tokens/s', '10 Mbit/s link'];
  const rows = results.map((r) => [
    r.config,
    r.activation_bytes_per_token.toFixed(1),
    `${r.compression_ratio.toFixed(1)}×`,
    r.heldout_loss.toFixed(4),
    `${r.loss_cost_pct >= 0 ? '+' : ''}${r.loss_cost_pct.toFixed(2)}%`,
    r.tokens_per_s.toFixed(0),
    `${r.link_tokens_per_s.toFixed(0)} tok/s`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ')).join('\n');
}

/** Held-out loss against log2 of the compression ratio, with the 3% budget as a dashed line. */
export function plot(flags: Pick<BenchCompressionFlags, 'preset' | 'stages' | 'steps'>, results: CompressionResult[]): string {
  const points = [...results].sort((a, b) => a.compression_ratio - b.compression_ratio).map((r) => ({ x: Math.log2(r.compression_ratio), y: r.heldout_loss }));
  return lineChartSvg([{ name: `${flags.preset}, ${flags.stages} stages: ${results.map((r) => r.config).join(', ')}`, points }], {
    title: `Held-out loss against activation compression (${flags.preset}, ${flags.steps} steps)`,
    xLabel: 'log2 of bytes saved per token (float32 at full width = 0)',
    yLabel: 'held-out loss',
    hline: { y: results[0].heldout_loss * 1.03, label: 'uncompressed + 3%' },
  });
}
