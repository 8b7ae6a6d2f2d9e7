// The miner loop: register, hold one stage of the model, and do what the orchestrator asks —
// forward and backward passes of samples, the round's share and reduce steps, applying each
// round's optimizer step — until the run ends or the host stops it. Everything outside comes in
// as arguments (client, data, clock), and everything a host wants to show goes out as typed events,
// so the same loop runs under `tah miner`, the local swarm and the desktop app's utility process.
import type { OrchestratorClient } from '../../orchestrator-client/client.ts';
import { OrchestratorError } from '../../orchestrator-client/client.ts';
import { type BlobDims, type BlobKind, blobDataDigest, dequantizeInt8, quantizeInt8, quantizedMerge, runBlobDims, stateDigest } from '../../orchestrator-client/blobs.ts';
import type { ApplyTask, Assignment, BlobRef, Hardware, Lease, LocalTask, ReduceTask, RunSpec, SampleRef, ShareTask, SyncTask, Upload, Uploaded } from '../../orchestrator-client/protocol.ts';
import { downloadFromUrl, uploadBlob } from '../../orchestrator-client/transfer.ts';
import type { StageSpan } from '../checkpoint/checkpoint.ts';
import { type Dataset, trainBatch } from '../data/dataset.ts';
import type { DeviceChoice } from '../engine/session.ts';
import { type ModelConfig, runModelConfig } from '../model/config.ts';
import { ParamLayout, initParams } from '../model/params.ts';
import { Stage } from '../model/stage.ts';
import { fromOptimizerSpec } from '../optim/adamw.ts';
import { StageOptimizer } from '../optim/optimizer.ts';
import { outerNesterovStep, pseudoGradient } from '../optim/outer.ts';
import { BadBlobError, decodeBlob, decodeWire, encodeBlob, encodeWire } from './blobs.ts';
import { AdversaryState, type Faults, spoilReduction } from './faults.ts';

export type MinerState = 'starting' | 'idle' | 'forward' | 'backward' | 'redo' | 'local' | 'share' | 'reduce' | 'apply' | 'sync' | 'stopping' | 'stopped' | 'finished';

/** What a miner tells its host, one message at a time (JSON-safe: it crosses process boundaries). */
export type MinerEvent =
  | { type: 'status'; state: MinerState; version: number }
  | { type: 'assigned'; run_id: string; stage: number; stage_count: number; layers: [number, number]; params: number }
  | { type: 'work'; direction: 'forward' | 'backward' | 'redo'; round: number; sample_id: string; ms: number; tokens: number }
  | { type: 'loss'; round: number; sample_id: string; loss: number }
  | { type: 'applied'; round: number; version: number; lr: number; clip: number }
  // wire_bytes: of bytes_up, the activations and gradients sent across stage boundaries.
  | { type: 'throughput'; tokens_per_s: number; items: number; bytes_up: number; bytes_down: number; wire_bytes: number }
  | { type: 'error'; message: string; recoverable: boolean };

export interface MinerOptions {
  client: OrchestratorClient;
  hardware: Hardware;
  runId?: string;
  device?: DeviceChoice;
  threads?: number;
  /** The training data; loaded on first use (stage 0 reads inputs, the last stage targets). */
  dataset: () => Dataset;
  onEvent?: (e: MinerEvent) => void;
  /** How long one lease request may wait on the server for work. */
  waitMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Deliberate misbehaviour, for tests (faults.ts). */
  faults?: Faults;
}

interface StageState {
  assignment: Assignment;
  spec: RunSpec;
  config: ModelConfig;
  layout: ParamLayout;
  stage: Stage;
  optimizer: StageOptimizer;
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** Rounds applied to this copy of the stage. */
  version: number;
  /** The gradient summed over this round's samples, and a scratch buffer for one sample's. */
  gradSum: Float32Array;
  scratch: Float32Array;
  /** Per sample: the stage input its forward read, for its backward. */
  kept: Map<string, Float32Array | BigInt64Array>;
  /** Samples whose gradients gradSum holds. */
  samples: number;
  /** Local mode: the weights at the last merge, the outer momentum, and inner steps taken. */
  anchor: Float32Array;
  u: Float32Array;
  innerSteps: number;
  dims: BlobDims;
  last: boolean;
}

