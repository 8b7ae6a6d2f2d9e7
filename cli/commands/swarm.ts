// `tah swarm`: the embedded default, a whole swarm on this machine. An orchestrator and
// stages × replicas miners run as separate processes and train the model round by round; a live
// view shows the rounds, the loss and every miner; at the end the stages are put together into one
// checkpoint, evaluated on held-out text, and a report (SVG loss curve) is written. The same
// preset trained in one process, on the same cores, is measured first as the yardstick.
import { availableParallelism } from 'node:os';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { int, positive } from '../args.ts';
import { RunSpecSchema, type RunStatus } from '../../orchestrator-client/protocol.ts';
import { evenStages } from '../../orchestrator/runs.ts';
import { type StageState, assembleStages } from '../../worker/checkpoint/assemble.ts';
import { saveCheckpoint } from '../../worker/checkpoint/checkpoint.ts';
import { decodeSafetensors, toFloat32 } from '../../worker/checkpoint/safetensors.ts';
import { loadBrownCorpus } from '../../worker/data/brown.ts';
import { buildDataset, heldoutBatches, trainBatch } from '../../worker/data/dataset.ts';
import { byteTokenizer } from '../../worker/data/tokenizer.ts';
import { CODECS, type CodecName } from '../../orchestrator-client/codecs.ts';
import { type ModelConfig, PRESET_LIST, PRESET_NAMES, loadPreset, runModelConfig } from '../../worker/model/config.ts';
import { PipelineTrainer } from '../../worker/train/pipeline.ts';
import { Trainer, freshState, toCheckpoint } from '../../worker/train/trainer.ts';
import { type AdamWConfig, learningRate, toOptimizerSpec } from '../../worker/optim/adamw.ts';
import { lineChartSvg } from '../loss-chart.ts';
import { makeOutput, onInterrupt, type Output } from '../output.ts';
import { LocalSwarm } from '../swarm/local-swarm.ts';
import { type MinerView, renderSwarmView } from '../swarm-view.ts';
import { trainRecipe } from './train.ts';
import type { Guard } from './wallet.ts';

export interface SwarmFlags {
  preset: string;
  stages: number;
  replicas: number;
  validators?: number;
  checkRate: number;
  rounds?: number;
  minutes?: number;
  samplesPerRound?: number;
  batch?: number;
  seed: number;
  lr?: number;
  threadsPerMiner: number;
  port?: number;
  dir?: string;
  mode: 'exact' | 'local';
  localSteps: number;
  outerLr?: number;
  outerMomentum?: number;
  quantize: 'none' | 'int8';
  bottleneck?: number;
  codec: CodecName;
  backwardCodec?: CodecName;
  evalBatches?: number;
  baseline: boolean;
  blobsOverHttp?: boolean;
  json?: boolean;
}


