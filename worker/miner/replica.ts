// What miners and validators share: registering, holding one stage of the model (weights and
// optimizer state, kept in step with the run by applying each round's agreed update or loading a
// stored state), and the loop that takes tasks from the orchestrator until the run ends or the
// host stops it. Miner (miner.ts) does the swarm's work with it; Validator (validator/) re-runs
// sampled work. Everything outside comes in as arguments (client, data, clock), and everything a
// host wants to show goes out as typed events.
import type { OrchestratorClient } from '../../orchestrator-client/client.ts';
import { OrchestratorError } from '../../orchestrator-client/client.ts';
import { type BlobDims, type BlobKind, blobDataDigest, dequantizeInt8, quantizedMerge, runBlobDims, stateDigest } from '../../orchestrator-client/blobs.ts';
import type { ApplyTask, Assignment, BlobRef, Hardware, Lease, LeaseRequest, LeaseResponse, RunSpec, SampleRef, SyncTask, Task, Upload, Uploaded } from '../../orchestrator-client/protocol.ts';
import type { StageSpan } from '../checkpoint/checkpoint.ts';
import { type Dataset, trainBatch } from '../data/dataset.ts';
import type { DeviceChoice } from '../engine/session.ts';
import { type ModelConfig, runModelConfig } from '../model/config.ts';
import { ParamLayout, initParams } from '../model/params.ts';
import { type Saved, Stage } from '../model/stage.ts';
import { fromOptimizerSpec } from '../optim/adamw.ts';
import { StageOptimizer } from '../optim/optimizer.ts';
import { outerNesterovStep } from '../optim/outer.ts';
import { BadBlobError, ChangedBlobError, checkAccepted, decodeBlob, decodeWire } from './blobs.ts';
import { type BlobTransport, httpTransport } from './blob-transport.ts';

export type MinerState = 'starting' | 'idle' | 'forward' | 'backward' | 'redo' | 'local' | 'share' | 'reduce' | 'apply' | 'store' | 'sync' | 'validate' | 'stopping' | 'stopped' | 'finished';

/** What a miner tells its host, one message at a time (JSON-safe: it crosses process boundaries). */
export type MinerEvent =
  | { type: 'status'; state: MinerState; version: number }
  | { type: 'assigned'; run_id: string; stage: number; stage_count: number; layers: [number, number]; params: number }
  | { type: 'work'; direction: 'forward' | 'backward' | 'redo'; round: number; sample_id: string; ms: number; tokens: number }
  | { type: 'loss'; round: number; sample_id: string; loss: number }
  | { type: 'applied'; round: number; version: number; lr: number; clip: number }
  // wire_bytes: of bytes_up, the activations and gradients sent across stage boundaries.
  | { type: 'throughput'; tokens_per_s: number; items: number; /** Tokens processed since this miner started. */ tokens: number; bytes_up: number; bytes_down: number; wire_bytes: number }
  | { type: 'error'; message: string; recoverable: boolean }
  // A validator's verdict on a check of another miner's work.
  | { type: 'verdict'; check: number; round: number; miner: string; target: 'item' | 'share'; outcome: 'pass' | 'fail' | 'abstain'; error: number; ms: number };

export interface ReplicaOptions {
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
  /** How blobs move (default: over HTTP; see blob-transport.ts for the local store's machine). */
  transport?: BlobTransport;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface StageState {
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
  /** The gradient summed over this round's samples (backward adds each sample's into it). */
  gradSum: Float32Array;
  /** Local mode: a stage-sized buffer for the inner step's mean gradient and the shared pseudo-gradient (empty in exact mode). */
  scratch: Float32Array;
  /** Per sample: the stage input its forward read and the activations it saved, for its backward. */
  kept: Map<string, { input: Float32Array | BigInt64Array; saved?: Saved }>;
  /** Saved activations whose backward is done: the next forward writes into them. */
  spare: Saved[];
  /** Samples whose gradients gradSum holds. */
  samples: number;
  /** The round and generation gradSum is for ('round/generation'): a restarted round's sum starts again. */
  sumTag: string;
  /** Local mode: the weights at the last merge, the outer momentum, and inner steps taken. */
  anchor: Float32Array;
  u: Float32Array;
  innerSteps: number;
  dims: BlobDims;
  last: boolean;
}


export abstract class Replica {
  protected stopping = false;
  protected state: StageState | null = null;
  private heartbeat: NodeJS.Timeout | undefined;
  protected items = 0;
  protected tokens = 0;
  protected bytesUp = 0;
  protected bytesDown = 0;
  protected wireBytes = 0;
  /**
   * This round's merge blobs that this replica uploaded itself (shares and reduced slices), by key:
   * a reduce that sums its own share, or an apply that needs a slice it reduced, reads these same
   * bytes instead of fetching them back. With two replicas that halves a round's merge downloads.
   */
  protected readonly own = new Map<string, Uint8Array>();
  /** Digests of blob data already computed, by the bytes (an own reduced slice is digested once, not three times). */
  private readonly digests = new WeakMap<Uint8Array, string | null>();
  /** The next task, when the last report brought it along (one request a task instead of two). */
  protected prefetched: LeaseResponse | null = null;
  /** When a lease answer last came: the orchestrator counted this replica as seen when it asked. */
  private answeredAt = -Infinity;
  protected readonly started: number;
  protected readonly now: () => number;
  protected readonly sleep: (ms: number) => Promise<void>;

