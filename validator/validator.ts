// The validator loop: hold one stage of the model in step with the run (as a replica does, without
// voting on versions), take the orchestrator's sampled checks of other miners' work at the round
// its weights are at, re-run the work with the engine, compare, and sign the verdict.
// docs/VALIDATION.md explains the sampling and the tolerances.
import { quantizedMerge } from '../orchestrator-client/blobs.ts';
import { type CheckedItem, type LeaseRequest, type LeaseResponse, type Task, type ValidateTask, verdictMessage } from '../orchestrator-client/protocol.ts';
import { BadBlobError, ChangedBlobError, decodeBlob, decodeWire, encodeWire } from '../worker/miner/blobs.ts';
import { Replica, type ReplicaOptions, type StageState, fromBlob } from '../worker/miner/replica.ts';
import { type Findings, judge, relativeError } from './compare.ts';

export type ValidatorOptions = ReplicaOptions;

export class Validator extends Replica {
  protected readonly role = 'validator';
  /** The state hash at the version it was computed for (hashing the stage costs a pass over it). */
  private digest: { version: number; hash: string } | null = null;

  protected next(req: LeaseRequest): Promise<LeaseResponse> {
    return this.opts.client.nextCheck(req);
  }

  protected async handle(s: StageState, task: Task): Promise<void> {
    switch (task.kind) {
      case 'validate':
        return this.validate(s, task);
      case 'apply':
        await this.applyStep(s, task);
        this.emit({ type: 'applied', round: task.round, version: s.version, lr: task.lr, clip: task.clip });
        return;
      case 'sync':
        return this.sync(s, task);
      default:
        throw new Error(`a validator was handed a miner's ${task.kind} task`);
    }
  }

  private stateHash(s: StageState): string {
    if (this.digest?.version !== s.version) this.digest = { version: s.version, hash: this.sharedStateDigest(s) };
    return this.digest.hash;
  }

  private async validate(s: StageState, task: ValidateTask): Promise<void> {
    const t0 = this.now();
    this.status('validate');
    let outcome: 'pass' | 'fail' | 'abstain';
    let findings: Findings;
    if (task.round !== s.version || (task.hash !== null && this.stateHash(s) !== task.hash)) {
      // Not the weights the miner used: judging would wrong it. Reload and let the check wait.
      outcome = 'abstain';
      findings = { error: 0, problems: [`this validator's stage state is not the agreed one at version ${task.round}`] };
    } else {
      try {
        findings = task.target === 'item' ? await this.checkItem(s, task) : await this.checkShare(s, task);
      } catch (e) {
        if (e instanceof ChangedBlobError) {
          // Not the bytes that were accepted (and used): nothing to judge. The orchestrator checks the
          // blob, blames its producer and voids the check; the lease lapses if it finds nothing.
          await this.refuse(e);
          return;
        }
        if (!(e instanceof BadBlobError)) throw e;
        findings = { error: 1e30, problems: [`its upload is unusable: ${e.message}`] };
      }
      outcome = judge(findings, task.tolerance, task.loss_tolerance);
    }
    const error = Math.min(1e30, findings.error);
    const reason =
      outcome === 'pass'
        ? ''
        : findings.problems.length > 0
          ? findings.problems.join('; ')
          : `relative error ${error.toExponential(2)} (tolerance ${task.tolerance})${findings.lossDiff !== undefined ? `, loss off by ${findings.lossDiff.toExponential(2)} (tolerance ${task.loss_tolerance})` : ''}`;
    const signature = this.opts.client.sign(verdictMessage({ run_id: task.run_id, check: task.check, miner: task.miner, round: task.round, stage: task.stage, outcome, error, loss_diff: findings.lossDiff }));
    await this.opts.client.verdict({ lease_id: task.id, outcome, error, ...(findings.lossDiff !== undefined ? { loss_diff: findings.lossDiff } : {}), reason: reason.slice(0, 2000), signature });
    this.items++;
    this.emit({ type: 'verdict', check: task.check, round: task.round, miner: task.miner, target: task.target, outcome, error, ms: this.now() - t0 });
  }

  /** One work item: its output (through the run's codec, as the miner's went) and its loss. */
  private async checkItem(s: StageState, task: ValidateTask): Promise<Findings> {
    const item = task.items[0];
    // The parameter gradients are not judged here: they go into the gradient sum, which a validator never shares.
    const mine = await this.rerun(s, item, s.gradSum);
    const findings: Findings = { error: 0, problems: [] };
    const { kind, blob } = item.output;
    if (kind !== 'none') {
      if (!blob) return { error: 1e30, problems: ['the check names an output kind but no blob'] };
      if (!mine.output) return { error: 1e30, problems: [`this stage produces no ${kind}`] };
      const theirs = decodeWire(blob.key, await this.fetch(blob), kind, s.dims);
      // The miner's output went through the codec: so does the re-run, or quantisation alone would differ.
      const ours = decodeWire(blob.key, encodeWire(kind, s.dims, mine.output), kind, s.dims);
      findings.error = relativeError(ours, theirs);
    }
    if (item.loss !== null) {
      if (mine.loss === undefined) findings.problems.push('a loss was reported where the stage computes none');
      else findings.lossDiff = Math.abs(mine.loss - item.loss);
    }
    return findings;
  }

  /** A share: the gradient sum of every item the miner covered, against the slices it uploaded. */
  private async checkShare(s: StageState, task: ValidateTask): Promise<Findings> {
    const sum = new Float32Array(s.layout.size);
    for (const item of task.items) await this.rerun(s, item, sum);
    const q8 = quantizedMerge(s.spec);
    let error = 0;
    for (const { range, blob } of task.shares) {
      const dims = { ...s.dims, length: range[1] - range[0] };
      const theirs = fromBlob(decodeBlob(blob.key, await this.fetch(blob), q8 ? 'share_q8' : 'share', dims).tensors);
      error = Math.max(error, relativeError(sum.subarray(range[0], range[1]), theirs));
    }
    return { error, problems: [] };
  }

  /** Recomputes an item with this stage's weights: its output (activation or input gradient) and loss; its parameter gradients are added into gradSum. */
  private async rerun(s: StageState, item: CheckedItem, gradSum: Float32Array): Promise<{ output?: Float32Array; loss?: number }> {
    const tokens = s.stage.needsTokens ? this.rows(item.sample, s.config.seq_len).inputs : undefined;
    if (!s.last && item.direction === 'forward') {
      const r = await s.stage.forward(s.params, await this.stageInput(s, item.input), undefined, tokens);
      return { output: r.output as Float32Array };
    }
    if (s.last && item.direction !== 'backward') {
      const sample = this.rows(item.sample, s.config.seq_len);
      const b = await s.stage.backward(s.params, await this.stageInput(s, item.input), { targets: sample.targets, tokens: s.stage.needsTokens ? sample.inputs : undefined }, gradSum);
      return { output: b.gradInput as Float32Array | undefined, loss: b.loss };
    }
    if (item.input.kind !== 'blob' || !item.forward_input) throw new Error(`check of a ${item.direction} item without its output gradient and stage input`);
    const gradOutput = await this.downloadWire(item.input, 'gradient', s.dims);
    const b = await s.stage.backward(s.params, await this.stageInput(s, item.forward_input), { gradOutput, tokens }, gradSum);
    return { output: b.gradInput as Float32Array | undefined };
  }
}