export function registerSwarmCommand(program: Command, guarded: Guard): void {
  program
    .command('swarm')
    .description('train with a whole local swarm: an orchestrator and stages × replicas miners as separate processes')
    .option('--preset <name>', PRESET_LIST, 'demo')
    .option('--stages <n>', 'pipeline stages', int(1), 3)
    .option('--replicas <n>', 'miners per stage', int(1), 2)
    .option('--validators <n>', 'validator processes re-running sampled work (default: one per stage; 0: none)', int(0))
    .option('--check-rate <x>', "share of the miners' work the validators re-run (a public run re-runs 5%, and more of a newcomer's)", fraction, LOCAL_CHECK_RATE)
    .option('--rounds <n>', 'rounds (optimizer steps of the whole model)', int(1))
    .option('--minutes <m>', 'instead of --rounds: as many rounds as fit in about this long', positive)
    .option('--batch <n>', `sequences per round, the global batch (default: ${BATCH_FACTOR}× the preset's batch_size)`, int(1))
    .option('--samples-per-round <n>', 'work items per round; the batch is split among them (default: 2 per replica)', int(1))
    .option('--seed <n>', 'initialisation and data seed', int(0), 1)
    .option('--lr <x>', 'peak learning rate (default: the preset recipe)', positive)
    .option('--threads-per-miner <n>', 'CPU threads of each miner', int(1), 1)
    .option('--dir <folder>', 'working folder (default: runs/swarm-<preset>-<time>)')
    .option('--port <n>', "the orchestrator's port on 127.0.0.1, where the desktop app looks by default (when taken: any free port)", int(0), 8080)
    .addOption(new Option('--mode <mode>', 'exact: every round all-reduces the gradient; local: replicas take --local-steps steps of their own between merges (less traffic)').choices(['exact', 'local']).default('exact'))
    .option('--local-steps <n>', 'local mode: inner steps between merges', int(1), 10)
    .option('--outer-lr <x>', 'local mode: the outer Nesterov step size (default 1: with momentum 0, the replicas\' mean)', positive)
    .option('--outer-momentum <x>', 'local mode: the outer Nesterov momentum (default 0; DiLoCo uses 0.9 with 0.7 for long periods)', (v) => {
      const n = Number(v);
      if (!(n >= 0 && n < 1)) throw new InvalidArgumentError(`expected a number in [0, 1), got '${v}'`);
      return n;
    })
    .addOption(new Option('--quantize <q>', 'local mode: what merges move, float32 or int8 blocks').choices(['none', 'int8']).default('none'))
    .option('--bottleneck <dim>', 'compress stage boundaries: a bottleneck of this many channels after every stage but the last (docs/COMPRESSION.md)', int(1))
    .addOption(new Option('--codec <codec>', 'how activations (and, unless --backward-codec, their gradients) cross stage boundaries').choices(CODECS).default('f32'))
    .addOption(new Option('--backward-codec <codec>', 'how gradients cross stage boundaries (default: --codec)').choices(CODECS))
    .option('--eval-batches <n>', `held-out batches of the global batch for the final loss (default: ${EVAL_SEQUENCES} sequences' worth)`, int(1))
    .option('--blobs-over-http', "miners move tensors over HTTP as remote miners do, not through the local store's directory")
    .option('--no-baseline', 'skip measuring single-process throughput')
    .option('--json', 'one JSON object per line')
    .action(guarded(async (o: SwarmFlags) => swarmCommand(o, makeOutput(o.json ?? false))));
}

/**
 * A round is one optimizer step over the whole swarm, and each round costs some fixed work and
 * latency (the pipeline fills and drains, the all-reduce, every replica's and validator's step), so
 * the swarm's default global batch is larger than one process's. It is no larger than that because
 * this model's learning is limited by steps, not tokens: measured on demo, one process at 4e-3,
 * batch 64 and batch 128 reach the same training loss at the same step (2.34 at step 80), and 170
 * rounds of 128 reach held-out 2.08 where 200 reach 1.94. On 2 cores (3 × 2 miners and 3
 * validators) a round of 64 takes half the time of a round of 128 (2.5 against 5.1 s, 25 rounds
 * each), so the same tokens per second buy twice the steps. Batch 256 for 125 rounds ended at 2.26.
 */
export const BATCH_FACTOR = 8;
/** Held-out sequences for the final loss, spread over the held-out text, whatever the batch (16 batches of 128 gave 1.9425 on a checkpoint where 32 gave 1.9431). */
const EVAL_SEQUENCES = 2048;
/** Default rounds per preset: what reaches a useful loss with the default batch (demo: held-out 1.85 in 10 to 14 minutes on 2 cores, depending on the day). */
const DEFAULT_ROUNDS: Record<string, number> = { tiny: 100, small: 200, demo: 250 };
/**
 * A local swarm's miners are all this computer's owner's, so its validators re-run a small share
 * of the work and put no newcomer on probation; a public run's defaults (5%, and most of a
 * newcomer's first work) would cost a 2-core machine a fifth of its speed.
 */
export const LOCAL_CHECK_RATE = 0.02;

function fraction(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`expected a number from 0 to 1, got '${v}'`);
  return n;
}

/**
 * The swarm's peak learning rate: a larger batch than one process's takes twice the one-process
 * recipe's rate. Measured on demo: batch 128 at 4e-3 reaches held-out 1.78 in 250 rounds; batch
 * 256 at 5.7e-3 (the square-root rule) spiked as warm-up ended (gradient norm 0.5 to 11.6).
 */
export function swarmLearningRate(recipeLr: number, batch: number, presetBatch: number): number {
  return batch > presetBatch ? 2 * recipeLr : recipeLr;
}

/** Samples per round: the batch split evenly, by default two work items per replica. */
export function splitBatch(batch: number, replicas: number, wanted?: number): { samples: number; rows: number } {
  const samples = wanted ?? Math.min(batch, 2 * replicas);
  if (batch % samples !== 0) {
    if (wanted !== undefined) throw new Error(`--samples-per-round ${wanted} does not divide the preset's batch of ${batch} sequences`);
    for (let s = samples; s >= 1; s--) if (batch % s === 0) return { samples: s, rows: batch / s };
  }
  return { samples, rows: batch / samples };
}