  /** What it registers as. */
  protected abstract readonly role: 'miner' | 'validator';
  /** Asks the orchestrator for the next task. */
  protected abstract next(req: LeaseRequest): Promise<LeaseResponse>;
  /** Does one task. */
  protected abstract handle(s: StageState, task: Task): Promise<void>;
  /** Before a stored state is loaded (a hook for the miner's deliberate faults). */
  protected beforeSync(_s: StageState, _task: SyncTask): void {}

  constructor(protected readonly opts: ReplicaOptions) {
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.started = this.now();
  }

  protected emit(e: MinerEvent): void {
    this.opts.onEvent?.(e);
  }

  protected status(state: MinerState): void {
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
            this.emit({ type: 'error', message: `the orchestrator dropped this ${this.role}; registering again`, recoverable: true });
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
      this.status('stopped');
    }
  }

  /** Registers and builds the stage (fresh weights at round 0; tasks bring it up to date). */
  protected async join(): Promise<void> {
    this.prefetched = null;
    const { client } = this.opts;
    const assignment = await client.register({ role: this.role, run_id: this.opts.runId, hardware: this.opts.hardware });
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
      const config = runModelConfig(spec);
      const last = stageIndex === spec.stages.length - 1;
      const span: StageSpan = { layers: assignment.layers!, hasEmbed: stageIndex === 0, hasHead: last };
      const layout = new ParamLayout(config, span);
      const session = { device: this.opts.device, threads: this.opts.threads };
      // A sample's forward hands its backward the outputs of the stage's matrix products, and the
      // backward recomputes only the cheap element-wise rest. Keeping every activation instead
      // copies about four times as much in and out of ONNX Runtime (measured slower than
      // recomputing everything: 5,030 vs 5,620 tokens/s on the demo swarm). The last stage runs
      // forward, loss and backward in one graph and keeps nothing.
      // A validator re-runs single items and never hands a forward's values to a backward: it
      // recomputes (keeping products would cost its forward checks the copies, its backward
      // checks a second forward).
      const stage = await Stage.create(config, span, { ...session, batch: spec.rows_per_sample, activations: last || this.role === 'validator' ? 'recompute' : 'products' });
      const optimizer = new StageOptimizer(layout, fromOptimizerSpec(spec.optimizer));
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
        scratch: new Float32Array(spec.mode === 'local' ? layout.size : 0),
        kept: new Map(),
        spare: [],
        samples: 0,
        sumTag: '',
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
    const every = assignment.heartbeat_interval_s * 1000;
    this.heartbeat = setInterval(() => {
      // A lease request counts as a heartbeat: one answered within half the interval makes this
      // one redundant (a busy miner would otherwise add one request for every few it makes).
      if (this.now() - this.answeredAt < every / 2) return;
      client.heartbeat().catch((e: Error) => this.emit({ type: 'error', message: `heartbeat: ${e.message}`, recoverable: true }));
    }, every);
    this.heartbeat.unref();
  }

  /** One task; true when the run has finished. */
  protected async step(): Promise<boolean> {
    const s = this.state!;
    const res = this.prefetched ?? (await this.next(this.leaseRequest()));
    this.prefetched = null;
    this.answeredAt = this.now();
    if (res.finished) return true;
    const task = res.lease;
    if (!task) {
      this.status('idle');
      if (res.retry_after_ms > 0 && (this.opts.waitMs ?? 1000) === 0) await this.sleep(res.retry_after_ms);
      return false;
    }
    await this.handle(s, task);
    this.emit({ type: 'throughput', tokens_per_s: (this.tokens * 1000) / Math.max(1, this.now() - this.started), items: this.items, tokens: this.tokens, bytes_up: this.bytesUp, bytes_down: this.bytesDown, wire_bytes: this.wireBytes });
    return false;
  }

