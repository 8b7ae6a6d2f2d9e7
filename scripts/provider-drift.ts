// How far one pipeline stage's outputs move between honest execution setups: the spread a
// validator's re-run must tolerate (CPU vs CUDA vs CoreML cannot all run here, so these stand in).
// Each preset is split into three stages (evenStages); every setup gets the reference run's stage
// inputs, so each number is one stage's own drift, not drift compounded down the pipeline.
//
//   node --import tsx scripts/provider-drift.ts [--presets tiny,demo] [--steps 20] [--seed 1] [--no-torch] [--json]
//
// Reference: ONNX Runtime CPU, 1 thread, graph optimisation 'all', float32. Compared with it:
//   threads-2   2 intra-op threads            opt-off     graph optimisation 'disabled'
//   torch       scripts/torch_llama.py layers  float64     the engine in float64 (the exact answer)
//   tf32-in     weights and stage input rounded to 10 mantissa bits (TF32 / fp16 matmul operands)
//   fp16-out, bf16-out   the reference's outputs rounded to 10 / 7 mantissa bits (no range limit)
//   adversary-1%   the reference plus Gaussian noise of 1% of its norm (loss: +1%), the cheat to catch
// Metrics, a vs reference b: rel_l2 = ||a-b||/||b||, max_rms = max|a-b| / rms(b), and |loss a - loss b|.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { peerPython } from '../cli/peer-python.ts';
import { trainRecipe } from '../cli/commands/train.ts';
import { evenStages } from '../orchestrator/runs.ts';
import { type StageSpan, saveCheckpoint, wholeModel } from '../worker/checkpoint/checkpoint.ts';
import { loadBrownCorpus } from '../worker/data/brown.ts';
import { type Batch, buildDataset, trainBatch } from '../worker/data/dataset.ts';
import { byteTokenizer } from '../worker/data/tokenizer.ts';
import { type ModelConfig, loadPreset } from '../worker/model/config.ts';
import { type FloatArray, ParamLayout, initParams } from '../worker/model/params.ts';
import { Stage, type StageOptions } from '../worker/model/stage.ts';
import { stageSpans } from '../worker/train/pipeline.ts';
import { Trainer, freshState } from '../worker/train/trainer.ts';
import { learningRate } from '../worker/optim/adamw.ts';

