// `tah train`: the whole model in one process, on the bundled corpus.
import { availableParallelism } from 'node:os';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadBrownCorpus } from '../../worker/data/brown.ts';
import { trainBpe } from '../../worker/data/bpe.ts';
import { buildDataset, isHeldout } from '../../worker/data/dataset.ts';
import { type Tokenizer, byteTokenizer } from '../../worker/data/tokenizer.ts';
import { chooseDevice, confirmDevice, parseDevice, probeDevices } from '../../worker/engine/session.ts';
import { PRESET_NAMES, loadPreset } from '../../worker/model/config.ts';
import { type AdamWConfig, DEFAULT_ADAMW } from '../../worker/optim/adamw.ts';
import { train } from '../../worker/train/trainer.ts';
import { type Output, onInterrupt } from '../output.ts';

export interface TrainFlags {
  preset: string;
  steps: number;
  /** Sequences per step (default: the preset's batch_size). */
  batch?: number;
  lr?: number;
  device: string;
  seed: number;
  threads?: number;
  checkpoint?: string;
  evalBatches: number;
  tokenizer: 'byte' | 'bpe';
}

/** Learning rates of MODEL.md's reference recipe; other models start from 2e-3. */
const PRESET_LR: Record<string, number> = { tiny: 3e-3, small: 2e-3, demo: 2e-3 };

/** The optimizer recipe for `steps` steps of a preset: one definition for `tah train` and `tah swarm`. */
export function trainRecipe(preset: string, steps: number, lr?: number): AdamWConfig {
  return {
    ...DEFAULT_ADAMW,
    lr: lr ?? PRESET_LR[preset] ?? 2e-3,
    totalSteps: steps,
    warmupSteps: Math.min(DEFAULT_ADAMW.warmupSteps, Math.max(1, Math.floor(steps / 10))),
  };
}

export async function trainCommand(flags: TrainFlags, out: Output): Promise<void> {
  const started = performance.now();
  const preset = loadPreset(flags.preset);
  const config = flags.batch ? { ...preset, batch_size: flags.batch } : preset;
  const device = await confirmDevice(chooseDevice(parseDevice(flags.device), probeDevices()));
  if (device.note) out.note(device.note);
  const optim = trainRecipe(flags.preset, flags.steps, flags.lr);
  const { lr } = optim;
  const name = (PRESET_NAMES as readonly string[]).includes(flags.preset) ? flags.preset : 'custom';
  const checkpoint = flags.checkpoint ?? join('runs', `train-${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.safetensors`);

  // Fail before training, not after, if the checkpoint cannot be written there.
  await mkdir(dirname(checkpoint), { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    const why = e.code === 'EEXIST' || e.code === 'ENOTDIR' ? `${dirname(checkpoint)} is not a folder: a file is in the way` : (e.code ?? e.message);
    throw new Error(`cannot create the folder for checkpoint ${checkpoint} (${why})`, { cause: e });
  });
  const corpus = loadBrownCorpus();
  if (config.vocab_size < byteTokenizer.vocabSize) throw new Error(`preset ${flags.preset}: vocab_size ${config.vocab_size} is smaller than the byte tokenizer's 256`);
  let tokenizer: Tokenizer = byteTokenizer;
  const extra: Record<string, string> = {};
  if (flags.tokenizer === 'bpe') {
    if (config.vocab_size === byteTokenizer.vocabSize) throw new Error(`--tokenizer bpe needs a vocab_size above 256 (preset ${flags.preset} has 256); try --preset small`);
    // Learned on the training documents only, so held-out text stays unseen.
    const bpe = trainBpe(corpus.documents.filter((d) => !isHeldout(d.id)).map((d) => d.text), { vocabSize: config.vocab_size });
    extra.tokenizer_json = JSON.stringify(bpe.toJSON());
    tokenizer = bpe;
  }
  const dataset = buildDataset(corpus, tokenizer);
  out.event('start', { preset: flags.preset, config, tokenizer: tokenizer.name, lr, steps: flags.steps, device: device.provider, train_tokens: dataset.train.length, heldout_tokens: dataset.heldout.length });

  // Ctrl-C once: stop after the current step, then evaluate and save as usual. Twice: quit now
  // (the checkpoint is only ever written whole, so nothing partial is left).
  const interrupt = onInterrupt(out, 'stopping after this step (Ctrl-C again to quit without a checkpoint)');
  const bar = out.progress('train', flags.steps);
  let result;
  try {
    result = await train({
      config,
      optim,
      dataset,
      steps: flags.steps,
      seed: flags.seed,
      device,
      threads: flags.threads ?? availableParallelism(),
      evalBatches: flags.evalBatches,
      checkpointPath: checkpoint,
      checkpointExtra: { ...extra, tokenizer: tokenizer.name, corpus: 'brown', lr: String(lr), seed: String(flags.seed) },
      onEval: (e) => out.event('eval', { step: e.step, heldout_loss: e.heldoutLoss }),
      onStep: (e) => {
        out.event('step', { step: e.step, loss: e.loss, lr: e.lr, grad_norm: e.gradNorm, tokens_per_s: e.tokensPerS });
        bar.update(e.step, `loss ${e.loss.toFixed(3)} | ${Math.round(e.tokensPerS).toLocaleString('en-US')} tok/s`);
        return !interrupt.requested;
      },
    });
  } finally {
    bar.stop();
    interrupt.dispose();
  }
  const wallS = (performance.now() - started) / 1000;
  out.summary(
    {
      ok: true,
      preset: flags.preset,
      tokenizer: tokenizer.name,
      device: device.provider,
      params: result.params,
      steps: result.steps,
      steps_requested: flags.steps,
      interrupted: interrupt.requested,
      tokens: result.tokens,
      initial_heldout_loss: result.initialHeldoutLoss,
      heldout_loss: result.heldoutLoss,
      final_train_loss: result.finalLoss,
      tokens_per_s: result.tokensPerS,
      train_s: result.trainS,
      wall_s: wallS,
      max_rss_mib: process.resourceUsage().maxRSS / 1024,
      checkpoint: result.checkpoint,
    },
    [
      `held-out loss ${result.initialHeldoutLoss.toFixed(3)} → ${result.heldoutLoss.toFixed(3)} after ${result.steps} steps (${result.tokens.toLocaleString('en-US')} tokens)`,
      `${Math.round(result.tokensPerS).toLocaleString('en-US')} tokens/s on ${device.provider}, ${wallS.toFixed(1)} s in all`,
      `checkpoint: ${result.checkpoint}`,
    ].join('\n'),
  );
}