/**
 * Tokens per second of the whole model trained in this process on the same preset and cores.
 * `when` says which side of the swarm it was measured on: a shared machine's speed drifts over a
 * ten-minute run, so the yardstick is measured before and after and the two averaged.
 */
async function singleProcessThroughput(config: ModelConfig, optim: AdamWConfig, seed: number, out: Output, when: 'before' | 'after'): Promise<number> {
  const dataset = buildDataset(loadBrownCorpus(), byteTokenizer);
  const trainer = await Trainer.create(config, optim, { threads: availableParallelism() });
  try {
    let cur = freshState(trainer.layout, seed);
    let next = freshState(trainer.layout, seed);
    const tokensPerStep = config.batch_size * config.seq_len;
    let steps = 0;
    let t0 = 0;
    // Two warm-up steps, then about eight seconds (at least three steps).
    for (let s = 0; ; s++) {
      if (s === 2) t0 = performance.now();
      const batch = trainBatch(dataset, { seed, step: s, batchSize: config.batch_size, seqLen: config.seq_len });
      await trainer.trainStep(cur, next, batch, s + 1, learningRate(s, optim), optim);
      [cur, next] = [next, cur];
      if (s >= 2) steps++;
      if (steps >= 3 && performance.now() - t0 > 8000) break;
    }
    const tps = (steps * tokensPerStep) / ((performance.now() - t0) / 1000);
    out.event('baseline', { when, single_process_tokens_per_s: tps, steps, threads: availableParallelism() });
    return tps;
  } finally {
    await trainer.dispose();
  }
}