  /** What asking for the next task says: the rounds this replica holds, and how long to wait. */
  protected leaseRequest(): LeaseRequest {
    return { version: this.state?.version ?? 0, wait_ms: this.opts.waitMs ?? 1000 };
  }

  // ---- inputs and outputs ----

  /** The sample's rows of the single-process batch: token ids and next-token targets. */
  protected rows(ref: SampleRef, seqLen: number): { inputs: BigInt64Array; targets: BigInt64Array } {
    const batch = trainBatch(this.opts.dataset(), { seed: ref.seed, step: ref.step, batchSize: ref.batch_size, seqLen });
    const from = ref.first_row * seqLen;
    const to = (ref.first_row + ref.rows) * seqLen;
    return { inputs: batch.inputs.slice(from, to), targets: batch.targets.slice(from, to) };
  }

  protected async download(ref: BlobRef, kind: BlobKind, dims: BlobDims): Promise<Map<string, Float32Array>> {
    return (await this.downloadWithMetadata(ref, kind, dims)).tensors;
  }

  protected async downloadWithMetadata(ref: BlobRef, kind: BlobKind, dims: BlobDims): Promise<{ tensors: Map<string, Float32Array>; metadata: Record<string, string> }> {
    return decodeBlob(ref.key, await this.fetch(ref), kind, dims);
  }

  /** Another participant's blob, refused (ChangedBlobError) unless its bytes are the ones accepted. */
  protected async fetch(ref: BlobRef): Promise<Uint8Array> {
    const mine = this.own.get(ref.key);
    if (mine) return mine;
    const bytes = await (this.opts.transport ?? httpTransport).download(ref.url, Math.max(ref.bytes, 1) * 2 + 65_536);
    this.bytesDown += bytes.length;
    return checkAccepted(ref.key, bytes, ref.sha256);
  }

  /** Reports a blob read outside a lease that was not as accepted (the orchestrator checks and re-issues what it spoiled). */
  protected async refuse(e: ChangedBlobError): Promise<void> {
    this.emit({ type: 'error', message: `refused a blob not as accepted: ${e.message}`, recoverable: true });
    await this.opts.client.refusal({ key: e.key, sha256: e.found, reason: e.message }).catch(() => {});
  }

  /**
   * The hash of what replicas of the stage share: everything in exact mode; in local mode the
   * merged weights and the outer momentum (inner AdamW moments are each replica's own).
   */
  protected sharedStateDigest(s: StageState): string {
    return s.spec.mode === 'local' ? stateDigest(s.params, s.u, new Float32Array(0), s.version) : stateDigest(s.params, s.m, s.v, s.version);
  }

  protected async put(upload: Upload, blob: Uint8Array): Promise<Uploaded> {
    const uploaded = await (this.opts.transport ?? httpTransport).upload(upload, blob);
    this.bytesUp += blob.length;
    return uploaded;
  }

  protected async stageInput(s: StageState, input: Lease['input']): Promise<Float32Array | BigInt64Array> {
    if (input.kind === 'sample') return this.rows(input, s.config.seq_len).inputs;
    return this.downloadWire(input, 'activation', s.dims);
  }

  /** Another miner's activation or gradient, decoded by the run's codec (and checked in full). */
  protected async downloadWire(ref: BlobRef, kind: 'activation' | 'gradient', dims: BlobDims): Promise<Float32Array> {
    return decodeWire(ref.key, await this.fetch(ref), kind, dims);
  }

  /** The sample's token ids, for a stage that decodes a bottleneck; none otherwise. */
  protected tokenIds(s: StageState, ref: SampleRef): BigInt64Array | undefined {
    return s.stage.needsTokens ? this.rows(ref, s.config.seq_len).inputs : undefined;
  }

  /** A fresh sum for the next round. */
  protected clearSum(s: StageState): void {
    s.gradSum.fill(0);
    s.samples = 0;
    s.kept.clear();
    this.own.clear();
  }


  // ---- keeping in step ----

