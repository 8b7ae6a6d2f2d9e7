// The miner loop: register, hold one stage of the model, and do what the orchestrator asks —
// forward and backward passes of samples, the round's share and reduce steps, applying each
// round's optimizer step — until the run ends or the host stops it. The stage, the loop and the
// events are a Replica's (replica.ts), shared with validators, so the same loop runs under
// `tah miner`, the local swarm and the desktop app's utility process.
import { dequantizeInt8, quantizeInt8, quantizedMerge } from '../../orchestrator-client/blobs.ts';
import type { AppliedRequest, ApplyTask, BlobRef, CompleteRequest, Lease, LeaseRequest, LeaseResponse, LocalTask, ReduceTask, ShareTask, StoreTask, SyncTask, Task, Upload, Uploaded } from '../../orchestrator-client/protocol.ts';
import { pseudoGradient } from '../optim/outer.ts';
import { BadBlobError, ChangedBlobError, encodeBlob, encodeWire } from './blobs.ts';
import { AdversaryState, type Faults, perturb, spoilReduction } from './faults.ts';
import { addInto, meanInto, scaleInPlace, sumOfSquares } from './flat.ts';
import { Replica, type ReplicaOptions, type StageState, fromBlob } from './replica.ts';

export type { MinerEvent, MinerState } from './replica.ts';

export interface MinerOptions extends ReplicaOptions {
  /** Deliberate misbehaviour, for tests (faults.ts). */
  faults?: Faults;
}

export class Miner extends Replica {
  protected readonly role = 'miner';
  /** The skew and share faults strike once. */
  private skewed = false;
  private blownUp = false;
  private poisoned = false;
  private readonly adversary: AdversaryState | null;

  constructor(protected override readonly opts: MinerOptions) {
    super(opts);
    this.adversary = opts.faults?.adversary ? new AdversaryState(opts.faults.adversary) : null;
  }

  protected next(req: LeaseRequest): Promise<LeaseResponse> {
    return this.opts.client.lease(req);
  }

  protected async handle(s: StageState, task: Task): Promise<void> {
    switch (task.kind) {
      case 'work':
        return this.guarded(task.id, () => this.work(s, task));
      case 'share':
        return this.share(s, task);
      case 'local':
        return this.local(s, task);
      case 'reduce':
        return this.guarded(task.id, () => this.reduce(s, task));
      case 'apply':
        return this.apply(s, task);
      case 'sync':
        return this.sync(s, task);
      case 'store':
        return this.store(s, task);
      case 'validate':
        throw new Error('a miner was handed a validator\'s check');
    }
  }

  protected override beforeSync(s: StageState, task: SyncTask): void {
    // A rollback to before the poisoned round makes the bad update history: a replica that had not
    // yet applied it (a straggler) must not apply it in the replay, or the replicas would disagree.
    const poison = this.opts.faults?.poisonAfter;
    if (poison !== undefined && task.rounds <= poison && s.version > task.rounds) this.poisoned = true;
  }