export class Miner {
  private stopping = false;
  /** The skew and share faults strike once. */
  private skewed = false;
  private blownUp = false;
  private poisoned = false;
  private state: StageState | null = null;
  private heartbeat: NodeJS.Timeout | undefined;
  private items = 0;
  private tokens = 0;
  private bytesUp = 0;
  private bytesDown = 0;
  private wireBytes = 0;
  /**
   * This round's merge blobs that this miner uploaded itself (shares and reduced slices), by key:
   * a reduce that sums its own share, or an apply that needs a slice it reduced, reads these same
   * bytes instead of fetching them back. With two replicas that halves a round's merge downloads.
   */
  private readonly own = new Map<string, Uint8Array>();
  private readonly adversary: AdversaryState | null;
  private readonly started: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: MinerOptions) {
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.started = this.now();
    this.adversary = opts.faults?.adversary ? new AdversaryState(opts.faults.adversary) : null;
  }

  private emit(e: MinerEvent): void {
    this.opts.onEvent?.(e);
  }

  private status(state: MinerState): void {
    this.emit({ type: 'status', state, version: this.state?.version ?? 0 });
  }

  /** Asks the loop to end: the task in hand is finished (or handed back) first. */
  stop(): void {
    this.stopping = true;
  }

  /** Runs until the run finishes or stop() is called. */
  async run(): Promise<'finished' | 'stopped'> {
    this.status('starting');
    try {
      await this.join();
      for (;;) {
        if (this.stopping) return 'stopped';
        try {
          const done = await this.step();
          if (done) {
            this.status('finished');
            return 'finished';
          }
        } catch (e) {
          if (e instanceof OrchestratorError && e.code === 'not_registered') {
            // Reaped while away (asleep, offline): what it held was re-issued, so start clean.
            this.emit({ type: 'error', message: 'the orchestrator dropped this miner; registering again', recoverable: true });
            await this.join();
            continue;
          }
          if (e instanceof OrchestratorError && e.code !== 'network' && e.code !== 'lease_expired' && e.code !== 'bad_request' && e.code !== 'conflict') throw e;
          this.emit({ type: 'error', message: (e as Error).message, recoverable: true });
          await this.sleep(500);
        }
      }
    } finally {
      clearInterval(this.heartbeat);
      if (this.stopping) {
        this.status('stopping');
        // Leaving says so at once, so the work this miner covered is re-issued without waiting
        // for its heartbeats to stop.
        await this.opts.client.leave().catch(() => {});
      }
      await this.state?.stage.dispose();
      await this.state?.optimizer.dispose();
      this.status('stopped');
    }
  }

  /** Registers and builds the stage (fresh weights at round 0; tasks bring it up to date). */
  private async join(): Promise<void> {
    const { client } = this.opts;
    const assignment = await client.register({ role: 'miner', run_id: this.opts.runId, hardware: this.opts.hardware });
    const spec = await client.run(assignment.run_id);
    const stageIndex = assignment.stage!;
    const same = this.state && this.state.assignment.run_id === assignment.run_id && this.state.assignment.stage === stageIndex;
    if (same) {
      // The same stage: the weights are still good; only the round's memory goes.
      const s = this.state!;
      s.assignment = assignment;
      this.clearSum(s);
    } else {
      this.own.clear();
      await this.state?.stage.dispose();
      await this.state?.optimizer.dispose();
      const config = runModelConfig(spec);
      const last = stageIndex === spec.stages.length - 1;
      const span: StageSpan = { layers: assignment.layers!, hasEmbed: stageIndex === 0, hasHead: last };
      const layout = new ParamLayout(config, span);
      const session = { device: this.opts.device, threads: this.opts.threads };
      // Backward recomputes the stage's forward inside one fused graph: a miner keeps only each
      // sample's stage input between its forward and backward. Handing the forward's activations
      // over instead ('keep') does the same arithmetic, but copies tens of MB per sample in and out
      // of ONNX Runtime and holds them in memory: measured 5,030 vs 5,620 tokens/s on the demo swarm.
      const stage = await Stage.create(config, span, { ...session, batch: spec.rows_per_sample, activations: 'recompute' });
      const optimizer = await StageOptimizer.create(layout, fromOptimizerSpec(spec.optimizer), session);
      this.state = {
        assignment,
        spec,
        config,
        layout,
        stage,
        optimizer,
        params: initParams(layout, spec.seed, (n) => new Float32Array(n)),
        m: new Float32Array(layout.size),
        v: new Float32Array(layout.size),
        version: 0,
        gradSum: new Float32Array(layout.size),
        scratch: new Float32Array(layout.size),
        kept: new Map(),
        samples: 0,
        anchor: new Float32Array(0),
        u: new Float32Array(spec.mode === 'local' ? layout.size : 0),
        innerSteps: 0,
        dims: runBlobDims(spec, config),
        last,
      };
      // Local mode: the weights at the last merge, the start of the first pseudo-gradient.
      if (spec.mode === 'local') this.state.anchor = this.state.params.slice();
      this.emit({ type: 'assigned', run_id: assignment.run_id, stage: stageIndex, stage_count: assignment.stage_count, layers: assignment.layers!, params: layout.size });
    }
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      client.heartbeat().catch((e: Error) => this.emit({ type: 'error', message: `heartbeat: ${e.message}`, recoverable: true }));
    }, assignment.heartbeat_interval_s * 1000);
    this.heartbeat.unref();
  }

  /** One task; true when the run has finished. */
  private async step(): Promise<boolean> {
    const s = this.state!;
    const res = await this.opts.client.lease({ version: s.version, wait_ms: this.opts.waitMs ?? 1000 });
    if (res.finished) return true;
    const task = res.lease;
    if (!task) {
      this.status('idle');
      if (res.retry_after_ms > 0 && (this.opts.waitMs ?? 1000) === 0) await this.sleep(res.retry_after_ms);
      return false;
    }
    switch (task.kind) {
      case 'work':
        await this.guarded(task.id, () => this.work(s, task));
        break;
      case 'share':
        await this.share(s, task);
        break;
      case 'local':
        await this.local(s, task);
        break;
      case 'reduce':
        await this.guarded(task.id, () => this.reduce(s, task));
        break;
      case 'apply':
        await this.apply(s, task);
        break;
      case 'sync':
        await this.sync(s, task);
        break;
    }
    this.emit({ type: 'throughput', tokens_per_s: (this.tokens * 1000) / Math.max(1, this.now() - this.started), items: this.items, bytes_up: this.bytesUp, bytes_down: this.bytesDown, wire_bytes: this.wireBytes });
    return false;
  }

  /** Runs a leased task; an unusable input is reported (and the work re-issued), anything else hands the lease back. */
  private async guarded(leaseId: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (e instanceof BadBlobError) {
        this.emit({ type: 'error', message: `refused another miner's upload: ${e.message}`, recoverable: true });
        await this.opts.client.reject(leaseId, e.message).catch(() => {});
        return;
      }
      await this.opts.client.release(leaseId).catch(() => {});
      throw e;
    }
  }

  // ---- sample work ----

  /** The sample's rows of the single-process batch: token ids and next-token targets. */
  private rows(ref: SampleRef, seqLen: number): { inputs: BigInt64Array; targets: BigInt64Array } {
    const batch = trainBatch(this.opts.dataset(), { seed: ref.seed, step: ref.step, batchSize: ref.batch_size, seqLen });
    const from = ref.first_row * seqLen;
    const to = (ref.first_row + ref.rows) * seqLen;
    return { inputs: batch.inputs.slice(from, to), targets: batch.targets.slice(from, to) };
  }

  private async download(ref: BlobRef, kind: BlobKind, dims: BlobDims): Promise<Map<string, Float32Array>> {
    return (await this.downloadWithMetadata(ref, kind, dims)).tensors;
  }

  private async downloadWithMetadata(ref: BlobRef, kind: BlobKind, dims: BlobDims): Promise<{ tensors: Map<string, Float32Array>; metadata: Record<string, string> }> {
    return decodeBlob(ref.key, await this.fetch(ref), kind, dims);
  }

  private async fetch(ref: BlobRef): Promise<Uint8Array> {
    const mine = this.own.get(ref.key);
    if (mine) return mine;
    const bytes = await downloadFromUrl(ref.url, { maxBytes: Math.max(ref.bytes, 1) * 2 + 65_536 });
    this.bytesDown += bytes.length;
    return bytes;
  }

  /**
   * The hash of what replicas of the stage share: everything in exact mode; in local mode the
   * merged weights and the outer momentum (inner AdamW moments are each replica's own).
   */
  private sharedStateDigest(s: StageState): string {
    return s.spec.mode === 'local' ? stateDigest(s.params, s.u, new Float32Array(0), s.version) : stateDigest(s.params, s.m, s.v, s.version);
  }

  private async put(upload: Upload, blob: Uint8Array): Promise<Uploaded> {
    const uploaded = await uploadBlob(upload, blob);
    this.bytesUp += blob.length;
    return uploaded;
  }

  private async stageInput(s: StageState, input: Lease['input']): Promise<Float32Array | BigInt64Array> {
    if (input.kind === 'sample') return this.rows(input, s.config.seq_len).inputs;
    return this.downloadWire(input, 'activation', s.dims);
  }

  /** Another miner's activation or gradient, decoded by the run's codec (and checked in full). */
  private async downloadWire(ref: BlobRef, kind: 'activation' | 'gradient', dims: BlobDims): Promise<Float32Array> {
    return decodeWire(ref.key, await this.fetch(ref), kind, dims);
  }

  /** The sample's token ids, for a stage that decodes a bottleneck; none otherwise. */
  private tokenIds(s: StageState, ref: SampleRef): BigInt64Array | undefined {
    return s.stage.needsTokens ? this.rows(ref, s.config.seq_len).inputs : undefined;
  }

  private addScratch(s: StageState): void {
    const { gradSum, scratch } = s;
    for (let i = 0; i < gradSum.length; i++) gradSum[i] += scratch[i];
    s.samples += 1;
  }

  /** A fresh sum for the next round. */
  private clearSum(s: StageState): void {
    s.gradSum.fill(0);
    s.samples = 0;
    s.kept.clear();
    this.own.clear();
  }

  private async work(s: StageState, lease: Lease): Promise<void> {
    const t0 = this.now();
    this.status(lease.direction);
    const tokens = lease.sample.rows * s.config.seq_len;
    let output: Float32Array | undefined;
    let loss: number | undefined;
    let input: Float32Array | BigInt64Array;
    if (lease.direction === 'forward' && !s.last) {
      input = await this.stageInput(s, lease.input);
      const r = await s.stage.forward(s.params, input, undefined, this.tokenIds(s, lease.sample));
      s.kept.set(lease.sample_id, input);
      output = r.output as Float32Array;
    } else if (s.last && lease.direction !== 'backward') {
      // The last stage: forward, loss and backward at once (a redo sends nothing down).
      input = await this.stageInput(s, lease.input);
      const sample = this.rows(lease.sample, s.config.seq_len);
      const b = await s.stage.backward(s.params, input, { targets: sample.targets, tokens: s.stage.needsTokens ? sample.inputs : undefined }, s.scratch);
      this.addScratch(s);
      loss = b.loss;
      if (lease.direction === 'forward') output = b.gradInput as Float32Array | undefined;
    } else {
      // Backward (or its redo): the gradient of this stage's output, and the forward's activations.
      const gradOutput = await this.downloadWire(lease.input as BlobRef, 'gradient', s.dims);
      // This miner's own forward left the input here; otherwise (another miner's forward, or a
      // redo) it is fetched again.
      input = (lease.direction === 'backward' ? s.kept.get(lease.sample_id) : undefined) ?? (await this.stageInput(s, lease.forward_input!));
      const b = await s.stage.backward(s.params, input, { gradOutput, tokens: this.tokenIds(s, lease.sample) }, s.scratch);
      s.kept.delete(lease.sample_id);
      this.addScratch(s);
      if (lease.direction === 'backward') output = b.gradInput as Float32Array | undefined;
    }
    let uploaded: Uploaded | undefined;
    if (lease.output.kind !== 'none') {
      if (!output) throw new Error(`lease ${lease.id} wants a ${lease.output.kind} this stage does not produce`);
      const kind = lease.output.kind;
      const adversary = this.adversary;
      const blob = adversary ? adversary.blob(encodeWire(kind, s.dims, adversary.output(kind, output, input))) : encodeWire(kind, s.dims, output);
      uploaded = await this.put(lease.output, blob);
      this.wireBytes += blob.length;
    }
    await this.opts.client.complete({ lease_id: lease.id, ...(uploaded ? { output: uploaded } : {}), ...(loss !== undefined && lease.direction === 'forward' ? { loss } : {}) });
    if (loss !== undefined && lease.direction === 'forward') this.emit({ type: 'loss', round: lease.round, sample_id: lease.sample_id, loss });
    this.items++;
    // Tokens through this stage: counted once per sample, on its forward pass.
    if (lease.direction === 'forward') this.tokens += tokens;
    this.emit({ type: 'work', direction: lease.direction, round: lease.round, sample_id: lease.sample_id, ms: this.now() - t0, tokens });
  }

  // ---- the round's end ----

  private async share(s: StageState, task: ShareTask): Promise<void> {
    this.status('share');
    if (this.opts.faults?.blowUpShare === task.round && !this.blownUp) {
      this.blownUp = true;
      for (let i = 0; i < s.gradSum.length; i++) s.gradSum[i] *= 1e4;
    }
    // Local mode shares the pseudo-gradient (scratch is free between rounds).
    const computed = task.what === 'delta' ? pseudoGradient(s.anchor, s.params, s.scratch) : s.gradSum;
    const buffer = this.adversary ? this.adversary.share(computed) : computed;
    const outputs = [];
    const q8 = quantizedMerge(s.spec);
    for (const { range, upload } of task.slices) {
      const part = buffer.subarray(range[0], range[1]);
      const blob = q8 ? encodeBlob('share_q8', { ...s.dims, length: part.length }, quantizeInt8(part)) : encodeBlob('share', { ...s.dims, length: part.length }, { grad: part });
      outputs.push(await this.put(upload, blob));
      this.own.set(upload.key, blob);
    }
    await this.opts.client.complete({ lease_id: task.id, outputs });
  }

  private async reduce(s: StageState, task: ReduceTask): Promise<void> {
    this.status('reduce');
    const dims = { ...s.dims, length: task.range[1] - task.range[0] };
    const sum = new Float32Array(dims.length);
    // In the task's order, in float32: every replica that reduces this slice gets the same bits.
    const q8 = quantizedMerge(s.spec);
    for (const input of task.inputs) {
      const part = fromBlob(await this.download(input, q8 ? 'share_q8' : 'share', dims));
      for (let i = 0; i < sum.length; i++) sum[i] += part[i];
    }
    for (let i = 0; i < sum.length; i++) sum[i] *= task.scale;
    if (this.opts.faults?.reduce) spoilReduction(sum, this.opts.faults.reduce);
    const quantized = q8 ? quantizeInt8(sum) : null;
    const result = quantized ? dequantizeInt8(quantized.q, quantized.scale) : sum;
    let sumsq = 0;
    for (let i = 0; i < result.length; i++) sumsq += result[i] * result[i];
    const blob = quantized ? encodeBlob('reduced_q8', dims, quantized) : encodeBlob('reduced', dims, { grad: sum });
    const output = await this.put(task.upload, blob);
    this.own.set(task.upload.key, blob);
    // The digest of the blob's data: the float32 sum itself, or its int8 blocks and scales.
    await this.opts.client.complete({ lease_id: task.id, output, sumsq, digest: blobDataDigest(blob)! });
  }

  /** Local mode: an inner AdamW step on this replica's own mean gradient, clipped by its own norm. */
  private async local(s: StageState, task: LocalTask): Promise<void> {
    this.status('local');
    const n = Math.max(1, s.samples);
    const grad = s.scratch;
    let sumsq = 0;
    for (let i = 0; i < grad.length; i++) {
      grad[i] = s.gradSum[i] / n;
      sumsq += grad[i] * grad[i];
    }
    const clip = task.clip_norm > 0 ? Math.min(1, task.clip_norm / (Math.sqrt(sumsq) + 1e-6)) : 1;
    const next = { params: new Float32Array(s.layout.size), m: new Float32Array(s.layout.size), v: new Float32Array(s.layout.size) };
    s.innerSteps += 1;
    await s.optimizer.step({ params: s.params, m: s.m, v: s.v }, grad, next, s.innerSteps, task.lr, clip);
    Object.assign(s, next);
    this.clearSum(s);
    await this.opts.client.complete({ lease_id: task.id });
  }

  private async apply(s: StageState, task: ApplyTask): Promise<void> {
    this.status('apply');
    if (task.step === 'none') {
      // Local mode between merges: this replica's own step (if it had samples) is taken already.
      s.version = task.round + 1;
      this.clearSum(s);
      this.emit({ type: 'applied', round: task.round, version: s.version, lr: task.lr, clip: task.clip });
      return;
    }
    const grad = new Float32Array(s.layout.size);
    const bad: { key: string; reason: string }[] = [];
    for (const { range, digest, blobs } of task.slices) grad.set(await this.agreedSlice(s, range, digest, blobs, bad), range[0]);
    if (bad.length > 0) this.emit({ type: 'error', message: `reduced slices not as agreed: ${bad.map((b) => `${b.key}: ${b.reason}`).join('; ')}`, recoverable: true });
    if (task.step === 'outer') {
      // Every replica applies the same mean pseudo-gradient to the same weights at the last merge.
      outerNesterovStep(s.anchor, s.u, grad, s.spec.local.outer_lr, s.spec.local.outer_momentum);
      s.params = s.anchor.slice();
    } else {
      const next = { params: new Float32Array(s.layout.size), m: new Float32Array(s.layout.size), v: new Float32Array(s.layout.size) };
      await s.optimizer.step({ params: s.params, m: s.m, v: s.v }, grad, next, task.round + 1, task.lr, task.clip);
      Object.assign(s, next);
    }
    s.version = task.round + 1;
    this.clearSum(s);
    if (this.opts.faults?.skewAfter === task.round && !this.skewed) {
      this.skewed = true;
      s.params[0] += 1e-3;
    }
    if (this.opts.faults?.poisonAfter === task.round && !this.poisoned) {
      this.poisoned = true;
      for (let i = 0; i < s.params.length; i++) s.params[i] *= 20;
    }
    // Every replica reports its state's hash: one whose state is not the stage's is resynchronised.
    const report = { round: task.round, hash: this.sharedStateDigest(s), ...(bad.length ? { bad_blobs: bad } : {}) };
    if (task.snapshot) {
      const local = s.spec.mode === 'local';
      const tensors: Record<string, Float32Array> = local ? { params: s.params, m: s.m, v: s.v, u: s.u } : { params: s.params, m: s.m, v: s.v };
      const blob = encodeBlob(local ? 'outer_snapshot' : 'snapshot', { ...s.dims, length: s.layout.size }, tensors, { rounds: String(s.version), inner_steps: String(s.innerSteps) });
      await this.opts.client.applied({ ...report, snapshot: await this.put(task.snapshot, blob) });
    } else await this.opts.client.applied(report);
    this.emit({ type: 'applied', round: task.round, version: s.version, lr: task.lr, clip: task.clip });
  }

  /**
   * One slice of the reduced gradient: the first copy whose content has the agreed digest. Copies
   * that do not are noted in `bad` (for the orchestrator to check) and the next is tried.
   */
  private async agreedSlice(s: StageState, range: [number, number], digest: string, blobs: BlobRef[], bad: { key: string; reason: string }[]): Promise<Float32Array> {
    const kind = quantizedMerge(s.spec) ? 'reduced_q8' : 'reduced';
    // A copy this miner reduced itself is used when it is the agreed one; if it is not, the vote has
    // judged it already, so only the others are fetched and checked.
    const mine = blobs.find((b) => this.own.has(b.key) && blobDataDigest(this.own.get(b.key)!) === digest);
    for (const blob of mine ? [mine] : blobs.filter((b) => !this.own.has(b.key))) {
      try {
        const bytes = await this.fetch(blob);
        if (blobDataDigest(bytes) === digest) return fromBlob(decodeBlob(blob.key, bytes, kind, { ...s.dims, length: range[1] - range[0] }).tensors);
        bad.push({ key: blob.key, reason: `its content does not have the agreed digest ${digest.slice(0, 12)}…` });
      } catch (e) {
        if (!(e instanceof BadBlobError)) throw e;
        bad.push({ key: blob.key, reason: e.message });
      }
    }
    throw new Error(`no copy of the reduced slice [${range[0]}, ${range[1]}) has the agreed content`);
  }

  private async sync(s: StageState, task: SyncTask): Promise<void> {
    this.status('sync');
    // A rollback to before the poisoned round makes the bad update history: a replica that had not
    // yet applied it (a straggler) must not apply it in the replay, or the replicas would disagree.
    const poison = this.opts.faults?.poisonAfter;
    if (poison !== undefined && task.rounds <= poison && s.version > task.rounds) this.poisoned = true;
    const local = s.spec.mode === 'local';
    if (task.blob === null) {
      // The run's initial state: what every replica starts from.
      s.params = initParams(s.layout, s.spec.seed, (n) => new Float32Array(n));
      s.m = new Float32Array(s.layout.size);
      s.v = new Float32Array(s.layout.size);
      s.u = new Float32Array(local ? s.layout.size : 0);
      s.innerSteps = 0;
    } else {
      const { tensors: t, metadata } = await this.downloadWithMetadata(task.blob, local ? 'outer_snapshot' : 'snapshot', { ...s.dims, length: s.layout.size });
      Object.assign(s, { params: t.get('params')!, m: t.get('m')!, v: t.get('v')!, u: t.get('u') ?? new Float32Array(0) });
      s.innerSteps = Number(metadata.inner_steps ?? task.rounds) || 0;
      s.version = task.rounds;
      if (task.hash !== null && this.sharedStateDigest(s) !== task.hash) throw new Error(`the stored state ${task.blob.key} does not have the hash it was stored with`);
      if (local && s.spec.local.newcomer_state === 'fresh') {
        // For comparison only: a newcomer that starts its inner AdamW moments from zero.
        s.m = new Float32Array(s.layout.size);
        s.v = new Float32Array(s.layout.size);
        s.innerSteps = 0;
      }
    }
    if (local) s.anchor = s.params.slice();
    s.version = task.rounds;
    this.clearSum(s);
    this.emit({ type: 'applied', round: task.rounds - 1, version: s.version, lr: 0, clip: 1 });
  }
}

/** A share's or reduced slice's values: its float32 'grad', or its int8 blocks dequantized. */
function fromBlob(tensors: Map<string, Float32Array>): Float32Array {
  const grad = tensors.get('grad');
  return grad ?? dequantizeInt8(tensors.get('q')!, tensors.get('scale')!);
}