const { values: flags } = parseArgs({
  options: {
    presets: { type: 'string', default: 'tiny,demo' },
    steps: { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    'no-torch': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const seed = Number(flags.seed);
const trainSteps = Number(flags.steps);
// The python whose torch computes the 'torch' comparison (cli/peer-python.ts decides).
const peer = flags['no-torch'] ? undefined : peerPython();
if (peer && !peer.ok) {
  console.error(`provider-drift: ${peer.reason}; or pass --no-torch`);
  process.exit(1);
}
const python = peer?.ok ? peer.python : 'python3';

/** What a validator compares: stage outputs given the reference run's stage inputs. */
interface Outputs {
  firstFwd: FloatArray; // stage 0 output (activation)
  middleFwd: FloatArray; // stage 1 output
  lastLoss: number;
  lastBwd: FloatArray; // stage 2 input gradient
  middleBwd: FloatArray; // stage 1 input gradient, from the reference's stage 2 input gradient
}
const KINDS = ['firstFwd', 'middleFwd', 'lastLoss', 'lastBwd', 'middleBwd'] as const;

/** Round to `bits` explicit mantissa bits, nearest-even (bf16: 7, fp16 / TF32: 10); exponent range kept. */
function roundMantissa(x: FloatArray, bits: number): Float32Array {
  const out = Float32Array.from(x);
  const u = new Uint32Array(out.buffer);
  const drop = 23 - bits;
  for (let i = 0; i < u.length; i++) {
    if ((u[i] & 0x7f800000) === 0x7f800000) continue; // inf / nan
    u[i] = ((u[i] + (1 << (drop - 1)) - 1 + ((u[i] >>> drop) & 1)) & ~((1 << drop) - 1)) >>> 0;
  }
  return out;
}

/** `b` plus seeded Gaussian noise of norm `rel`·||b||: what an adversary might send instead of honest work. */
function addNoise(b: FloatArray, rel: number): Float32Array {
  let s = 12345;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const n = Float64Array.from(b, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
  const norm = (x: ArrayLike<number>) => {
    let sum = 0;
    for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
    return Math.sqrt(sum);
  };
  const scale = (rel * norm(b)) / norm(n);
  return Float32Array.from(b, (x, i) => x + scale * n[i]);
}

/** One setup's three stages: first, middle, last. */
class Setup {
  private constructor(
    readonly stages: Stage[],
    readonly floatType: 'float32' | 'float64',
  ) {}

  static async create(config: ModelConfig, spans: StageSpan[], opts: StageOptions): Promise<Setup> {
    const stages = await Promise.all(spans.map((span) => Stage.create(config, span, { batch: config.batch_size, ...opts })));
    return new Setup(stages, opts.floatType ?? 'float32');
  }

  private cast(x: FloatArray): FloatArray {
    return this.floatType === 'float64' ? Float64Array.from(x) : Float32Array.from(x);
  }

  /** Runs every stage; a stage's input (and the middle stage's output gradient) comes from `ref` when given. */
  async run(params: Float32Array[], batch: Batch, ref?: Outputs, round?: (x: FloatArray) => FloatArray): Promise<Outputs> {
    const [first, middle, last] = this.stages;
    const p = params.map((x) => this.cast(round ? round(x) : x));
    const input = (x: FloatArray) => this.cast(round ? round(x) : x);
    const scratch = (s: Stage) => (this.floatType === 'float64' ? new Float64Array(s.layout.size) : new Float32Array(s.layout.size));
    const firstFwd = (await first.forward(p[0], batch.inputs)).output!;
    const middleFwd = (await middle.forward(p[1], input(ref?.firstFwd ?? firstFwd))).output!;
    const l = await last.backward(p[2], input(ref?.middleFwd ?? middleFwd), { targets: batch.targets }, scratch(last));
    const m = await middle.backward(p[1], input(ref?.firstFwd ?? firstFwd), { gradOutput: this.cast(ref?.lastBwd ?? l.gradInput!) }, scratch(middle));
    return { firstFwd, middleFwd, lastLoss: l.loss!, lastBwd: l.gradInput!, middleBwd: m.gradInput! };
  }

  dispose(): Promise<void[]> {
    return Promise.all(this.stages.map((s) => s.dispose()));
  }
}

// The same computation in PyTorch (scripts/torch_llama.py's modules, float32, one thread).
const TORCH = `
import json, sys, numpy as np, torch, torch.nn.functional as F
m = json.load(open(sys.argv[1])); sys.path.insert(0, m["scripts"]); import torch_llama as tl
torch.set_num_threads(1); c, d = m["config"], m["dir"]
model = tl.Llama(c); w, _ = tl.read_safetensors(m["checkpoint"]); model.load_state_dict(w, strict=True)
B, T, D = m["rows"], c["seq_len"], c["d_model"]
ld = lambda n, t: torch.from_numpy(np.fromfile(d + "/" + n, dtype=t))
act = lambda n: ld(n, np.float32).view(B, T, D)
save = lambda n, x: x.detach().numpy().astype(np.float32).tofile(d + "/" + n)
def layers(x, s):
    for layer in model.model.layers[s[0]:s[1] + 1]: x = layer(x, model.cos[:T], model.sin[:T])
    return x
s0, s1, s2 = m["stages"]
with torch.no_grad():
    save("firstFwd", layers(model.model.embed_tokens(ld("inputs", np.int64).view(B, T)), s0))
    save("middleFwd", layers(act("ref.firstFwd"), s1))
x = act("ref.middleFwd").requires_grad_()
lg = model.lm_head(model.model.norm(layers(x, s2)))
loss = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), ld("targets", np.int64))
loss.backward(); save("lastBwd", x.grad)
x = act("ref.firstFwd").requires_grad_(); layers(x, s1).backward(act("ref.lastBwd")); save("middleBwd", x.grad)
print(json.dumps({"loss": loss.item()}))
`;

async function torchRun(config: ModelConfig, stages: [number, number][], layout: ParamLayout, whole: Float32Array, batch: Batch, ref: Outputs): Promise<Outputs> {
  const dir = mkdtempSync(join(tmpdir(), 'drift-'));
  try {
    const checkpoint = join(dir, 'model.safetensors');
    const weights = new Map(layout.entries.map((e) => [e.name, { shape: [...e.shape], data: layout.view(whole, e.name) }]));
    await saveCheckpoint(checkpoint, { config, step: 0, ...wholeModel(config), weights });
    for (const [name, x] of Object.entries({ inputs: batch.inputs, targets: batch.targets, 'ref.firstFwd': ref.firstFwd, 'ref.middleFwd': ref.middleFwd, 'ref.lastBwd': ref.lastBwd })) {
      writeFileSync(join(dir, name), new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    }
    const scripts = fileURLToPath(new URL('.', import.meta.url));
    writeFileSync(join(dir, 'job.json'), JSON.stringify({ config, dir, checkpoint, scripts, stages, rows: config.batch_size }));
    const out = execFileSync(python, ['-c', TORCH, join(dir, 'job.json')], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const read = (n: string) => new Float32Array(new Uint8Array(readFileSync(join(dir, n))).buffer);
    return { firstFwd: read('firstFwd'), middleFwd: read('middleFwd'), lastLoss: JSON.parse(out.trim().split('\n').pop()!).loss, lastBwd: read('lastBwd'), middleBwd: read('middleBwd') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function compare(a: FloatArray | number, b: FloatArray | number): { rel_l2: number; max_rms: number; loss_diff?: number } {
  if (typeof a === 'number' || typeof b === 'number') {
    const d = Math.abs(Number(a) - Number(b));
    return { rel_l2: d / Math.abs(Number(b)), max_rms: d / Math.abs(Number(b)), loss_diff: d };
  }
  let dd = 0, bb = 0, max = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i] - b[i];
    dd += d * d;
    bb += b[i] * b[i];
    max = Math.max(max, Math.abs(d));
  }
  return { rel_l2: Math.sqrt(dd / bb), max_rms: max / Math.sqrt(bb / b.length) };
}

/** The whole model's weights after `steps` training steps on the run's data (AdamW, the preset's recipe). */
async function trainedWeights(name: string, config: ModelConfig, dataset: ReturnType<typeof buildDataset>): Promise<Float32Array> {
  const optim = trainRecipe(name, trainSteps);
  const trainer = await Trainer.create(config, optim);
  try {
    let [cur, next] = [freshState(trainer.layout, seed), freshState(trainer.layout, seed)];
    for (let s = 0; s < trainSteps; s++) {
      const batch = trainBatch(dataset, { seed, step: s, batchSize: config.batch_size, seqLen: config.seq_len });
      await trainer.trainStep(cur, next, batch, s + 1, learningRate(s, optim), optim);
      [cur, next] = [next, cur];
    }
    return cur.params;
  } finally {
    await trainer.dispose();
  }
}

const rows: Record<string, string | number | undefined>[] = [];
const dataset = buildDataset(loadBrownCorpus(), byteTokenizer);
for (const name of flags.presets.split(',')) {
  const config = loadPreset(name);
  const stages = evenStages(config.n_layers, 3);
  const spans = stageSpans(stages);
  const wholeLayout = new ParamLayout(config, wholeModel(config));
  // A batch the training loop has not seen yet, as a miner's sample rows (the whole step's batch).
  const batch = trainBatch(dataset, { seed, step: trainSteps, batchSize: config.batch_size, seqLen: config.seq_len });
  const setups = {
    ref: await Setup.create(config, spans, { threads: 1 }),
    'threads-2': await Setup.create(config, spans, { threads: 2 }),
    'opt-off': await Setup.create(config, spans, { threads: 1, optimization: 'disabled' }),
    float64: await Setup.create(config, spans, { threads: 1, floatType: 'float64' }),
  };
  const weightSets: [string, Float32Array][] = [['init', initParams(wholeLayout, seed, (n) => new Float32Array(n))]];
  if (trainSteps > 0) weightSets.push([`trained-${trainSteps}`, await trainedWeights(name, config, dataset)]);
  for (const [weights, whole] of weightSets) {
    const params = spans.map((span) => {
      const layout = new ParamLayout(config, span);
      const p = new Float32Array(layout.size);
      for (const e of layout.entries) p.set(wholeLayout.view(whole, e.name), e.offset);
      return p;
    });
    const ref = await setups.ref.run(params, batch);
    const runs: [string, Outputs][] = [
      ['threads-2', await setups['threads-2'].run(params, batch, ref)],
      ['opt-off', await setups['opt-off'].run(params, batch, ref)],
      ['float64', await setups.float64.run(params, batch, ref)],
      ...(flags['no-torch'] ? [] : ([['torch', await torchRun(config, stages, wholeLayout, whole, batch, ref)]] as [string, Outputs][])),
      ['tf32-in', await setups.ref.run(params, batch, ref, (x) => roundMantissa(x, 10))],
    ];
    for (const [bits, label] of [[10, 'fp16-out'], [7, 'bf16-out']] as const) {
      const r = (x: FloatArray) => roundMantissa(x, bits);
      runs.push([label, { firstFwd: r(ref.firstFwd), middleFwd: r(ref.middleFwd), lastLoss: r(Float32Array.of(ref.lastLoss))[0], lastBwd: r(ref.lastBwd), middleBwd: r(ref.middleBwd) }]);
    }
    const noisy = (x: FloatArray) => addNoise(x, 0.01);
    runs.push(['adversary-1%', { firstFwd: noisy(ref.firstFwd), middleFwd: noisy(ref.middleFwd), lastLoss: ref.lastLoss * 1.01, lastBwd: noisy(ref.lastBwd), middleBwd: noisy(ref.middleBwd) }]);
    for (const [comparison, out] of runs) {
      for (const kind of KINDS) rows.push({ preset: name, weights, comparison, kind, ...compare(out[kind], ref[kind]), ...(kind === 'lastLoss' ? { loss: ref.lastLoss } : {}) });
    }
  }
  for (const s of Object.values(setups)) await s.dispose();
}

const fmt = (x: number | string | undefined) => (typeof x === 'number' ? x.toExponential(2) : (x ?? ''));
if (flags.json) {
  for (const r of rows) console.log(JSON.stringify(r));
} else {
  console.log(['preset', 'weights', 'comparison', 'kind', 'rel_l2', 'max_rms', 'loss_diff'].map((h) => h.padEnd(12)).join(' '));
  for (const r of rows) console.log([r.preset, r.weights, r.comparison, r.kind, fmt(r.rel_l2), fmt(r.max_rms), fmt(r.loss_diff)].map((x) => String(x).padEnd(12)).join(' '));
}
// Per comparison, the worst case over presets, weights and output kinds.
const maxOf = (pick: (r: (typeof rows)[number]) => boolean, key: string) => Math.max(0, ...rows.filter(pick).map((r) => Number(r[key] ?? 0)));
const summary: Record<string, number | boolean> = { summary: true };
for (const c of [...new Set(rows.map((r) => String(r.comparison)))]) {
  summary[`max_rel_l2.${c}`] = maxOf((r) => r.comparison === c && r.kind !== 'lastLoss', 'rel_l2');
  summary[`max_max_rms.${c}`] = maxOf((r) => r.comparison === c && r.kind !== 'lastLoss', 'max_rms');
  summary[`max_loss_diff.${c}`] = maxOf((r) => r.comparison === c, 'loss_diff');
}
console.log(flags.json ? JSON.stringify(summary) : `\nsummary ${JSON.stringify(summary, null, 1)}`);