  /** Runs a leased task; an unusable input is reported (and the work re-issued), anything else hands the lease back. */
  private async guarded(leaseId: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (e instanceof BadBlobError) {
        this.emit({ type: 'error', message: `refused another miner's upload: ${e.message}`, recoverable: true });
        await this.opts.client.reject(leaseId, e.message, { key: e.key, ...(e instanceof ChangedBlobError ? { sha256: e.found } : {}) }).catch(() => {});
        return;
      }
      await this.opts.client.release(leaseId).catch(() => {});
      throw e;
    }
  }

  /** Completes a task, leasing the next one in the same request. */
  private async report(completion: CompleteRequest): Promise<void> {
    this.prefetched = (await this.opts.client.complete({ ...completion, next: this.leaseRequest() })).next ?? null;
  }

  // ---- sample work ----

  private async work(s: StageState, lease: Lease): Promise<void> {
    const t0 = this.now();
    this.status(lease.direction);
    const tokens = lease.sample.rows * s.config.seq_len;
    // The orchestrator restarted the round (a cheat's outputs reached others): what the sum holds is void.
    const tag = `${lease.round}/${lease.generation}`;
    if (s.sumTag !== tag) {
      this.clearSum(s);
      s.sumTag = tag;
    }
    let output: Float32Array | undefined;
    let loss: number | undefined;
    let input: Float32Array | BigInt64Array;
    if (lease.direction === 'forward' && !s.last) {
      input = await this.stageInput(s, lease.input);
      const r = await s.stage.forward(s.params, input, undefined, this.tokenIds(s, lease.sample), s.spare.pop());
      s.kept.set(lease.sample_id, { input, saved: r.saved });
      output = r.output as Float32Array;
    } else if (s.last && lease.direction !== 'backward') {
      // The last stage: forward, loss and backward at once (a redo sends nothing down).
      input = await this.stageInput(s, lease.input);
      const sample = this.rows(lease.sample, s.config.seq_len);
      const b = await s.stage.backward(s.params, input, { targets: sample.targets, tokens: s.stage.needsTokens ? sample.inputs : undefined }, s.gradSum);
      s.samples += 1;
      loss = b.loss;
      if (lease.direction === 'forward') output = b.gradInput as Float32Array | undefined;
    } else {
      // Backward (or its redo): the gradient of this stage's output, and the forward's activations.
      const gradOutput = await this.downloadWire(lease.input as BlobRef, 'gradient', s.dims);
      // This miner's own forward left the input and its activations here; otherwise (another
      // miner's forward, or a redo) the input is fetched again and the forward recomputed.
      const own = lease.direction === 'backward' ? s.kept.get(lease.sample_id) : undefined;
      input = own?.input ?? (await this.stageInput(s, lease.forward_input!));
      const b = await s.stage.backward(s.params, input, { gradOutput, tokens: this.tokenIds(s, lease.sample) }, s.gradSum, own?.saved);
      s.kept.delete(lease.sample_id);
      // Two spare sets cover a miner's usual two samples in flight; more would only hold memory.
      if (own?.saved && s.spare.length < 2) s.spare.push(own.saved);
      s.samples += 1;
      if (lease.direction === 'backward') output = b.gradInput as Float32Array | undefined;
    }
    let uploaded: Uploaded | undefined;
    if (lease.output.kind !== 'none') {
      if (!output) throw new Error(`lease ${lease.id} wants a ${lease.output.kind} this stage does not produce`);
      const kind = lease.output.kind;
      if (this.opts.faults?.perturb) perturb(output, this.opts.faults.perturb);
      const adversary = this.adversary;
      const blob = adversary ? adversary.blob(encodeWire(kind, s.dims, adversary.output(kind, output, input))) : encodeWire(kind, s.dims, output);
      uploaded = await this.put(lease.output, blob);
      this.wireBytes += blob.length;
    }
    // Busy until here: the report's answer may wait for the next task.
    const ms = this.now() - t0;
    await this.report({ lease_id: lease.id, ...(uploaded ? { output: uploaded } : {}), ...(loss !== undefined && lease.direction === 'forward' ? { loss } : {}) });
    if (loss !== undefined && lease.direction === 'forward') this.emit({ type: 'loss', round: lease.round, sample_id: lease.sample_id, loss });
    this.items++;
    // Tokens through this stage: counted once per sample, on its forward pass.
    if (lease.direction === 'forward') this.tokens += tokens;
    this.emit({ type: 'work', direction: lease.direction, round: lease.round, sample_id: lease.sample_id, ms, tokens });
  }

  // ---- the round's end ----

  private async share(s: StageState, task: ShareTask): Promise<void> {
    this.status('share');
    const blowUp = this.opts.faults?.blowUpShare;
    if (blowUp !== undefined && task.round >= blowUp && !this.blownUp) {
      this.blownUp = true;
      for (let i = 0; i < s.gradSum.length; i++) s.gradSum[i] *= 1e4;
    }
    // Local mode shares the pseudo-gradient (scratch is free between rounds).
    const computed = task.what === 'delta' ? pseudoGradient(s.anchor, s.params, s.scratch) : s.gradSum;
    if (this.opts.faults?.perturb) perturb(computed, this.opts.faults.perturb);
    const buffer = this.adversary ? this.adversary.share(computed) : computed;
    const outputs = [];
    const q8 = quantizedMerge(s.spec);
    for (const { range, upload } of task.slices) {
      const part = buffer.subarray(range[0], range[1]);
      const blob = q8 ? encodeBlob('share_q8', { ...s.dims, length: part.length }, quantizeInt8(part)) : encodeBlob('share', { ...s.dims, length: part.length }, { grad: part });
      outputs.push(await this.put(upload, blob));
      this.own.set(upload.key, blob);
    }
    await this.report({ lease_id: task.id, outputs });
  }

  private async reduce(s: StageState, task: ReduceTask): Promise<void> {
    this.status('reduce');
    const dims = { ...s.dims, length: task.range[1] - task.range[0] };
    const sum = new Float32Array(dims.length);
    // In the task's order, in float32: every replica that reduces this slice gets the same bits.
    const q8 = quantizedMerge(s.spec);
    for (const input of task.inputs) addInto(sum, fromBlob(await this.download(input, q8 ? 'share_q8' : 'share', dims)));
    scaleInPlace(sum, task.scale);
    if (this.opts.faults?.reduce) spoilReduction(sum, this.opts.faults.reduce);
    const quantized = q8 ? quantizeInt8(sum) : null;
    const sumsq = sumOfSquares(quantized ? dequantizeInt8(quantized.q, quantized.scale) : sum);
    const blob = quantized ? encodeBlob('reduced_q8', dims, quantized) : encodeBlob('reduced', dims, { grad: sum });
    const output = await this.put(task.upload, blob);
    this.own.set(task.upload.key, blob);
    // The digest of the blob's data: the float32 sum itself, or its int8 blocks and scales.
    await this.report({ lease_id: task.id, output, sumsq, digest: this.dataDigest(blob)! });
  }

  /** Local mode: an inner AdamW step on this replica's own mean gradient, clipped by its own norm. */
  private async local(s: StageState, task: LocalTask): Promise<void> {
    this.status('local');
    const n = Math.max(1, s.samples);
    const grad = s.scratch;
    const sumsq = meanInto(grad, s.gradSum, n);
    const clip = task.clip_norm > 0 ? Math.min(1, task.clip_norm / (Math.sqrt(sumsq) + 1e-6)) : 1;
    s.innerSteps += 1;
    s.optimizer.step(s, grad, s, s.innerSteps, task.lr, clip);
    this.clearSum(s);
    await this.report({ lease_id: task.id });
  }

  private async apply(s: StageState, task: ApplyTask): Promise<void> {
    this.status('apply');
    if (task.step === 'none') {
      await this.applyStep(s, task);
      this.emit({ type: 'applied', round: task.round, version: s.version, lr: task.lr, clip: task.clip });
      return;
    }
    const bad = await this.applyStep(s, task);
    if (this.opts.faults?.skewAfter === task.round && !this.skewed) {
      this.skewed = true;
      s.params[0] += 1e-3;
    }
    if (this.opts.faults?.poisonAfter === task.round && !this.poisoned) {
      this.poisoned = true;
      for (let i = 0; i < s.params.length; i++) s.params[i] *= 20;
    }
    // Every replica reports its state's hash: one whose state is not the stage's is resynchronised.
    const report: AppliedRequest = { round: task.round, hash: this.sharedStateDigest(s), ...(bad.length ? { bad_blobs: bad } : {}) };
    if (task.snapshot) report.snapshot = await this.storeState(s, task.snapshot);
    this.prefetched = (await this.opts.client.applied({ ...report, next: this.leaseRequest() })).next ?? null;
    this.emit({ type: 'applied', round: task.round, version: s.version, lr: task.lr, clip: task.clip });
  }

  /** Stores the state this replica holds, where the one asked first did not (see StoreTask). */
  private async store(s: StageState, task: StoreTask): Promise<void> {
    if (s.version !== task.rounds) throw new Error(`asked to store the state after ${task.rounds} rounds, but this replica holds ${s.version}`);
    const snapshot = await this.storeState(s, task.snapshot);
    this.prefetched = (await this.opts.client.applied({ round: task.rounds - 1, hash: this.sharedStateDigest(s), snapshot, next: this.leaseRequest() })).next ?? null;
  }

  /** Uploads the stage's state (weights, moments, step) as a snapshot blob. */
  private async storeState(s: StageState, upload: Upload): Promise<Uploaded> {
    this.status('store');
    if (this.opts.faults?.storeDelayMs) await this.sleep(this.opts.faults.storeDelayMs);
    const local = s.spec.mode === 'local';
    const tensors: Record<string, Float32Array> = local ? { params: s.params, m: s.m, v: s.v, u: s.u } : { params: s.params, m: s.m, v: s.v };
    const blob = encodeBlob(local ? 'outer_snapshot' : 'snapshot', { ...s.dims, length: s.layout.size }, tensors, { rounds: String(s.version), inner_steps: String(s.innerSteps) });
    return this.put(upload, blob);
  }

}