export async function swarmCommand(flags: SwarmFlags, out: Output): Promise<void> {
  const started = performance.now();
  if (!(PRESET_NAMES as readonly string[]).includes(flags.preset)) throw new Error(`--preset must be one of ${PRESET_LIST}, got '${flags.preset}'`);
  if (flags.rounds !== undefined && flags.minutes !== undefined) throw new Error('give --rounds or --minutes, not both');
  const preset = loadPreset(flags.preset);
  const stages = evenStages(preset.n_layers, flags.stages);
  const compression = { ...(flags.bottleneck !== undefined ? { bottleneck_dim: flags.bottleneck } : {}), forward: flags.codec, backward: flags.backwardCodec ?? flags.codec };
  const config = { ...runModelConfig({ preset: flags.preset, stages, compression }), batch_size: flags.batch ?? preset.batch_size * BATCH_FACTOR };
  const { samples, rows } = splitBatch(config.batch_size, flags.replicas, flags.samplesPerRound);
  const tokensPerRound = config.batch_size * config.seq_len;
  const dir = resolve(flags.dir ?? join('runs', `swarm-${flags.preset}-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  await mkdir(dir, { recursive: true });

  const probeRecipe = trainRecipe(flags.preset, flags.rounds ?? 1000, flags.lr);
  if (config.batch_size !== preset.batch_size) out.note(`global batch ${config.batch_size} sequences per round (the preset trains ${preset.batch_size} per step in one process)`);
  // The yardstick is the uncompressed model: what the swarm would be without a bottleneck.
  const yardstick = { ...preset, batch_size: config.batch_size };
  const before = flags.baseline ? await singleProcessThroughput(yardstick, probeRecipe, flags.seed, out, 'before') : null;
  // With --minutes the schedule needs a length up front: rounds at about half the one-process speed.
  const rounds =
    flags.rounds ?? (flags.minutes !== undefined ? Math.max(10, Math.floor((flags.minutes * 60 * 0.5 * (before ?? 5000)) / tokensPerRound)) : (DEFAULT_ROUNDS[flags.preset] ?? 300));
  const optim = trainRecipe(flags.preset, rounds, flags.lr ?? swarmLearningRate(trainRecipe(flags.preset, rounds).lr, config.batch_size, preset.batch_size));
  const spec = RunSpecSchema.parse({
    id: 'swarm',
    preset: flags.preset,
    stages,
    samples_per_round: samples,
    rows_per_sample: rows,
    rounds,
    seed: flags.seed,
    lease_ttl_s: 60,
    heartbeat_timeout_s: 10,
    snapshot_every: 50,
    optimizer: toOptimizerSpec(optim),
    validation: { rate: flags.checkRate, probation: 0 },
    mode: flags.mode,
    compression,
    local: { steps: flags.localSteps, quantize: flags.quantize, ...(flags.outerLr !== undefined ? { outer_lr: flags.outerLr } : {}), ...(flags.outerMomentum !== undefined ? { outer_momentum: flags.outerMomentum } : {}) },
  });
  const minerCount = flags.stages * flags.replicas;
  out.event('start', { preset: flags.preset, stages, replicas: flags.replicas, miners: minerCount, rounds, samples_per_round: samples, rows_per_sample: rows, dir });

  // ---- the live view ----
  const views: MinerView[] = Array.from({ length: minerCount }, (_, i) => ({ name: `miner-${i}`, stage: null, state: 'starting', version: 0, tokensPerS: 0, items: 0 }));
  const bytes = Array.from({ length: minerCount }, () => ({ up: 0, down: 0, wire: 0 }));
  let busyMs = 0;
  const checks = { pass: 0, fail: 0, abstain: 0 };
  let lastStatus: RunStatus | null = null;
  let orchestratorState = 'up';
  const tty = !out.json && process.stderr.isTTY;
  let drawn = 0;
  const draw = (): void => {
    if (!tty || !lastStatus) return;
    const done = lastStatus.losses;
    const elapsedS = (performance.now() - started) / 1000;
    const lines = renderSwarmView(
      {
        preset: flags.preset,
        round: lastStatus.rounds_done,
        rounds,
        loss: done.length ? done[done.length - 1].loss : null,
        tokens: lastStatus.rounds_done * tokensPerRound,
        tokensPerS: steadyTokensPerS(done, tokensPerRound) ?? 0,
        elapsedS,
        remainingS: remaining(done, rounds),
        miners: views,
        orchestrator: orchestratorState,
      },
      { width: process.stderr.columns > 20 ? process.stderr.columns : 100, color: true },
    );
    process.stderr.write((drawn ? `\x1b[${drawn}A` : '') + lines.map((l) => `\x1b[2K${l}\n`).join(''));
    drawn = lines.length;
  };
  const swarm = new LocalSwarm({
    dir,
    spec,
    port: flags.port,
    threadsPerMiner: flags.threadsPerMiner,
    blobsOverHttp: flags.blobsOverHttp,
    onMinerEvent: (i, e) => {
      const v = views[i];
      if (e.event === 'assigned') v.stage = e.stage as number;
      if (e.event === 'status') {
        v.state = e.state as string;
        v.version = e.version as number;
      }
      if (e.event === 'applied') v.version = e.version as number;
      if (e.event === 'throughput') {
        v.tokensPerS = e.tokens_per_s as number;
        v.items = e.items as number;
        bytes[i] = { up: e.bytes_up as number, down: e.bytes_down as number, wire: e.wire_bytes as number };
      }
      if (e.event === 'error') v.lastError = e.message as string;
      if (e.event === 'work') busyMs += e.ms as number;
    },
    onValidatorEvent: (_i, e) => {
      if (e.event === 'verdict' && (e.outcome === 'pass' || e.outcome === 'fail' || e.outcome === 'abstain')) checks[e.outcome]++;
    },
    onMinerExit: (i, code, signal) => {
      views[i].state = code === 0 ? 'stopped' : 'dead';
      if (code !== 0) views[i].lastError = `exited (${signal ?? `code ${code}`})`;
    },
  });
  const interrupt = onInterrupt(out, 'stopping the swarm (Ctrl-C again to quit at once)');
  let status: RunStatus;
  let minersStarted: number | undefined;
  let minersEnded: number | undefined;
  try {
    await swarm.start();
    out.event('orchestrator', { url: swarm.url, dashboard: swarm.dashboardUrl, operator_wallet: swarm.operatorWallet });
    if (!out.json) out.note(`orchestrator at ${swarm.url}; the operator's key (for tah checkpoint) is ${swarm.operatorWallet}`);
    if (!out.json && swarm.dashboardUrl) out.note(`watch the run in a browser: ${swarm.dashboardUrl}`);
    for (let i = 0; i < minerCount; i++) await swarm.addMiner();
    // Validators in exact mode only: in local mode a replica's weights between merges are its own.
    const validators = flags.mode === 'exact' ? (flags.validators ?? stages.length) : 0;
    for (let i = 0; i < validators; i++) await swarm.addValidator();
    minersStarted = performance.now();
    const bar = tty ? null : out.progress('swarm', rounds);
    let reported = 0;
    const ticker = setInterval(draw, 500);
    try {
      status = await swarm.waitFinished(
        (s) => {
          lastStatus = s;
          for (const r of s.losses.slice(reported)) {
            out.event('round', { round: r.round, loss: r.loss, tokens: (r.round + 1) * tokensPerRound, elapsed_s: (performance.now() - started) / 1000 });
            bar?.update(r.round + 1, r.loss === null ? '' : `loss ${r.loss.toFixed(3)}`);
          }
          reported = s.losses.length;
        },
        1000,
        () => interrupt.requested,
      );
    } finally {
      clearInterval(ticker);
      minersEnded = performance.now();
      draw();
      bar?.stop();
      orchestratorState = 'stopping';
    }
  } finally {
    await swarm.close();
    interrupt.dispose();
  }
  if (status.status !== 'finished') throw new Error(`the swarm stopped after ${status.rounds_done} of ${rounds} rounds`);

  // ---- the result: one checkpoint, its held-out loss, a report ----
  const stageStates = await readFinalStages(dir, status, stages, rounds);
  const { layout, state } = assembleStages(config, stageStates);
  const checkpoint = join(dir, 'model.safetensors');
  await saveCheckpoint(checkpoint, toCheckpoint(layout, state, rounds, { source: 'tah swarm', rounds: String(rounds) }));
  const dataset = buildDataset(loadBrownCorpus(), byteTokenizer);
  const evalSet = heldoutBatches(dataset, { batchSize: config.batch_size, seqLen: config.seq_len, maxBatches: flags.evalBatches ?? Math.ceil(EVAL_SEQUENCES / config.batch_size) });
  let heldout: number;
  if (compression.bottleneck_dim === undefined && compression.forward === 'f32' && compression.backward === 'f32') {
    // Nothing changes across the stage boundaries: the whole model in one graph computes the
    // stages' loss (to float rounding) in two thirds of the time the stages take one micro-batch at a time.
    const whole = await Trainer.create(config, optim, { threads: availableParallelism() });
    try {
      heldout = await whole.heldoutLoss(state.params, evalSet);
    } finally {
      await whole.dispose();
    }
  } else {
    // Through the stages and codecs, as the swarm computes the model.
    const evaluator = await PipelineTrainer.create({ config, stages, optim, rows, codecs: spec.compression, threads: availableParallelism() });
    try {
      heldout = await evaluator.heldoutLoss(
        stageStates.map((s) => s.params),
        evalSet,
      );
    } finally {
      await evaluator.dispose();
    }
  }
  const after = before !== null ? await singleProcessThroughput(yardstick, probeRecipe, flags.seed, out, 'after') : null;
  const single = before !== null && after !== null ? (before + after) / 2 : null;
  const wallS = (performance.now() - started) / 1000;
  const tokens = rounds * tokensPerRound;
  const tokensPerS = steadyTokensPerS(status.losses, tokensPerRound) ?? tokens / wallS;
  const moved = bytes.reduce((a, b) => a + b.up + b.down, 0);
  const wire = wireAccounting(bytes.reduce((a, b) => a + b.wire, 0), tokens, stages.length, preset.d_model);
  const report = join(dir, 'report.svg');
  const points = status.losses.filter((l) => l.loss !== null).map((l) => ({ x: l.round + 1, y: l.loss! }));
  await writeFile(
    report,
    lineChartSvg([{ name: `swarm: ${flags.stages} stages × ${flags.replicas} replicas (training loss)`, points }], {
      title: `tah swarm --preset ${flags.preset}: held-out loss ${heldout.toFixed(3)} after ${rounds} rounds`,
      xLabel: 'round',
      yLabel: 'loss',
      hline: { y: heldout, label: `held-out ${heldout.toFixed(3)}` },
    }),
  );
  const summary = {
    ok: true,
    preset: flags.preset,
    stages: flags.stages,
    replicas: flags.replicas,
    mode: flags.mode,
    ...(flags.mode === 'local' ? { local_steps: flags.localSteps, quantize: flags.quantize } : {}),
    rounds,
    heldout_loss: heldout,
    final_train_loss: points.length ? points[points.length - 1].y : null,
    tokens,
    tokens_per_s: tokensPerS,
    single_process_tokens_per_s: single,
    /** The yardstick measured before and after the swarm (it is their mean). */
    single_process_measured: before !== null && after !== null ? { before, after } : null,
    throughput_ratio: single ? tokensPerS / single : null,
    bytes_moved: moved,
    bytes_per_token: moved / tokens,
    compression: spec.compression,
    ...wire,
    /** Verdicts of the validators' re-runs of sampled work. */
    checks: { passed: checks.pass, failed: checks.fail, abstained: checks.abstain, rate: flags.mode === 'exact' ? flags.checkRate : 0 },
    /** Share of the miners' time spent on forward and backward work (the rest: transfers, the all-reduce, waiting). */
    utilisation: busyMs / (minerCount * Math.max(1, (minersEnded ?? performance.now()) - (minersStarted ?? started))),
    wall_s: wallS,
    checkpoint,
    report,
    cores: availableParallelism(),
  };
  await writeFile(join(dir, 'summary.json'), JSON.stringify(summary, null, 2));
  out.summary(
    summary,
    [
      `swarm finished: ${rounds} rounds of ${flags.preset} on ${flags.stages} stages × ${flags.replicas} replicas${flags.mode === 'local' ? ` (local steps, merging every ${flags.localSteps})` : ''} in ${wallS.toFixed(0)} s`,
      ...(wire.activation_bytes_per_token !== null ? [`stage boundaries: ${wire.activation_bytes_per_token.toFixed(1)} bytes per token (forward + backward), ${wire.activation_compression_ratio!.toFixed(0)}× smaller than float32`] : []),
      `held-out loss ${heldout.toFixed(3)}; ${tokensPerS.toFixed(0)} tokens/s${single ? ` (${((100 * tokensPerS) / single).toFixed(0)}% of one process: ${single.toFixed(0)} tokens/s)` : ''}; ${(moved / tokens / 1024).toFixed(1)} KiB moved per token`,
      ...(checks.pass + checks.fail + checks.abstain > 0 ? [`validators: ${checks.pass} checks passed, ${checks.fail} failed${checks.abstain ? `, ${checks.abstain} abstained` : ''}`] : []),
      `checkpoint ${checkpoint}`,
      `report ${report}`,
    ].join('\n'),
  );
}

/**
 * What crossed stage boundaries: bytes of activation and gradient blobs sent, per token and per
 * boundary, and how many times fewer that is than float32 at the full model width (4 bytes a
 * channel each way, headers not counted for float32).
 */
export function wireAccounting(wireBytes: number, tokens: number, stageCount: number, dModel: number): { activation_bytes: number; activation_bytes_per_token: number | null; activation_compression_ratio: number | null } {
  const boundaries = stageCount - 1;
  if (boundaries < 1 || tokens <= 0) return { activation_bytes: wireBytes, activation_bytes_per_token: null, activation_compression_ratio: null };
  const perToken = wireBytes / tokens / boundaries;
  return { activation_bytes: wireBytes, activation_bytes_per_token: perToken, activation_compression_ratio: perToken > 0 ? (8 * dModel) / perToken : null };
}

/** The stages' stored states after the last round, read from the local store's folder. */
export async function readFinalStages(dir: string, status: RunStatus, stages: [number, number][], rounds: number): Promise<StageState[]> {
  return Promise.all(
    stages.map(async (layers, s) => {
      const snap = status.snapshots.find((x) => x.stage === s && x.rounds === rounds);
      if (!snap) throw new Error(`stage ${s} has no stored state after round ${rounds}`);
      const file = decodeSafetensors(await readFile(join(dir, 'blobs', snap.key)), snap.key);
      const t = (n: string): Float32Array => toFloat32(file.tensors.get(n)!);
      return { span: { layers, hasEmbed: s === 0, hasHead: s === stages.length - 1 }, params: t('params'), m: t('m'), v: t('v') };
    }),
  );
}

/** Throughput once the swarm runs: tokens of the rounds after the first over the time they took. */
function steadyTokensPerS(losses: RunStatus['losses'], tokensPerRound: number): number | null {
  if (losses.length < 2) return null;
  const span = (losses[losses.length - 1].reduced_at - losses[0].reduced_at) / 1000;
  return span > 0 ? ((losses.length - 1) * tokensPerRound) / span : null;
}

function remaining(losses: RunStatus['losses'], rounds: number): number | null {
  if (losses.length < 2) return null;
  const per = (losses[losses.length - 1].reduced_at - losses[0].reduced_at) / 1000 / (losses.length - 1);
  return per * (rounds - losses.length);
}