  /**
   * The round's step on this copy of the stage: the agreed reduced gradient (or pseudo-gradient),
   * AdamW (or the outer step); the version moves on. Returns the copies found not as agreed.
   */
  protected async applyStep(s: StageState, task: ApplyTask): Promise<{ key: string; reason: string; sha256?: string }[]> {
    if (task.step === 'none') {
      // Local mode between merges: this replica's own step (if it had samples) is taken already.
      s.version = task.round + 1;
      this.clearSum(s);
      return [];
    }
    const grad = new Float32Array(s.layout.size);
    const bad: { key: string; reason: string; sha256?: string }[] = [];
    for (const { range, digest, blobs } of task.slices) grad.set(await this.agreedSlice(s, range, digest, blobs, bad), range[0]);
    if (bad.length > 0) this.emit({ type: 'error', message: `reduced slices not as agreed: ${bad.map((b) => `${b.key}: ${b.reason}`).join('; ')}`, recoverable: true });
    if (task.step === 'outer') {
      // Every replica applies the same mean pseudo-gradient to the same weights at the last merge.
      outerNesterovStep(s.anchor, s.u, grad, s.spec.local.outer_lr, s.spec.local.outer_momentum);
      s.params = s.anchor.slice();
    } else {
      // In place: every reader of the weights (forward inputs, snapshots) holds what it needs by now.
      s.optimizer.step(s, grad, s, task.round + 1, task.lr, task.clip);
    }
    s.version = task.round + 1;
    this.clearSum(s);
    return bad;
  }

  /**
   * One slice of the reduced gradient: the first copy whose content has the agreed digest. Copies
   * that do not are noted in `bad` (for the orchestrator to check) and the next is tried.
   */
  protected async agreedSlice(s: StageState, range: [number, number], digest: string, blobs: BlobRef[], bad: { key: string; reason: string; sha256?: string }[]): Promise<Float32Array> {
    const kind = quantizedMerge(s.spec) ? 'reduced_q8' : 'reduced';
    // A copy this miner reduced itself is used when it is the agreed one; if it is not, the vote has
    // judged it already, so only the others are fetched and checked.
    const mine = blobs.find((b) => this.own.has(b.key) && this.dataDigest(this.own.get(b.key)!) === digest);
    for (const blob of mine ? [mine] : blobs.filter((b) => !this.own.has(b.key))) {
      try {
        const bytes = await this.fetch(blob);
        if (this.dataDigest(bytes) === digest) return fromBlob(decodeBlob(blob.key, bytes, kind, { ...s.dims, length: range[1] - range[0] }).tensors);
        bad.push({ key: blob.key, reason: `its content does not have the agreed digest ${digest.slice(0, 12)}…` });
      } catch (e) {
        if (!(e instanceof BadBlobError)) throw e;
        bad.push({ key: blob.key, reason: e.message, ...(e instanceof ChangedBlobError ? { sha256: e.found } : {}) });
      }
    }
    throw new Error(`no copy of the reduced slice [${range[0]}, ${range[1]}) has the agreed content`);
  }

  /** blobDataDigest, computed once for the same bytes. */
  protected dataDigest(bytes: Uint8Array): string | null {
    let d = this.digests.get(bytes);
    if (d === undefined) this.digests.set(bytes, (d = blobDataDigest(bytes)));
    return d;
  }

  /** Loads a stored state (or makes the initial one) in place of replaying older rounds. */
  protected async sync(s: StageState, task: SyncTask): Promise<void> {
    this.status('sync');
    this.beforeSync(s, task);
    const local = s.spec.mode === 'local';
    if (task.blob === null) {
      // The run's initial state: what every replica starts from.
      s.params = initParams(s.layout, s.spec.seed, (n) => new Float32Array(n));
      s.m = new Float32Array(s.layout.size);
      s.v = new Float32Array(s.layout.size);
      s.u = new Float32Array(local ? s.layout.size : 0);
      s.innerSteps = 0;
    } else {
      let loaded: Awaited<ReturnType<Replica['downloadWithMetadata']>>;
      try {
        loaded = await this.downloadWithMetadata(task.blob, local ? 'outer_snapshot' : 'snapshot', { ...s.dims, length: s.layout.size });
      } catch (e) {
        // A stored state changed since it was accepted: reported (so it is no longer offered), then this task fails.
        if (e instanceof ChangedBlobError) await this.refuse(e);
        throw e;
      }
      const { tensors: t, metadata } = loaded;
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
export function fromBlob(tensors: Map<string, Float32Array>): Float32Array {
  const grad = tensors.get('grad');
  return grad ?? dequantizeInt8(tensors.get('q')!, tensors.get('scale')!);
}
