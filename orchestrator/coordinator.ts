// The orchestrator's logic, free of HTTP: runs, registration and stage assignment, work leases
// and their completion, pathways, heartbeats. Its world comes in as arguments (database, blob
// store, clock), and every state change goes through the database, so a restart loses nothing.
import { randomInt } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { type BlobDims, type BlobKind, MAX_BLOB_HEADER_BYTES, blobBytes, blobDataDigest, blobTensors, checkBlobHeader, quantizedMerge, runBlobDims } from '../orchestrator-client/blobs.ts';
import {
  type AppliedRequest,
  type Assignment,
  type Attribution,
  type BlobRef,
  type CompleteRequest,
  type Direction,
  type Hardware,
  type Lease,
  type LeaseRequest,
  type LeaseResponse,
  type Pathway,
  type RegisterRequest,
  type Run,
  type RunSpec,
  RunSpecSchema,
  type RollbackResponse,
  type RunStatus,
  type SampleRef,
  type StoredVersion,
  type VersionsResponse,
  type Task,
  type Flag,
  type Upload,
  type Uploaded,
  type CheckedItem,
  type Epoch,
  type Dashboard,
  type EpochsResponse,
  type MinerRewards,
  type Reward,
  type ValidateTask,
  type VerdictRequest,
  verdictMessage,
} from '../orchestrator-client/protocol.ts';
import { verifyMessage } from '../orchestrator-client/signing.ts';
import { type ModelConfig, runModelConfig } from '../worker/model/config.ts';
import { ParamLayout } from '../worker/model/params.ts';
import { clipCoefficient, fromOptimizerSpec, learningRate } from '../worker/optim/adamw.ts';
import { chooseMove, chooseStage, type StageLoad, stageFit } from './assignment.ts';
import { isPostgres } from './db/migrations.ts';
import type { Database, ItemKind, NewWorkItem, ParticipantRow, WorkItemRow } from './db/schema.ts';
import { newLeaseId } from './db/work-items.ts';
import { acceptedBlob, blobRefs, changedSinceAccepted, forgetAccepted, recordAccepted } from './accepted-blobs.ts';
import { blobSha256 } from '../orchestrator-client/transfer.ts';
import { writeRefusal } from './write-grants.ts';
import { anyAvailableItem, pickAvailableItem, withTransaction } from './db/open.ts';
import { type PathwaySample, clasp } from './clasp.ts';
import { type WeightSetter, toU16Weights } from './chain.ts';
import { type EpochWork, checkProbability, scoreEpoch, workCost } from './rewards.ts';
import { type GuardVerdict, type RoundFigures, judgeRound } from './guard.ts';
import { ApiError } from './http.ts';
import { checkRunSpec, sliceCount, splitRange } from './runs.ts';
import { type BlobStore, MultipartError } from './storage/blob-store.ts';

/** Decides whether a hotkey may take part in a run (the seam for a chain-backed metagraph). */
export interface MetagraphAdmission {
  isRegistered(netuid: number, hotkey: string): Promise<boolean>;
}

export interface CoordinatorOptions {
  db: Kysely<Database>;
  store: BlobStore;
  now?: () => number;
  metagraph?: MetagraphAdmission;
  /** How long a miner waits before asking again when there is no work. */
  idleRetryMs?: number;
  /** How often miners should send heartbeats. */
  heartbeatIntervalS?: number;
  /** Settles closed epochs on a chain (runs admitted by metagraph); none: the ledger only. */
  weights?: WeightSetter;
}

/** A checked item as stored: blob keys (null: the sample's rows), turned into URLs when leased. */
interface CheckItemDetail {
  sample_id: string;
  direction: 'forward' | 'backward' | 'redo';
  input: string | null;
  forward_input?: string | null;
  output: { kind: 'activation' | 'gradient' | 'none'; key: string | null };
  loss: number | null;
}
interface CheckDetail {
  items: CheckItemDetail[];
  shares?: { range: [number, number]; key: string }[];
}

type Item = WorkItemRow;
/** A share item: the slices of the stage buffer and the key each one goes to. */
interface ShareDetail {
  slices: [number, number][];
  keys: string[];
  /** What is shared: the gradient sum (exact mode) or the pseudo-gradient (local mode). */
  what?: 'grad' | 'delta';
  /** Filled in at completion: the size of each uploaded slice. */
  bytes?: number[];
}
/**
 * A reduce item: one copy of one slice's reduction (its range, the shares to sum in this order,
 * and the scale). Each slice is reduced by `quorum` different miners whose results must agree.
 */
interface ReduceDetail {
  range: [number, number];
  scale: number;
  inputs: { hotkey: string; key: string; bytes: number }[];
  slice: number;
  copy: number;
  /** How many different reducers must agree: 2, or 1 when nobody else can reduce. */
  quorum: number;
  /** The stage's share attempt the inputs belong to (older rows: read from the item id). */
  attempt?: number;
  /** Filled in at completion: tensorDigest of the result. */
  digest?: string;
}

/**
 * Whether the state after `rounds` rounds is stored: every snapshot_every rounds and after the last
 * one; in local mode only after merges (replicas differ between them), about as often.
 */
function snapshotDue(spec: RunSpec, rounds: number): boolean {
  if (rounds === spec.rounds) return true;
  if (spec.mode === 'exact') return rounds % spec.snapshot_every === 0;
  const merges = rounds / spec.local.steps;
  return Number.isInteger(merges) && merges % Math.max(1, Math.round(spec.snapshot_every / spec.local.steps)) === 0;
}

/** The blobs a merge moves: float32, or int8 blocks in local mode with quantize 'int8'. */
function mergeKinds(spec: RunSpec): { share: BlobKind; reduced: BlobKind } {
  return quantizedMerge(spec) ? { share: 'share_q8', reduced: 'reduced_q8' } : { share: 'share', reduced: 'reduced' };
}

/** Stored states hold the AdamW moments, and in local mode the outer momentum too. */
export function snapshotKind(spec: RunSpec): 'snapshot' | 'outer_snapshot' {
  return spec.mode === 'local' ? 'outer_snapshot' : 'snapshot';
}

/** Local mode: whether round `r` ends with a merge (every `local.steps` rounds, and the last one). */
export function isMergeRound(spec: RunSpec, r: number): boolean {
  return (r + 1) % spec.local.steps === 0 || (spec.rounds !== undefined && r + 1 === spec.rounds);
}

/** The value more keys map to than any other; null when there is none (empty, or a tie). */
function majority(reports: Record<string, string>): string | null {
  const counts = new Map<string, number>();
  for (const x of Object.values(reports)) counts.set(x, (counts.get(x) ?? 0) + 1);
  const ranked = [...counts].sort((a, b) => b[1] - a[1]);
  return ranked.length > 0 && (ranked.length === 1 || ranked[0][1] > ranked[1][1]) ? ranked[0][0] : null;
}

/** `pool` in a random order. */
function shuffled<T>(pool: readonly T[]): T[] {
  const out = [...pool];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export class Coordinator {
  private readonly db: Kysely<Database>;
  private readonly store: BlobStore;
  private readonly now: () => number;

  /** When this process started: nobody can have sent it a heartbeat before. */
  private readonly startedAt: number;

  constructor(private readonly opts: CoordinatorOptions) {
    this.db = opts.db;
    this.store = opts.store;
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
  }

  // ---- runs ----

  async createRun(value: unknown): Promise<Run> {
    let spec: RunSpec;
    try {
      spec = checkRunSpec(value).spec;
    } catch (e) {
      throw new ApiError('bad_request', (e as Error).message.slice(0, 600));
    }
    const exists = await this.db.selectFrom('runs').select('id').where('id', '=', spec.id).executeTakeFirst();
    if (exists) throw new ApiError('conflict', `run ${spec.id} already exists`);
    const now = this.now();
    await withTransaction(this.db, async (trx) => {
      await trx.insertInto('runs').values({ id: spec.id, spec_json: JSON.stringify(spec), created_at: now, status: 'active' }).execute();
      await this.enqueueRound(trx, spec, 0);
      await this.log(trx, 'run_created', null, spec.id, { stages: spec.stages.length });
    });
    return this.getRun(spec.id);
  }

  /** A run's spec never changes once created, so it is read once per process. */
  private readonly specs = new Map<string, RunSpec>();

  private async spec(runId: string): Promise<RunSpec> {
    const known = this.specs.get(runId);
    if (known) return known;
    const row = await this.db.selectFrom('runs').select('spec_json').where('id', '=', runId).executeTakeFirst();
    if (!row) throw new ApiError('not_found', `no run ${runId}`);
    const spec = RunSpecSchema.parse(JSON.parse(row.spec_json));
    this.specs.set(runId, spec);
    return spec;
  }

  async getRun(runId: string): Promise<Run> {
    const spec = await this.spec(runId);
    const row = await this.db.selectFrom('runs').select(['created_at', 'status']).where('id', '=', runId).executeTakeFirstOrThrow();
    const loads = await this.stageLoads(runId, spec.stages.length);
    return {
      ...spec,
      created_at: Number(row.created_at),
      stage_count: spec.stages.length,
      miners_per_stage: loads.map((l) => l.miners),
      status: row.status as Run['status'],
      rounds_done: await this.roundsDone(runId),
    };
  }

  /** The status of every active run (for metrics). */
  async activeRunStatuses(): Promise<RunStatus[]> {
    const runs = await this.db.selectFrom('runs').select('id').where('status', '=', 'active').execute();
    return Promise.all(runs.map((r) => this.runStatus(r.id)));
  }

  /** Round-by-round progress, the miners and their versions, the stored stage states. */
  async runStatus(runId: string): Promise<RunStatus> {
    const spec = await this.spec(runId);
    const run = await this.db.selectFrom('runs').select('status').where('id', '=', runId).executeTakeFirstOrThrow();
    const rounds = await this.db.selectFrom('rounds').select(['round', 'reduced_at']).where('run_id', '=', runId).where('status', '=', 'reduced').orderBy('round').execute();
    const losses = await this.db
      .selectFrom('samples')
      .select(['round', (eb) => eb.fn.avg<number>('loss').as('loss')])
      .where('run_id', '=', runId)
      .groupBy('round')
      .execute();
    const lossOf = new Map(losses.map((l) => [Number(l.round), l.loss === null ? null : Number(l.loss)]));
    const miners = await this.db.selectFrom('participants').select(['hotkey', 'stage', 'version', 'status', 'last_seen']).where('run_id', '=', runId).where('role', '=', 'miner').orderBy('hotkey').execute();
    const snaps = await this.db.selectFrom('snapshots').select(['stage', 'rounds', 'key', 'bytes']).where('run_id', '=', runId).where('status', '=', 'done').orderBy('stage').orderBy('rounds', 'desc').execute();
    const newest = spec.stages.map((_, s) => snaps.find((x) => x.stage === s)).filter((x) => x !== undefined);
    const tokens = spec.samples_per_round * spec.rows_per_sample * this.model(spec).config.seq_len;
    return {
      run_id: runId,
      status: run.status as RunStatus['status'],
      rounds: spec.rounds ?? null,
      rounds_done: rounds.length,
      losses: rounds.map((r) => ({ round: Number(r.round), loss: lossOf.get(Number(r.round)) ?? null, tokens, reduced_at: Number(r.reduced_at) })),
      miners: miners.map((m) => ({ hotkey: m.hotkey, stage: m.stage, version: Number(m.version), status: m.status, last_seen: Number(m.last_seen) })),
      snapshots: newest.map((x) => ({ stage: x.stage, rounds: Number(x.rounds), key: x.key, bytes: Number(x.bytes) })),
    };
  }

  /** The run at a glance, for its public page; the newest active run (else the newest) without an id. */
  async dashboard(runId?: string): Promise<Dashboard> {
    const id = runId ?? (await this.newestRunId());
    const status = await this.runStatus(id);
    const spec = await this.spec(id);
    const { config, stageParams } = this.model(spec);
    const now = this.now();
    // Throughput over the newest rounds (up to WINDOW of them): tokens per second of wall time.
    const WINDOW = 5;
    const recent = status.losses.slice(-(WINDOW + 1));
    const span = recent.length > 1 ? (recent.at(-1)!.reduced_at - recent[0].reduced_at) / 1000 : 0;
    const tokensPerRound = spec.samples_per_round * spec.rows_per_sample * config.seq_len;
    const rate = span > 0 ? ((recent.length - 1) * tokensPerRound) / span : 0;
    const merges = await this.db
      .selectFrom('stage_rounds')
      .select(['stage', (eb) => eb.fn.countAll<number>().as('n')])
      .where('run_id', '=', id)
      .where('phase', '=', 'done')
      .groupBy('stage')
      .execute();
    const loads = await this.stageLoads(id, spec.stages.length);
    // A stage's own rate: its forward passes completed in the same window (a lagging stage shows).
    const from = recent.length > 1 ? recent[0].reduced_at : now - 60_000;
    const to = recent.length > 1 ? recent.at(-1)!.reduced_at : now;
    const forwards = await this.db
      .selectFrom('work_items')
      .select(['stage', (eb) => eb.fn.countAll<number>().as('n')])
      .where('run_id', '=', id)
      .where('direction', '=', 'forward')
      .where('status', '=', 'done')
      .where('completed_at', '>', from)
      .where('completed_at', '<=', to)
      .groupBy('stage')
      .execute();
    const seconds = Math.max(1, (to - from) / 1000);
    const tokensPerSample = spec.rows_per_sample * config.seq_len;
    const validators = await this.db.selectFrom('participants').select((eb) => eb.fn.countAll<number>().as('n')).where('run_id', '=', id).where('role', '=', 'validator').where('status', '=', 'active').executeTakeFirstOrThrow();
    const checks = await this.db.selectFrom('checks').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).where('run_id', '=', id).groupBy('status').execute();
    const checkCount = (...kinds: string[]) => checks.filter((c) => kinds.includes(c.status)).reduce((a, c) => a + Number(c.n), 0);
    const flags = await this.db.selectFrom('flags').select((eb) => eb.fn.countAll<number>().as('n')).where('run_id', '=', id).executeTakeFirstOrThrow();
    // The newest closed epoch's largest shares only (the page is polled: no whole-ledger read).
    const newest = await this.db.selectFrom('epochs').select('epoch').where('run_id', '=', id).orderBy('epoch', 'desc').executeTakeFirst();
    const top = newest
      ? await this.db.selectFrom('rewards').select(['hotkey', 'score', 'share']).where('run_id', '=', id).where('epoch', '=', newest.epoch).where('score', '>', 0).orderBy('share', 'desc').orderBy('hotkey').limit(5).execute()
      : [];
    return {
      run_id: id,
      preset: spec.preset,
      status: status.status,
      rounds: status.rounds,
      rounds_done: status.rounds_done,
      epoch_rounds: spec.validation.epoch_rounds,
      layers: config.n_layers,
      stages: spec.stages.map((layers, stage) => ({
        stage,
        layers,
        params: stageParams[stage],
        miners: loads[stage].miners,
        tokens_per_s: (Number(forwards.find((f) => f.stage === stage)?.n ?? 0) * tokensPerSample) / seconds,
        merges: Number(merges.find((m) => m.stage === stage)?.n ?? 0),
      })),
      losses: status.losses,
      tokens: status.losses.reduce((a, l) => a + l.tokens, 0),
      tokens_per_s: rate,
      validators: Number(validators.n),
      verdicts: { passed: checkCount('passed'), failed: checkCount('failed'), pending: checkCount('pending', 'leased') },
      flags: Number(flags.n),
      top: top.map((t) => ({ epoch: newest!.epoch, hotkey: t.hotkey, score: Number(t.score), share: Number(t.share) })),
      updated_at: now,
    };
  }

  private async newestRunId(): Promise<string> {
    const row =
      (await this.db.selectFrom('runs').select('id').where('status', '=', 'active').orderBy('created_at', 'desc').executeTakeFirst()) ??
      (await this.db.selectFrom('runs').select('id').orderBy('created_at', 'desc').executeTakeFirst());
    if (!row) throw new ApiError('not_found', 'no run yet: the operator has not started one');
    return row.id;
  }

  private async defaultRunId(): Promise<string> {
    const row = await this.db.selectFrom('runs').select('id').where('status', '=', 'active').orderBy('created_at', 'desc').executeTakeFirst();
    if (!row) throw new ApiError('not_found', 'no active run: the operator has not started one yet');
    return row.id;
  }

  /** Samples of a round, their stage-0 forward items, and the round's bookkeeping rows. */
  private async enqueueRound(trx: Transaction<Database>, spec: RunSpec, round: number, restart?: { attempts: number[] }): Promise<void> {
    const now = this.now();
    const ids = Array.from({ length: spec.samples_per_round }, (_, k) => k);
    // In batches: one statement per row made a round of thousands of samples block the server.
    for (let at = 0; at < ids.length; at += 500) {
      const batch = ids.slice(at, at + 500);
      await trx
        .insertInto('samples')
        .values(batch.map((k) => ({ run_id: spec.id, id: `r${round}-s${k}`, round, seed: spec.seed, shard: 0, idx: k, loss: null, done: 0, created_at: now })))
        .execute();
      await trx.insertInto('work_items').values(batch.map((k) => this.itemRow(spec.id, `r${round}-s${k}`, 0, 'forward', null, null, round))).execute();
    }
    if (!restart) await trx.insertInto('rounds').values({ run_id: spec.id, round, status: 'compute', created_at: now, reduced_at: null, grad_sumsq: null, clip: null, lr: null }).execute();
    // A restarted round's merge blobs get new keys (the attempt is in them): a check may still read the old ones.
    await trx.insertInto('stage_rounds').values(spec.stages.map((_, stage) => ({ run_id: spec.id, round, stage, phase: 'compute' as const, sumsq: null, attempt: restart ? restart.attempts[stage] + 1 : 0 }))).execute();
  }

  /**
   * Starts an open round again from its first forward passes: what a cheat sent on has already
   * been computed on by others, and every sum it reached is tainted. Every sample is queued anew
   * under the next generation; a miner's first lease of it tells it to drop its sum.
   */
  private async restartRound(trx: Transaction<Database>, spec: RunSpec, round: number, why: Record<string, unknown>): Promise<string[]> {
    const row = await trx.selectFrom('rounds').select(['generation', 'status']).where('run_id', '=', spec.id).where('round', '=', round).executeTakeFirst();
    if (!row || row.status !== 'compute') return [];
    const stages = await trx.selectFrom('stage_rounds').select(['stage', 'attempt']).where('run_id', '=', spec.id).where('round', '=', round).orderBy('stage').execute();
    const items = await trx.selectFrom('work_items').select(['output_key', 'detail_json', 'direction']).where('run_id', '=', spec.id).where('round', '=', round).execute();
    const spent = items.flatMap((i) => (i.direction === 'share' ? (JSON.parse(i.detail_json) as ShareDetail).keys : i.output_key ? [i.output_key] : []));
    for (const table of ['work_items', 'samples', 'stage_rounds'] as const) await trx.deleteFrom(table).where('run_id', '=', spec.id).where('round', '=', round).execute();
    const generation = Number(row.generation) + 1;
    await trx.updateTable('rounds').set({ generation }).where('run_id', '=', spec.id).where('round', '=', round).execute();
    this.generations.set(`${spec.id}/${round}`, generation);
    await this.enqueueRound(trx, spec, round, { attempts: stages.map((x) => Number(x.attempt)) });
    await this.log(trx, 'round_restarted', null, spec.id, { round, generation, ...why });
    return spent;
  }

  /** Each open round's generation (bumped by restartRound), cached: every work lease carries it. */
  private readonly generations = new Map<string, number>();
  private async generation(runId: string, round: number): Promise<number> {
    const key = `${runId}/${round}`;
    const known = this.generations.get(key);
    if (known !== undefined) return known;
    const row = await this.db.selectFrom('rounds').select('generation').where('run_id', '=', runId).where('round', '=', round).executeTakeFirst();
    const g = Number(row?.generation ?? 0);
    this.generations.set(key, g);
    return g;
  }

  private async newItem(trx: Transaction<Database>, from: Item, stage: number, direction: 'forward' | 'backward', inputKey: string | null, requiredHotkey: string | null): Promise<void> {
    await trx.insertInto('work_items').values(this.itemRow(from.run_id, from.sample_id, stage, direction, inputKey, requiredHotkey, Number(from.round))).execute();
  }

  private itemRow(runId: string, sampleId: string, stage: number, direction: ItemKind, inputKey: string | null, requiredHotkey: string | null, round: number): NewWorkItem {
    return {
      id: `${runId}.${sampleId}.${stage}.${direction === 'forward' ? 'f' : direction === 'backward' ? 'b' : direction}`,
      run_id: runId,
      sample_id: sampleId,
      stage,
      direction,
      status: 'pending',
      input_key: inputKey,
      output_key: '',
      required_hotkey: requiredHotkey,
      lease_id: null,
      leased_to: null,
      lease_expires: null,
      attempts: 0,
      completed_by: null,
      completed_at: null,
      output_bytes: null,
      created_at: this.now(),
      round,
      sumsq: null,
      not_hotkey: null,
    };
  }

  // ---- participants ----

  private async stageLoads(runId: string, stageCount: number): Promise<StageLoad[]> {
    const rows = await this.db
      .selectFrom('participants')
      .select(['stage', 'hardware_json'])
      .where('run_id', '=', runId)
      .where('role', '=', 'miner')
      .where('status', '=', 'active')
      .execute();
    const loads: StageLoad[] = Array.from({ length: stageCount }, (_, stage) => ({ stage, miners: 0, tokensPerS: 0 }));
    for (const r of rows) {
      if (r.stage === null || r.stage >= stageCount) continue;
      loads[r.stage].miners++;
      loads[r.stage].tokensPerS += (JSON.parse(r.hardware_json) as Hardware).tokens_per_s;
    }
    return loads;
  }

  private async admit(spec: RunSpec, hotkey: string): Promise<void> {
    const a = spec.admission;
    if (a.mode === 'allowlist' && !a.hotkeys.includes(hotkey)) throw new ApiError('forbidden', `hotkey ${hotkey} is not on run ${spec.id}'s allowlist`);
    if (a.mode === 'metagraph') {
      if (!this.opts.metagraph) throw new ApiError('unavailable', `run ${spec.id} admits by metagraph, and this orchestrator has none configured`);
      if (!(await this.opts.metagraph.isRegistered(a.netuid, hotkey))) throw new ApiError('forbidden', `hotkey ${hotkey} is not registered on subnet ${a.netuid}`);
    }
  }

  private assignment(hotkey: string, role: 'miner' | 'validator', spec: RunSpec, stage: number | null): Assignment {
    return {
      hotkey,
      role,
      run_id: spec.id,
      stage,
      stage_count: spec.stages.length,
      layers: stage === null ? null : spec.stages[stage],
      heartbeat_interval_s: this.opts.heartbeatIntervalS ?? Math.max(1, Math.floor(spec.heartbeat_timeout_s / 3)),
      lease_ttl_s: spec.lease_ttl_s,
    };
  }

  async register(hotkey: string, req: RegisterRequest): Promise<Assignment> {
    const runId = req.run_id ?? (await this.defaultRunId());
    const spec = await this.spec(runId);
    await this.admit(spec, hotkey);
    const caught = await this.db.selectFrom('flags').select(['kind', 'round']).where('run_id', '=', runId).where('hotkey', '=', hotkey).orderBy('id').executeTakeFirst();
    if (caught) throw new ApiError('forbidden', `hotkey ${hotkey} is excluded from run ${runId}: ${caught.kind.replace('_', ' ')} in round ${caught.round ?? '?'} (the evidence: GET /v1/runs/${runId}/flags)`);
    const now = this.now();
    const existing = await this.db.selectFrom('participants').selectAll().where('hotkey', '=', hotkey).executeTakeFirst();
    const fit = req.role === 'miner' ? stageFit(runId, spec, req.hardware) : null;
    // Registering again (a restart of the miner) keeps the stage it had in the same run, if it
    // still holds it; what it held in memory (kept activations, its gradient sum) is gone, so its
    // work is re-issued.
    if (existing && existing.run_id === runId && existing.role === req.role && existing.status === 'active' && (existing.stage === null || (fit?.fits[existing.stage] ?? true))) {
      await withTransaction(this.db, async (trx) => {
        await this.forget(trx, spec, hotkey, existing.stage);
        await trx.updateTable('participants').set({ hardware_json: JSON.stringify(req.hardware), last_seen: now, version: 0 }).where('hotkey', '=', hotkey).execute();
      });
      await this.advance(spec);
      this.wake();
      return this.assignment(hotkey, req.role, spec, existing.stage);
    }
    let stage: number | null = null;
    if (req.role === 'miner') {
      const choice = chooseStage(await this.stageLoads(runId, spec.stages.length), spec.max_miners_per_stage, fit!.fits);
      if (!choice.ok && choice.reason === 'too_small') throw new ApiError('forbidden', fit!.refusal.message, fit!.refusal.details);
      if (!choice.ok) throw new ApiError('run_full', `run ${runId} is full: every stage has ${spec.max_miners_per_stage} miners`, { retry_after_s: 60 }, { 'retry-after': '60' });
      stage = choice.stage;
    } else stage = await this.validatorStage(runId, spec.stages.length);
    const row = { role: req.role, run_id: runId, stage, hardware_json: JSON.stringify(req.hardware), registered_at: now, last_seen: now, status: 'active' as const };
    await withTransaction(this.db, async (trx) => {
      if (existing) {
        // A new run, role or a comeback after being reaped: nothing from before is still held.
        if (existing.status === 'active') await this.forget(trx, await this.spec(existing.run_id), hotkey, existing.stage);
        await trx.updateTable('participants').set({ ...row, version: 0 }).where('hotkey', '=', hotkey).execute();
      } else await trx.insertInto('participants').values({ hotkey, ...row }).execute();
      await this.log(trx, 'registered', hotkey, runId, { role: req.role, stage });
    });
    return this.assignment(hotkey, req.role, spec, stage);
  }

  /** The hotkey's registration while it is active, or null (for the routes' access check). */
  async activeParticipant(hotkey: string): Promise<ParticipantRow | null> {
    const p = await this.db.selectFrom('participants').selectAll().where('hotkey', '=', hotkey).executeTakeFirst();
    return p && p.status === 'active' ? p : null;
  }

  private async participant(hotkey: string): Promise<ParticipantRow> {
    const p = await this.activeParticipant(hotkey);
    if (!p) throw new ApiError('not_registered', `hotkey ${hotkey} is not registered (register again)`);
    return p;
  }

  async heartbeat(hotkey: string): Promise<{ server_time: number; stage: number | null; leases_held: number }> {
    const p = await this.participant(hotkey);
    const now = this.now();
    await this.db.updateTable('participants').set({ last_seen: now }).where('hotkey', '=', hotkey).execute();
    const held = await this.db.selectFrom('work_items').select((eb) => eb.fn.countAll<number>().as('n')).where('leased_to', '=', hotkey).where('status', '=', 'leased').executeTakeFirst();
    return { server_time: now, stage: p.stage, leases_held: Number(held?.n ?? 0) };
  }

  async move(hotkey: string, wanted?: number): Promise<Assignment> {
    const p = await this.participant(hotkey);
    if (p.role !== 'miner') throw new ApiError('forbidden', 'only miners hold stages');
    const spec = await this.spec(p.run_id);
    const fit = stageFit(spec.id, spec, JSON.parse(p.hardware_json) as Hardware);
    const choice = chooseMove(await this.stageLoads(p.run_id, spec.stages.length), spec.max_miners_per_stage, p.stage, wanted, fit.fits);
    if (!choice.ok) {
      if (choice.reason === 'too_small') {
        const r = wanted === undefined ? fit.refusal : fit.why(wanted);
        throw new ApiError('forbidden', r.message, r.details);
      }
      if (choice.reason === 'no_such_stage') throw new ApiError('bad_request', `run ${spec.id} has no stage ${wanted} (it has ${spec.stages.length})`);
      throw new ApiError('run_full', choice.reason === 'stage_full' ? `stage ${wanted} is full` : `run ${spec.id} is full`, undefined, { 'retry-after': '60' });
    }
    if (choice.stage !== p.stage) {
      await withTransaction(this.db, async (trx) => {
        await this.forget(trx, spec, hotkey, p.stage);
        await trx.updateTable('participants').set({ stage: choice.stage, last_seen: this.now(), version: 0 }).where('hotkey', '=', hotkey).execute();
        await this.log(trx, 'moved', hotkey, spec.id, { from: p.stage, to: choice.stage });
      });
    }
    return this.assignment(hotkey, 'miner', spec, choice.stage);
  }

  /**
   * Hands back everything a miner holds: its leases return to the queue, its backward work goes to
   * anyone (who recomputes the forward), and its unshared gradient sum is re-issued as redo work.
   */
  private async forget(trx: Transaction<Database>, spec: RunSpec, hotkey: string, stage: number | null): Promise<void> {
    await trx.updateTable('work_items').set({ status: 'pending', lease_id: null, leased_to: null, lease_expires: null }).where('leased_to', '=', hotkey).where('status', '=', 'leased').execute();
    // A state it was asked to store goes to the next replica that can: nobody waits out its time.
    await trx.updateTable('snapshots').set({ holder: null, assigned_at: 0 }).where('holder', '=', hotkey).where('status', '=', 'assigned').execute();
    // Its copies of reductions (of any stage) go to other reducers: no slice is left unreduced.
    const copies = await trx.selectFrom('work_items').selectAll().where('run_id', '=', spec.id).where('required_hotkey', '=', hotkey).where('direction', '=', 'reduce').where('status', '=', 'pending').execute();
    for (const copy of copies) await this.reassignReduction(trx, spec, copy, hotkey);
    // A share is the sum in that miner's memory: nobody else can upload it.
    await trx.updateTable('work_items').set({ required_hotkey: null }).where('required_hotkey', '=', hotkey).where('status', '!=', 'done').where('direction', 'not in', ['share', 'reduce', 'local']).execute();
    if (stage === null) return;
    const open = await trx.selectFrom('rounds').select('round').where('run_id', '=', spec.id).where('status', '=', 'compute').execute();
    for (const r of open) await this.loseContribution(trx, spec, hotkey, stage, Number(r.round), false);
  }

  /** A miner that stops says so: its work is re-issued at once, not after its heartbeats stop. */
  async leave(hotkey: string): Promise<void> {
    const p = await this.participant(hotkey);
    const spec = await this.spec(p.run_id);
    await withTransaction(this.db, async (trx) => {
      await this.forget(trx, spec, hotkey, p.stage);
      await trx.updateTable('participants').set({ status: 'gone' }).where('hotkey', '=', hotkey).execute();
      await this.log(trx, 'left', hotkey, spec.id, {});
    });
    await this.advance(spec);
    this.wake();
  }

  /** Miners silent for longer than their run's heartbeat timeout are gone; their work is re-offered. */
  async reap(): Promise<string[]> {
    const now = this.now();
    const gone: string[] = [];
    const active = await this.db.selectFrom('participants').select(['hotkey', 'run_id', 'last_seen', 'stage']).where('status', '=', 'active').execute();
    const timeouts = new Map<string, number>();
    for (const p of active) {
      if (!timeouts.has(p.run_id)) timeouts.set(p.run_id, (await this.spec(p.run_id)).heartbeat_timeout_s * 1000);
      // Silence while this orchestrator was down is not the miner's: count from the restart.
      if (now - Math.max(Number(p.last_seen), this.startedAt) <= timeouts.get(p.run_id)!) continue;
      const spec = await this.spec(p.run_id);
      await withTransaction(this.db, async (trx) => {
        await trx.updateTable('participants').set({ status: 'gone' }).where('hotkey', '=', p.hotkey).execute();
        await this.forget(trx, spec, p.hotkey, p.stage);
        await this.log(trx, 'gone', p.hotkey, p.run_id, { silent_ms: now - Number(p.last_seen) });
      });
      await this.advance(spec);
      gone.push(p.hotkey);
    }
    if (gone.length) this.wake();
    return gone;
  }

  // ---- work ----
  //
  // A round is one optimizer step of the whole model. Per stage it moves through four phases:
  //  compute  forward and backward items of the round's samples (and redo items, below);
  //  share    each replica that did gradient work uploads its gradient sum, one blob per slice;
  //  reduce   each slice is summed over the replicas' shares by one replica and stored;
  //  done     every slice is reduced.
  // When every stage is done the round is reduced: its whole-model gradient norm gives the clip
  // coefficient, every replica applies the same AdamW step, and the next round's samples are
  // queued. A replica's sum lives only in its memory until it is shared, so when a replica is lost
  // (silent, restarted, or caught uploading garbage) before its share is stored, the samples its
  // sum covered are re-issued as redo items and the stage's share starts again: the round's
  // update stays exactly the one a single process would compute.

  private keyFor(item: Pick<Item, 'run_id' | 'sample_id' | 'stage' | 'direction'>, leaseId: string): string {
    return `runs/${item.run_id}/samples/${item.sample_id}/${item.stage}-${item.direction}-${leaseId}.safetensors`;
  }

  private roundKey(runId: string, round: number, stage: number, attempt: number, name: string): string {
    return `runs/${runId}/rounds/${round}/stage-${stage}/a${attempt}/${name}.safetensors`;
  }

  /** Where a reduce lease uploads its copy of the slice (a key per lease, as for sample work). */
  private reducedKey(runId: string, item: Pick<Item, 'id' | 'round' | 'stage' | 'detail_json'>, leaseId: string): string {
    const d = JSON.parse(item.detail_json) as ReduceDetail;
    const attempt = d.attempt ?? Number(/\.a(\d+)\.reduce\./.exec(item.id)?.[1] ?? 0);
    return this.roundKey(runId, Number(item.round), item.stage, attempt, `reduced-${d.slice}-${d.copy}-${leaseId}`);
  }

  /** The run's model as the miners build it: parameter count per stage, blob dimensions. */
  private model(spec: RunSpec): { config: ModelConfig; stageParams: number[] } {
    const known = this.models.get(spec.id);
    if (known) return known;
    const config = runModelConfig(spec);
    const last = spec.stages.length - 1;
    const stageParams = spec.stages.map((layers, s) => new ParamLayout(config, { layers, hasEmbed: s === 0, hasHead: s === last }).size);
    const m = { config, stageParams };
    this.models.set(spec.id, m);
    return m;
  }
  private readonly models = new Map<string, { config: ModelConfig; stageParams: number[] }>();

  private dims(spec: RunSpec, length = 0): BlobDims {
    return runBlobDims(spec, this.model(spec).config, length);
  }

  /**
   * Refuses an upload whose size or safetensors header is not what `kind` must be. What passes is
   * sealed first (the store takes no more writes to the key), so what was checked is what stays;
   * its size and reported digest are what the caller records as accepted.
   */
  private async checkUpload(key: string, reported: Uploaded | undefined, expectedKey: string, kind: BlobKind, dims: BlobDims): Promise<{ bytes: number; sha256: string }> {
    if (!reported) throw new ApiError('bad_request', `this work item must upload its ${kind} to ${expectedKey} first`);
    if (reported.key !== expectedKey) throw new ApiError('forbidden', `this lease may only write ${expectedKey}, not ${reported.key}`);
    if (reported.multipart) {
      // Joining the parts is a metadata operation of the store: no tensor passes through here.
      try {
        await this.store.completeMultipart(key, reported.multipart.upload_id, reported.multipart.parts);
      } catch (err) {
        if (err instanceof MultipartError) throw new ApiError('bad_request', `upload in parts refused: ${err.message}`, { key });
        throw err;
      }
    }
    if (!(await this.store.seal(key))) throw new ApiError('bad_request', `nothing was uploaded to ${key}`);
    const info = await this.store.head(key);
    const problem =
      info === null ? 'nothing is stored there' : info.bytes !== reported.bytes ? `it holds ${info.bytes} bytes, the completion says ${reported.bytes}` : checkBlobHeader(await this.store.getRange(key, 0, 8 + MAX_BLOB_HEADER_BYTES), info.bytes, blobTensors(kind, dims));
    if (problem) {
      // A refused upload is removed (its seal with it): nothing downstream can ever read it, and the lease may upload again.
      await this.store.delete(key);
      throw new ApiError('bad_request', `upload refused: ${key} is not a valid ${kind} blob: ${problem}`, { key, kind });
    }
    return { bytes: info!.bytes, sha256: reported.sha256 };
  }

  /** Readers' references to accepted blobs: each with its URL, size and accepted digest. */
  private blobRefs(keys: string[], spec: RunSpec): Promise<BlobRef[]> {
    return blobRefs(this.db, this.store, spec.id, keys, { expiresInS: spec.lease_ttl_s * 2, now: this.now() });
  }

  private async blobRef(key: string, spec: RunSpec): Promise<BlobRef> {
    return (await this.blobRefs([key], spec))[0];
  }

  /**
   * Where to upload `key`: one PUT, or parts when the blob may be larger than the store's part
   * size. `grant` (the lease's id) scopes the URL: it stops working when the lease ends.
   */
  private async upload(key: string, spec: RunSpec, maxBytes: number, grant: string): Promise<Upload> {
    const expiresInS = spec.lease_ttl_s * 2;
    if (maxBytes > this.store.partBytes) {
      const plan = await this.store.startMultipart(key, { expiresInS, maxBytes, grant });
      return { key, url: '', max_bytes: maxBytes, multipart: { upload_id: plan.uploadId, part_bytes: plan.partBytes, part_urls: plan.urls } };
    }
    return { key, url: await this.store.presign('put', key, { expiresInS, maxBytes, grant }), max_bytes: maxBytes };
  }

  /** Why the local store may not take an upload to `key` under `grant` now (write-grants.ts), or null. */
  writeRefusal(key: string, grant: string | undefined): Promise<string | null> {
    return writeRefusal(this.db, key, grant);
  }

  private sampleRef(spec: RunSpec, round: number, index: number): SampleRef {
    const rows = spec.rows_per_sample;
    return { seed: spec.seed, step: round, batch_size: rows * spec.samples_per_round, first_row: index * rows, rows };
  }

  private async sampleOf(runId: string, sampleId: string): Promise<{ round: number; index: number }> {
    const s = await this.db.selectFrom('samples').select(['round', 'idx']).where('run_id', '=', runId).where('id', '=', sampleId).executeTakeFirstOrThrow();
    return { round: Number(s.round), index: Number(s.idx) };
  }

  private async roundsDone(runId: string): Promise<number> {
    const row = await this.db.selectFrom('rounds').select((eb) => eb.fn.countAll<number>().as('n')).where('run_id', '=', runId).where('status', '=', 'reduced').executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Miners inside lease() (asking or waiting for work), by stage. */
  private readonly asking = new Map<number, number>();
  /**
   * Miners and validators waiting for a task (long poll), by stage. Miners are woken when their
   * stage's queue or a phase changes; validators only by what can give them a task (a reduced round,
   * a check drawn or put back, a rollback, a stored state), not by every work item that moves: a
   * round moves dozens of items, and each wake re-runs the waiter's queries.
   */
  private waiters = new Set<{ stage: number; validator: boolean; wake: () => void }>();
  private wake(stage?: number, validators = stage === undefined): void {
    for (const w of [...this.waiters]) if ((stage === undefined || w.stage === stage) && (validators || !w.validator)) w.wake();
  }
  /** A lease answer with no task: ask again after the idle interval. */
  private noTaskYet(): LeaseResponse {
    return { lease: null, finished: false, retry_after_ms: this.opts.idleRetryMs ?? 1000 };
  }
  /** Resolves when woken (true) or after `ms` (false). */
  private waitForChange(stage: number, ms: number, validator = false): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (woken: boolean): void => {
        clearTimeout(timer);
        this.waiters.delete(w);
        resolve(woken);
      };
      const w = { stage, validator, wake: () => done(true) };
      const timer = setTimeout(() => done(false), ms);
      this.waiters.add(w);
    });
  }

  async lease(hotkey: string, req: LeaseRequest = {}): Promise<LeaseResponse> {
    const p = await this.participant(hotkey);
    if (p.role !== 'miner' || p.stage === null) throw new ApiError('forbidden', 'only miners with a stage lease work');
    return this.leaseCounted(hotkey, p, p.stage, req);
  }

  /** leaseFor, counted among the stage's miners asking while it runs. */
  private async leaseCounted(hotkey: string, p: ParticipantRow, stage: number, req: LeaseRequest): Promise<LeaseResponse> {
    this.asking.set(stage, (this.asking.get(stage) ?? 0) + 1);
    try {
      return await this.leaseFor(hotkey, p, req);
    } finally {
      this.asking.set(stage, this.asking.get(stage)! - 1);
    }
  }

  /**
   * The next task for a miner that has just reported one, in the same request, unless another
   * miner of its stage is asking already: work goes to whoever asked first, so a miner that
   * reports never jumps the queue of one that waits. Null: it asks /v1/leases/next as usual.
   */
  async leaseAfterReport(hotkey: string, req: LeaseRequest): Promise<LeaseResponse | null> {
    const p = await this.participant(hotkey);
    if (p.role !== 'miner' || p.stage === null || (this.asking.get(p.stage) ?? 0) > 0) return null;
    return this.leaseCounted(hotkey, p, p.stage, req);
  }

  private async leaseFor(hotkey: string, asked: ParticipantRow, req: LeaseRequest): Promise<LeaseResponse> {
    let p = asked;
    const version = req.version ?? 0;
    const deadline = this.now() + (req.wait_ms ?? 0);
    const spec = await this.spec(p.run_id);
    let done = await this.roundsDone(spec.id);
    // A version past the run's (it was rolled back) is not recorded: the miner is about to drop it.
    await this.db.updateTable('participants').set({ last_seen: this.now(), ...(version <= done ? { version } : {}) }).where('hotkey', '=', hotkey).execute();
    // Ahead of the run or diverged: load a stored state first.
    if (version > done || Number(p.resync) === 1) return { lease: await this.resyncTask(hotkey, p.stage!, spec, done), finished: false, retry_after_ms: 0 };
    for (;;) {
      const task = await this.nextTask(hotkey, p.stage!, spec, version, done);
      if (task === 'finished') return { lease: null, finished: true, retry_after_ms: 0 };
      if (task) return { lease: task, finished: false, retry_after_ms: 0 };
      const left = deadline - this.now();
      // Nothing yet, and none woke it before the deadline: nothing to look at again (the next request does).
      if (left <= 0 || (!(await this.waitForChange(p.stage!, Math.min(left, 5000))) && left <= 5000)) return this.noTaskYet();
      // It may have been dropped or moved while it waited.
      p = await this.participant(hotkey);
      if (p.stage === null) throw new ApiError('forbidden', 'only miners with a stage lease work');
      done = await this.roundsDone(spec.id);
      // Or the run was rolled back meanwhile.
      if (version > done || Number(p.resync) === 1) return { lease: await this.resyncTask(hotkey, p.stage, spec, done), finished: false, retry_after_ms: 0 };
    }
  }

  /** What a miner holding `version` rounds of its stage should do next, or null for nothing yet. */
  private async nextTask(hotkey: string, stage: number, spec: RunSpec, version: number, done: number): Promise<Task | 'finished' | null> {
    if (version < done) return this.catchUp(hotkey, stage, spec, version);
    if (spec.rounds !== undefined && version >= spec.rounds) {
      const stored = await this.db.selectFrom('snapshots').select('stage').where('run_id', '=', spec.id).where('rounds', '=', spec.rounds).where('status', '=', 'done').execute();
      if (stored.length === spec.stages.length) return 'finished';
      // The run ends once every stage's final state is stored. When the replica asked to store its
      // stage's went away first (or is past its time), one that holds the same state does it.
      if (version !== spec.rounds || stored.some((x) => x.stage === stage)) return null;
      const snapshot = await this.snapshotDuty(hotkey, stage, spec, version);
      return snapshot ? { kind: 'store', run_id: spec.id, stage, rounds: version, snapshot } : null;
    }
    const ttlMs = spec.lease_ttl_s * 1000;
    if (!(await anyAvailableItem(this.db, { runId: spec.id, stage, hotkey, now: this.now(), ttlMs }))) return null;
    const picked = await withTransaction(this.db, async (trx) => {
      const item = await pickAvailableItem(trx, { runId: spec.id, stage, hotkey, now: this.now(), ttlMs });
      if (!item || item.direction === 'share' || item.direction === 'redo' || item.direction === 'local') return item;
      // Each lease writes a key of its own: a holder the work passed from can never write over
      // the next holder's upload (an S3 URL cannot be revoked), nor be blamed for it.
      const outputKey = item.direction === 'reduce' ? this.reducedKey(spec.id, item, item.lease_id!) : this.keyFor(item, item.lease_id!);
      await trx.updateTable('work_items').set({ output_key: outputKey }).where('id', '=', item.id).execute();
      return { ...item, output_key: outputKey };
    });
    if (!picked) return null;
    const base = { id: picked.lease_id!, run_id: spec.id, round: Number(picked.round), stage: picked.stage, expires_at: Number(picked.lease_expires) };
    if (picked.direction === 'local') {
      const optim = fromOptimizerSpec(spec.optimizer);
      return { kind: 'local', ...base, lr: learningRate(base.round, optim), clip_norm: optim.clipNorm };
    }
    if (picked.direction === 'share') {
      const d = JSON.parse(picked.detail_json) as ShareDetail;
      return { kind: 'share', ...base, what: d.what ?? 'grad', slices: await Promise.all(d.slices.map(async (range, j) => ({ range, upload: await this.upload(d.keys[j], spec, blobBytes(blobTensors(mergeKinds(spec).share, { ...this.dims(spec), length: range[1] - range[0] }), MAX_BLOB_HEADER_BYTES), base.id) }))) };
    }
    if (picked.direction === 'reduce') {
      const d = JSON.parse(picked.detail_json) as ReduceDetail;
      return {
        kind: 'reduce',
        ...base,
        range: d.range,
        scale: d.scale,
        inputs: await this.blobRefs(d.inputs.map((i) => i.key), spec),
        upload: await this.upload(picked.output_key, spec, blobBytes(blobTensors(mergeKinds(spec).reduced, { ...this.dims(spec), length: d.range[1] - d.range[0] }), MAX_BLOB_HEADER_BYTES), base.id),
      };
    }
    return this.workLease(picked, spec, base);
  }

  private async workLease(picked: Item, spec: RunSpec, base: { id: string; run_id: string; round: number; stage: number; expires_at: number }): Promise<Lease> {
    const last = spec.stages.length - 1;
    const { stage } = picked;
    const { index } = await this.sampleOf(picked.run_id, picked.sample_id);
    const sample = this.sampleRef(spec, base.round, index);
    const sampleInput = { kind: 'sample' as const, ...sample };
    // A sample's stage input: the activation the previous stage uploaded, or the data at stage 0.
    const stageInput = async (): Promise<Lease['input']> => {
      if (stage === 0) return sampleInput;
      const fwd = await this.db.selectFrom('work_items').select('input_key').where('id', '=', `${picked.run_id}.${picked.sample_id}.${stage}.f`).executeTakeFirstOrThrow();
      return { kind: 'blob', ...(await this.blobRef(fwd.input_key!, spec)) };
    };
    let input: Lease['input'];
    let forwardInput: Lease['input'] | undefined;
    if (picked.direction === 'forward') input = await stageInput();
    else if (picked.direction === 'backward' || stage < last) {
      // Backward (and its redo below the last stage): the output gradient, plus the stage input.
      input = { kind: 'blob', ...(await this.blobRef(picked.input_key!, spec)) };
      forwardInput = await stageInput();
    } else input = await stageInput(); // redo at the last stage: forward and backward again.
    // Forward at the last stage also runs backward at once and sends the gradient down; stage 0's
    // backward has nowhere to send one, and a redo sends nothing at all.
    const outputKind =
      picked.direction === 'redo' ? 'none' : picked.direction === 'forward' ? (stage < last ? 'activation' : stage > 0 ? 'gradient' : 'none') : stage > 0 ? 'gradient' : 'none';
    const output: Lease['output'] =
      outputKind === 'none' ? { kind: 'none', key: '', url: '', max_bytes: 0 } : { kind: outputKind, ...(await this.upload(picked.output_key, spec, blobBytes(blobTensors(outputKind, this.dims(spec)), MAX_BLOB_HEADER_BYTES), base.id)) };
    return {
      kind: 'work',
      ...base,
      generation: await this.generation(spec.id, base.round),
      sample_id: picked.sample_id,
      direction: picked.direction as Direction,
      sample,
      input,
      ...(forwardInput ? { forward_input: forwardInput } : {}),
      output,
    };
  }

  /** A miner behind the run: the stored state when it is newer, else the next round's step. */
  private async catchUp(hotkey: string, stage: number, spec: RunSpec, version: number, storesState = true): Promise<Task | null> {
    const snap = await this.newestSnapshot(spec.id, stage, Infinity);
    if (snap && Number(snap.rounds) > version) return this.syncTask(spec, stage, snap);
    const round = await this.db.selectFrom('rounds').selectAll().where('run_id', '=', spec.id).where('round', '=', version).executeTakeFirstOrThrow();
    // Local mode between merges: each replica already took its own step; nothing to apply.
    const step = spec.mode === 'exact' ? 'step' : isMergeRound(spec, version) ? 'outer' : 'none';
    if (step === 'none') return { kind: 'apply', step, run_id: spec.id, round: version, stage, lr: 0, clip: 1, slices: [] };
    const reduced = await this.db
      .selectFrom('work_items')
      .select(['output_key', 'output_bytes', 'detail_json'])
      .where('run_id', '=', spec.id)
      .where('round', '=', version)
      .where('stage', '=', stage)
      .where('direction', '=', 'reduce')
      .where('status', '=', 'done')
      .execute();
    // The copies that agreed (those that did not are 'lost'), grouped by slice.
    const bySlice = new Map<number, { range: [number, number]; digest: string; copies: typeof reduced }>();
    for (const r of reduced) {
      const d = JSON.parse(r.detail_json) as ReduceDetail;
      const entry = bySlice.get(d.slice) ?? { range: d.range, digest: d.digest!, copies: [] };
      if (d.digest === entry.digest) entry.copies.push(r);
      bySlice.set(d.slice, entry);
    }
    const slices = await Promise.all(
      [...bySlice.values()]
        .sort((a, b) => a.range[0] - b.range[0])
        .map(async (e) => ({ range: e.range, digest: e.digest, blobs: await this.blobRefs(e.copies.map((c) => c.output_key), spec) })),
    );
    const snapshot = storesState ? await this.snapshotDuty(hotkey, stage, spec, version + 1) : null;
    return { kind: 'apply', step, run_id: spec.id, round: version, stage, lr: Number(round.lr), clip: Number(round.clip), slices, ...(snapshot ? { snapshot } : {}) };
  }

  /** Every snapshot_every rounds, and after the last one, one replica per stage stores the state. */
  private async snapshotDuty(hotkey: string, stage: number, spec: RunSpec, rounds: number): Promise<Upload | null> {
    if (!snapshotDue(spec, rounds)) return null;
    const now = this.now();
    const taken = await withTransaction(this.db, async (trx) => {
      const row = await trx.selectFrom('snapshots').selectAll().where('run_id', '=', spec.id).where('stage', '=', stage).where('rounds', '=', rounds).executeTakeFirst();
      if (row && (row.status === 'done' || (row.holder !== hotkey && now - Number(row.assigned_at) < spec.lease_ttl_s * 1000))) return null;
      // A new holder gets a key and a write grant of its own (the one before can write neither).
      if (row?.holder === hotkey && row.lease_id) {
        await trx.updateTable('snapshots').set({ assigned_at: now }).where('run_id', '=', spec.id).where('stage', '=', stage).where('rounds', '=', rounds).execute();
        return { key: row.key, grant: row.lease_id };
      }
      const grant = newLeaseId();
      const key = `runs/${spec.id}/snapshots/stage-${stage}/${rounds}-${grant}.safetensors`;
      if (row) await trx.updateTable('snapshots').set({ holder: hotkey, assigned_at: now, key, lease_id: grant }).where('run_id', '=', spec.id).where('stage', '=', stage).where('rounds', '=', rounds).execute();
      else await trx.insertInto('snapshots').values({ run_id: spec.id, stage, rounds, key, bytes: null, status: 'assigned', holder: hotkey, assigned_at: now, lease_id: grant }).execute();
      return { key, grant };
    });
    if (!taken) return null;
    const length = this.model(spec).stageParams[stage];
    return this.upload(taken.key, spec, blobBytes(blobTensors(snapshotKind(spec), { ...this.dims(spec), length }), MAX_BLOB_HEADER_BYTES), taken.grant);
  }

  async applied(hotkey: string, req: AppliedRequest): Promise<{ status: 'ok' | 'duplicate'; resync: boolean }> {
    const p = await this.participant(hotkey);
    if (p.role !== 'miner' || p.stage === null) throw new ApiError('forbidden', 'only miners with a stage apply rounds');
    const spec = await this.spec(p.run_id);
    for (const bad of req.bad_blobs ?? []) await this.checkReported(spec, hotkey, p.stage, req.round, bad);
    await this.deleteUnkept(spec.id, this.restartSpent.splice(0));
    const resync = req.hash !== undefined && req.round < (await this.roundsDone(spec.id)) ? await this.reportVersion(spec, hotkey, p.stage, req.round + 1, req.hash) : false;
    if (!req.snapshot) return { status: 'ok', resync };
    const rounds = req.round + 1;
    const row = await this.db.selectFrom('snapshots').selectAll().where('run_id', '=', spec.id).where('stage', '=', p.stage).where('rounds', '=', rounds).executeTakeFirst();
    if (row?.status === 'done') return { status: 'duplicate', resync };
    if (!row) throw new ApiError('forbidden', `no snapshot of stage ${p.stage} after round ${req.round} was asked of this miner`);
    // Asked once, but given to another replica since (this one took longer than its lease time).
    if (row.holder !== hotkey) throw new ApiError('conflict', `stage ${p.stage}'s state after round ${req.round} is stored by another replica now`);
    if (resync) throw new ApiError('conflict', `this miner's state after round ${req.round} is not the stage's (hash ${req.hash!.slice(0, 12)}…): not stored`);
    const { bytes, sha256 } = await this.checkUpload(row.key, req.snapshot, row.key, snapshotKind(spec), this.dims(spec, this.model(spec).stageParams[p.stage]));
    const stored = await withTransaction(this.db, async (trx) => {
      // Conditional on the duty still being this replica's: it may have passed on meanwhile.
      const r = await trx.updateTable('snapshots').set({ status: 'done', bytes, hash: req.hash ?? null }).where('run_id', '=', spec.id).where('stage', '=', p.stage!).where('rounds', '=', rounds).where('holder', '=', hotkey).where('status', '=', 'assigned').executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return false;
      await recordAccepted(trx, { key: row.key, run_id: spec.id, sha256, bytes, producer: hotkey }, this.now());
      await this.log(trx, 'snapshot', hotkey, spec.id, { stage: p.stage, rounds, bytes });
      return true;
    });
    if (!stored) throw new ApiError('conflict', `stage ${p.stage}'s state after round ${req.round} is stored by another replica now`);
    await this.collectGarbage(spec, p.stage, rounds);
    if (spec.rounds !== undefined && rounds === spec.rounds) await this.maybeFinish(spec);
    this.wake();
    return { status: 'ok', resync };
  }

  /**
   * An applier says a copy of a reduced slice is not what its digest says. The orchestrator reads
   * that one blob to see for itself (so nobody can be framed); when it is wrong its uploader is
   * flagged and the copy is no longer handed out.
   */
  private async checkReported(spec: RunSpec, reporter: string, stage: number, round: number, bad: { key: string; reason: string }): Promise<void> {
    const item = await this.db
      .selectFrom('work_items')
      .selectAll()
      .where('run_id', '=', spec.id)
      .where('round', '=', round)
      .where('stage', '=', stage)
      .where('direction', '=', 'reduce')
      .where('output_key', '=', bad.key)
      .where('status', '=', 'done')
      .executeTakeFirst();
    if (!item) return;
    const d = JSON.parse(item.detail_json) as ReduceDetail;
    const stored = await this.store.get(item.output_key).catch(() => null);
    const digest = stored === null ? null : blobDataDigest(stored);
    // Not what was accepted (the whole blob's SHA-256), or accepted but not what was reported (its data's digest).
    const accepted = await acceptedBlob(this.db, item.output_key);
    const sha256 = stored === null ? null : blobSha256(stored);
    const changed = accepted !== null && sha256 !== accepted.sha256;
    if (!changed && digest === d.digest) {
      await this.log(this.db, 'bad_blob_unconfirmed', reporter, spec.id, { key: bad.key, reason: bad.reason.slice(0, 500) });
      return;
    }
    await withTransaction(this.db, async (trx) => {
      await trx.updateTable('work_items').set({ status: 'lost' }).where('id', '=', item.id).execute();
      await this.flag(trx, spec.id, item.completed_by!, 'bad_blob', round, stage, { key: bad.key, reported_digest: d.digest, stored_digest: digest, ...(changed ? { accepted_sha256: accepted.sha256, stored_sha256: sha256 } : {}), found_by: reporter, reason: bad.reason.slice(0, 500) });
      await this.exclude(trx, spec, item.completed_by!);
    });
  }

  // ---- versions ----
  //
  // Each round's resulting stage state is a version. Every replica reports the stateDigest of its
  // state after each step; replicas of a stage in exact mode must agree bit for bit. The hash most
  // replicas report is the version's (a tie goes to the first reported); a replica that reports
  // another is resynchronised: its next task loads the newest stored state of its stage, and it
  // replays the stored reduced rounds since. Stored states (snapshots) carry their hash, which the
  // loader checks.

  /** Records `hotkey`'s hash for (stage, rounds); true when its state is not the stage's. */
  private async reportVersion(spec: RunSpec, hotkey: string, stage: number, rounds: number, hash: string): Promise<boolean> {
    return withTransaction(this.db, async (trx) => {
      const row = await trx.selectFrom('versions').selectAll().where('run_id', '=', spec.id).where('stage', '=', stage).where('rounds', '=', rounds).executeTakeFirst();
      const reports = row ? (JSON.parse(row.reports_json) as Record<string, string>) : {};
      const before = majority(reports);
      reports[hotkey] = hash;
      const after = majority(reports);
      if (row) await trx.updateTable('versions').set({ reports_json: JSON.stringify(reports) }).where('run_id', '=', spec.id).where('stage', '=', stage).where('rounds', '=', rounds).execute();
      else await trx.insertInto('versions').values({ run_id: spec.id, stage, rounds, reports_json: JSON.stringify(reports), created_at: this.now() }).execute();
      // Out of line: the reporter, unless it holds the majority's state, and, when the majority
      // changes or is lost to a tie, those who held the old one. On a tie nobody is known to be
      // right: all of them reload from storage (a stored state and the agreed reduced rounds).
      const diverged = Object.entries(reports)
        .filter(([h, x]) => x !== after && (h === hotkey || (before !== null && x === before)))
        .map(([h]) => h);
      for (const h of diverged) {
        await trx.updateTable('participants').set({ resync: 1 }).where('hotkey', '=', h).where('run_id', '=', spec.id).where('stage', '=', stage).execute();
        await this.log(trx, 'state_diverged', h, spec.id, { stage, rounds, hash: reports[h], agreed: after });
      }
      return diverged.includes(hotkey);
    });
  }

  /** A stored state for a replica to load: the newest of its stage at or before `done` rounds. */
  private async resyncTask(hotkey: string, stage: number, spec: RunSpec, done: number): Promise<Task> {
    const snap = await this.newestSnapshot(spec.id, stage, done);
    await this.db.updateTable('participants').set({ resync: 0 }).where('hotkey', '=', hotkey).execute();
    await this.log(this.db, 'resync', hotkey, spec.id, { stage, rounds: snap ? Number(snap.rounds) : 0 });
    // No stored state yet: the initial one, made from the run's seed (every reduced round is kept until one is stored).
    if (!snap) return { kind: 'sync', run_id: spec.id, stage, rounds: 0, blob: null, hash: null };
    return this.syncTask(spec, stage, snap);
  }

  /** The newest stored state of a stage after at most `maxRounds` rounds. */
  private newestSnapshot(runId: string, stage: number, maxRounds: number) {
    return this.db
      .selectFrom('snapshots')
      .selectAll()
      .where('run_id', '=', runId)
      .where('stage', '=', stage)
      .where('status', '=', 'done')
      .$if(Number.isFinite(maxRounds), (qb) => qb.where('rounds', '<=', maxRounds))
      .orderBy('rounds', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  private async syncTask(spec: RunSpec, stage: number, snap: { rounds: number; key: string; bytes: number | null; hash: string | null }): Promise<Task> {
    return { kind: 'sync', run_id: spec.id, stage, rounds: Number(snap.rounds), blob: await this.blobRef(snap.key, spec), hash: snap.hash };
  }

  /** Every version of a run: per stage the agreed hash, how many agree and differ, and whether it is stored. */
  async versions(runId: string): Promise<VersionsResponse> {
    const spec = await this.spec(runId);
    const rows = await this.db.selectFrom('versions').selectAll().where('run_id', '=', runId).execute();
    const stored = await this.db.selectFrom('snapshots').select(['stage', 'rounds', 'hash']).where('run_id', '=', runId).where('status', '=', 'done').execute();
    const all = [...new Set([...rows.map((r) => Number(r.rounds)), ...stored.map((x) => Number(x.rounds))])].sort((a, b) => a - b);
    const versions = all.map((rounds) => {
      const stages = spec.stages.map((_, stage) => {
        const reports = JSON.parse(rows.find((r) => Number(r.rounds) === rounds && r.stage === stage)?.reports_json ?? '{}') as Record<string, string>;
        const snap = stored.find((x) => Number(x.rounds) === rounds && x.stage === stage);
        const hash = majority(reports) ?? snap?.hash ?? null;
        const values = Object.values(reports);
        return { stage, hash, agreeing: values.filter((x) => x === hash).length, diverged: values.filter((x) => x !== hash).length, stored: snap !== undefined };
      });
      return { rounds, stages, stored: stages.every((x) => x.stored) };
    });
    return { run_id: runId, rounds_done: await this.roundsDone(runId), versions };
  }

  /** A stored version's stage states, for the operator to export. */
  async storedVersion(runId: string, rounds: number): Promise<StoredVersion> {
    const spec = await this.spec(runId);
    const snaps = await this.db.selectFrom('snapshots').selectAll().where('run_id', '=', runId).where('rounds', '=', rounds).where('status', '=', 'done').execute();
    const missing = spec.stages.map((_, i) => i).filter((i) => !snaps.some((x) => x.stage === i));
    if (missing.length) throw new ApiError('not_found', `run ${runId} has no stored state of stage ${missing.join(', ')} after ${rounds} rounds (see the versions list)`);
    return {
      run_id: runId,
      rounds,
      preset: spec.preset,
      stages: await Promise.all(spec.stages.map(async (layers, stage) => {
        const x = snaps.find((y) => y.stage === stage)!;
        return { stage, layers, hash: x.hash, blob: await this.blobRef(x.key, spec) };
      })),
    };
  }

  /**
   * Takes the run back to a stored version: later rounds, their work and their states are
   * discarded, every replica reloads the version, and training goes on from there with the next
   * round's samples. The discarded rounds' contributors are recorded with the reason.
   */
  async rollback(runId: string, to: number, reason: string, offendingRound?: number): Promise<RollbackResponse> {
    const spec = await this.spec(runId);
    // Version 0 is the initial state, which every replica can make from the run's seed.
    if (to > 0) await this.storedVersion(runId, to);
    const done = await this.roundsDone(runId);
    if (to > done) throw new ApiError('bad_request', `run ${runId} has reduced ${done} rounds; it cannot roll forward to ${to}`);
    const spent: string[] = [];
    await withTransaction(this.db, async (trx) => {
      const items = await trx.selectFrom('work_items').select(['output_key', 'detail_json', 'direction', 'completed_by', 'round']).where('run_id', '=', runId).where('round', '>=', to).execute();
      const contributors = [...new Set(items.filter((i) => i.completed_by !== null).map((i) => i.completed_by!))].sort();
      for (const i of items) {
        if (i.direction === 'share') spent.push(...(JSON.parse(i.detail_json) as ShareDetail).keys);
        else if (i.output_key) spent.push(i.output_key);
      }
      const snaps = await trx.selectFrom('snapshots').select('key').where('run_id', '=', runId).where('rounds', '>', to).execute();
      spent.push(...snaps.map((x) => x.key));
      for (const table of ['work_items', 'samples', 'stage_rounds', 'rounds'] as const) await trx.deleteFrom(table).where('run_id', '=', runId).where('round', '>=', to).execute();
      await trx.deleteFrom('snapshots').where('run_id', '=', runId).where('rounds', '>', to).execute();
      await trx.deleteFrom('versions').where('run_id', '=', runId).where('rounds', '>', to).execute();
      // Checks of discarded rounds cannot be judged: the weights they ran on are gone.
      await trx.updateTable('checks').set({ status: 'expired', reason: 'rolled back' }).where('run_id', '=', runId).where('round', '>=', to).where('status', 'in', ['pending', 'leased']).execute();
      await trx.updateTable('participants').set({ resync: 1 }).where('run_id', '=', runId).where('role', '=', 'miner').execute();
      await trx.updateTable('runs').set({ status: 'active' }).where('id', '=', runId).execute();
      if (spec.rounds === undefined || to < spec.rounds) await this.enqueueRound(trx, spec, to);
      const offending = offendingRound === undefined ? {} : { round: offendingRound, offenders: [...new Set(items.filter((i) => Number(i.round) === offendingRound && i.completed_by !== null).map((i) => i.completed_by!))].sort() };
      await this.log(trx, 'rollback', null, runId, { to, from: done, reason, contributors, ...offending });
    });
    this.generations.clear();
    await this.deleteUnkept(runId, spent);
    this.wake();
    return { run_id: runId, rounds: to, discarded: done - to };
  }

  /** Reduced gradients older than a stored state are never needed again; nor are older states. */
  private async collectGarbage(spec: RunSpec, stage: number, rounds: number): Promise<void> {
    const old = await this.db
      .selectFrom('work_items')
      .select(['id', 'output_key', 'detail_json', 'direction'])
      .where('run_id', '=', spec.id)
      .where('stage', '=', stage)
      .where('round', '<', rounds)
      .where('direction', 'in', ['share', 'reduce'])
      // A reduction that lost (status 'lost') is evidence against its reducer: kept.
      .where('status', '!=', 'lost')
      .execute();
    const keys = old.flatMap((i) => (i.direction === 'reduce' ? (i.output_key ? [i.output_key] : []) : (JSON.parse(i.detail_json) as ShareDetail).keys));
    // Stored states: the newest keep_versions, and those at multiples of long_term_every, stay.
    const older = await this.db.selectFrom('snapshots').select(['key', 'rounds', 'status']).where('run_id', '=', spec.id).where('stage', '=', stage).where('rounds', '<', rounds).orderBy('rounds', 'desc').execute();
    const kept = older.filter((x) => x.status === 'done').slice(0, spec.keep_versions - 1);
    const drop = older.filter((x) => !kept.includes(x) && !(x.status === 'done' && Number(x.rounds) % spec.long_term_every === 0));
    await this.deleteUnkept(spec.id, [...keys, ...drop.map((x) => x.key)]);
    for (const x of drop) await this.db.deleteFrom('snapshots').where('run_id', '=', spec.id).where('stage', '=', stage).where('rounds', '=', x.rounds).execute();
  }

  private async maybeFinish(spec: RunSpec): Promise<void> {
    const done = await this.db.selectFrom('snapshots').select('stage').where('run_id', '=', spec.id).where('rounds', '=', spec.rounds!).where('status', '=', 'done').execute();
    if (done.length === spec.stages.length) {
      await this.db.updateTable('runs').set({ status: 'finished' }).where('id', '=', spec.id).execute();
    }
  }

  async complete(hotkey: string, req: CompleteRequest): Promise<{ status: 'accepted' | 'duplicate' }> {
    await this.participant(hotkey);
    const item = await this.db.selectFrom('work_items').selectAll().where('lease_id', '=', req.lease_id).executeTakeFirst();
    if (!item) throw new ApiError('lease_expired', `lease ${req.lease_id} is no longer valid: it expired and the work was handed to another miner`);
    if (item.leased_to !== hotkey) throw new ApiError('forbidden', `lease ${req.lease_id} belongs to another miner`);
    if (item.status === 'done') return { status: 'duplicate' };
    if (item.status !== 'leased') throw new ApiError('lease_expired', `lease ${req.lease_id} is no longer valid`);
    const spec = await this.spec(item.run_id);
    const last = spec.stages.length - 1;
    const now = this.now();
    let bytes: number | null = null;
    let detail: string | undefined;
    let sumsq: number | null = null;
    /** Every blob the completion uploaded, as checked: recorded when the completion is applied. */
    const accepted: { key: string; bytes: number; sha256: string }[] = [];
    if (item.direction === 'local') {
      // An inner step taken on the miner's own copy: nothing is uploaded.
    } else if (item.direction === 'share') {
      const d = JSON.parse(item.detail_json) as ShareDetail;
      if (req.outputs?.length !== d.keys.length) throw new ApiError('bad_request', `a share must report its ${d.keys.length} slices`);
      const sizes: number[] = [];
      try {
        for (const [j, key] of d.keys.entries()) {
          const got = await this.checkUpload(key, req.outputs[j], key, mergeKinds(spec).share, this.dims(spec, d.slices[j][1] - d.slices[j][0]));
          sizes.push(got.bytes);
          accepted.push({ key, ...got });
        }
      } catch (e) {
        // One slice refused: the share is sent again whole, so the slices checked before go too.
        for (const b of accepted) await this.store.delete(b.key);
        throw e;
      }
      detail = JSON.stringify({ ...d, bytes: sizes });
    } else if (item.direction === 'reduce') {
      const d = JSON.parse(item.detail_json) as ReduceDetail;
      if (req.sumsq === undefined || req.digest === undefined) throw new ApiError('bad_request', 'a reduce task must report the sum of squares and the digest of its slice');
      const got = await this.checkUpload(item.output_key, req.output, item.output_key, mergeKinds(spec).reduced, this.dims(spec, d.range[1] - d.range[0]));
      accepted.push({ key: item.output_key, ...got });
      bytes = got.bytes;
      sumsq = req.sumsq;
      detail = JSON.stringify({ ...d, digest: req.digest } satisfies ReduceDetail);
    } else {
      const wantsOutput = item.direction !== 'redo' && (item.direction === 'forward' ? item.stage < last || item.stage > 0 : item.stage > 0);
      if (wantsOutput) {
        const kind = item.direction === 'forward' && item.stage < last ? 'activation' : 'gradient';
        const got = await this.checkUpload(item.output_key, req.output, item.output_key, kind, this.dims(spec));
        accepted.push({ key: item.output_key, ...got });
        bytes = got.bytes;
      }
    }
    const reportsLoss = item.direction === 'forward' && item.stage === last;
    if (reportsLoss && req.loss === undefined) throw new ApiError('bad_request', 'the last stage must report the sample loss');
    const outcome = await withTransaction(this.db, async (trx) => {
      // Conditional on the lease still being this one: two completions racing apply once.
      const done = await trx
        .updateTable('work_items')
        .set({ status: 'done', completed_by: hotkey, completed_at: now, output_bytes: bytes, sumsq, ...(detail ? { detail_json: detail } : {}) })
        .where('id', '=', item.id)
        .where('lease_id', '=', req.lease_id)
        .where('status', '=', 'leased')
        .executeTakeFirst();
      if (Number(done.numUpdatedRows) === 0) return 'duplicate' as const;
      for (const blob of accepted) await recordAccepted(trx, { ...blob, run_id: item.run_id, producer: hotkey }, now);
      if (item.direction === 'share' || item.direction === 'reduce' || item.direction === 'redo' || item.direction === 'local') return 'accepted' as const;
      if (reportsLoss) await trx.updateTable('samples').set({ loss: req.loss! }).where('run_id', '=', item.run_id).where('id', '=', item.sample_id).execute();
      const forwardMiner = async (stage: number): Promise<string | null> =>
        (await trx.selectFrom('work_items').select('completed_by').where('id', '=', `${item.run_id}.${item.sample_id}.${stage}.f`).executeTakeFirst())?.completed_by ?? null;
      if (item.direction === 'forward' && item.stage < last) await this.newItem(trx, item, item.stage + 1, 'forward', item.output_key, null);
      else if (item.stage > 0) await this.newItem(trx, item, item.stage - 1, 'backward', item.output_key, await forwardMiner(item.stage - 1));
      else await trx.updateTable('samples').set({ done: 1 }).where('run_id', '=', item.run_id).where('id', '=', item.sample_id).execute();
      return 'accepted' as const;
    });
    if (outcome === 'accepted') {
      if (item.direction === 'share' || ((item.direction === 'forward' || item.direction === 'backward') && (bytes !== null || reportsLoss))) await this.drawCheck(spec, { ...item, completed_by: hotkey, detail_json: detail ?? item.detail_json }, req.loss ?? null);
      // Only the last gradient item of a stage, or a share or reduce step, can move a round on.
      if (item.direction === 'share' || item.direction === 'reduce' || item.direction === 'local' || (await this.stageCovered(spec, Number(item.round), item.stage, item.direction))) await this.advance(spec);
      // The sample's next item is on the neighbouring stage (advance wakes everyone when a phase moves).
      if (item.direction === 'forward' && item.stage < last) this.wake(item.stage + 1);
      else if ((item.direction === 'forward' || item.direction === 'backward') && item.stage > 0) this.wake(item.stage - 1);
    }
    return { status: outcome };
  }

  /** Whether every sample of (round, stage) has its gradient done, so the stage may start its share. */
  private async stageCovered(spec: RunSpec, round: number, stage: number, direction: ItemKind): Promise<boolean> {
    const last = spec.stages.length - 1;
    const kinds: ItemKind[] = stage === last ? ['forward', 'redo'] : ['backward', 'redo'];
    if (!kinds.includes(direction)) return false;
    const row = await this.db
      .selectFrom('work_items')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('run_id', '=', spec.id)
      .where('round', '=', round)
      .where('stage', '=', stage)
      .where('direction', 'in', kinds)
      .where('status', '=', 'done')
      .executeTakeFirst();
    return Number(row?.n ?? 0) >= spec.samples_per_round;
  }

  async release(hotkey: string, leaseId: string): Promise<void> {
    await this.participant(hotkey);
    const r = await this.db
      .updateTable('work_items')
      .set({ status: 'pending', lease_id: null, leased_to: null, lease_expires: null })
      .where('lease_id', '=', leaseId)
      .where('leased_to', '=', hotkey)
      .where('status', '=', 'leased')
      .returning('stage')
      .executeTakeFirst();
    if (!r) throw new ApiError('not_found', `no lease ${leaseId} held by ${hotkey}`);
    this.wake(r.stage);
  }

  /**
   * A miner found an input of its lease unusable (not finite, malformed). The blob's producer is
   * recorded, its work is offered again to anyone else, and its gradient sum for the round, which
   * may hold the same garbage, is not used: what it covered is re-issued too.
   */
  async reject(hotkey: string, req: { lease_id: string; reason: string; key?: string; sha256?: string }): Promise<void> {
    const { lease_id: leaseId, reason } = req;
    await this.participant(hotkey);
    const item = await this.db.selectFrom('work_items').selectAll().where('lease_id', '=', leaseId).where('leased_to', '=', hotkey).where('status', '=', 'leased').executeTakeFirst();
    if (!item) throw new ApiError('not_found', `no lease ${leaseId} held by ${hotkey}`);
    const spec = await this.spec(item.run_id);
    // A claim that an input is not what was accepted is checked against the stored blob first.
    const changed = req.key !== undefined && req.sha256 !== undefined ? await changedSinceAccepted(this.db, this.store, req.key) : null;
    if (changed?.changed === false) {
      await withTransaction(this.db, async (trx) => {
        await trx.updateTable('work_items').set({ status: 'pending', lease_id: null, leased_to: null, lease_expires: null, not_hotkey: hotkey }).where('id', '=', item.id).execute();
        await this.log(trx, 'bad_blob_unconfirmed', hotkey, spec.id, { key: req.key, reported: req.sha256, reason: reason.slice(0, 500) });
      });
      this.wake(item.stage);
      return;
    }
    const evidence = (key: string | undefined): Record<string, unknown> => ({ key, reason: reason.slice(0, 500), found_by: hotkey, ...(changed?.changed ? { accepted_sha256: changed.accepted!.sha256, stored_sha256: changed.stored } : {}) });
    const flagKind = changed?.changed ? 'bad_blob' : 'bad_upload';
    /** Named by the request, or else by the reason's text (older miners). */
    const names = (key: string): boolean => (req.key !== undefined ? req.key === key : reason.includes(key));
    let spentKey: string | null = null;
    await withTransaction(this.db, async (trx) => {
      if (item.direction === 'reduce') {
        // A reducer found a bad share: that replica's whole contribution goes.
        const d = JSON.parse(item.detail_json) as ReduceDetail;
        const bad = d.inputs.find((i) => names(i.key)) ?? null;
        const culprit = bad?.hotkey ?? null;
        await this.log(trx, 'bad_upload', culprit, spec.id, { by: hotkey, item: item.id, reason: reason.slice(0, 500) });
        if (culprit) {
          await this.flag(trx, spec.id, culprit, flagKind, Number(item.round), item.stage, evidence(bad!.key));
          await this.expel(trx, spec, culprit, item.stage, Number(item.round));
        } else {
          await trx.updateTable('work_items').set({ status: 'pending', lease_id: null, leased_to: null, lease_expires: null }).where('id', '=', item.id).execute();
          await this.reassignReduction(trx, spec, { ...item, status: 'pending' }, hotkey);
        }
        return;
      }
      // Which upload is bad: the reason names its key (the lease's input or forward input).
      const candidates = [item.input_key, await this.stageInputKey(trx, item)].filter((k): k is string => k !== null);
      const badKey = candidates.find(names) ?? candidates[0];
      const producer = badKey ? await trx.selectFrom('work_items').selectAll().where('output_key', '=', badKey).where('status', '=', 'done').executeTakeFirst() : undefined;
      await this.log(trx, 'bad_upload', producer?.completed_by ?? null, spec.id, { by: hotkey, item: item.id, key: badKey, reason: reason.slice(0, 500) });
      if (!producer) {
        await trx.updateTable('work_items').set({ status: 'pending', lease_id: null, leased_to: null, lease_expires: null, not_hotkey: hotkey }).where('id', '=', item.id).execute();
        return;
      }
      // The consumer's item disappears; the producer's item, redone, will create it again.
      if (producer.output_key === item.input_key) await trx.deleteFrom('work_items').where('id', '=', item.id).execute();
      else await trx.updateTable('work_items').set({ status: 'pending', lease_id: null, leased_to: null, lease_expires: null }).where('id', '=', item.id).execute();
      await this.deleteDownstream(trx, producer);
      await trx
        .updateTable('work_items')
        .set({ status: 'pending', lease_id: null, leased_to: null, lease_expires: null, completed_by: null, completed_at: null, output_bytes: null, required_hotkey: null, not_hotkey: producer.completed_by })
        .where('id', '=', producer.id)
        .execute();
      spentKey = badKey!;
      if (producer.completed_by) await this.flag(trx, spec.id, producer.completed_by, flagKind, Number(producer.round), producer.stage, evidence(badKey));
      if (producer.completed_by) await this.expel(trx, spec, producer.completed_by, producer.stage, Number(producer.round));
    });
    // The refused blob goes once the transaction that re-issued its work is committed.
    if (spentKey !== null) {
      await this.store.delete(spentKey).catch(() => {});
      await forgetAccepted(this.db, [spentKey]);
    }
    await this.advance(spec);
    this.wake();
  }

  /**
   * A reader outside a work lease (a replica loading a stored state, a validator re-running a
   * check) found a blob not as accepted. Confirmed: its producer is flagged and excluded, a stored
   * state is no longer offered, a reduced copy no longer used, and the checks that read it are
   * void (what they would judge was changed).
   */
  async refusal(hotkey: string, req: { key: string; sha256: string; reason: string }): Promise<'confirmed' | 'unconfirmed'> {
    const p = await this.participant(hotkey);
    const spec = await this.spec(p.run_id);
    const { changed, accepted, stored } = await changedSinceAccepted(this.db, this.store, req.key);
    if (!changed || !accepted || accepted.run_id !== spec.id) {
      await this.log(this.db, 'bad_blob_unconfirmed', hotkey, spec.id, { key: req.key, reported: req.sha256, reason: req.reason.slice(0, 500) });
      return 'unconfirmed';
    }
    const snapshot = await this.db.selectFrom('snapshots').select(['stage', 'rounds']).where('run_id', '=', spec.id).where('key', '=', req.key).executeTakeFirst();
    const item = await this.db.selectFrom('work_items').select(['id', 'round', 'stage', 'direction']).where('run_id', '=', spec.id).where('output_key', '=', req.key).executeTakeFirst();
    const round = snapshot ? Number(snapshot.rounds) - 1 : item ? Number(item.round) : null;
    const stage = snapshot?.stage ?? item?.stage ?? null;
    await withTransaction(this.db, async (trx) => {
      if (snapshot) await trx.deleteFrom('snapshots').where('run_id', '=', spec.id).where('stage', '=', snapshot.stage).where('rounds', '=', snapshot.rounds).execute();
      if (item?.direction === 'reduce') await trx.updateTable('work_items').set({ status: 'lost' }).where('id', '=', item.id).execute();
      const open = await trx.selectFrom('checks').select(['id', 'keys_json']).where('run_id', '=', spec.id).where('status', 'in', ['pending', 'leased']).execute();
      const void_ = open.filter((c) => (JSON.parse(c.keys_json) as string[]).includes(req.key)).map((c) => c.id);
      if (void_.length) await trx.updateTable('checks').set({ status: 'expired', reason: `blob ${req.key} was changed after it was accepted` }).where('id', 'in', void_).execute();
      if (accepted.producer) {
        await this.flag(trx, spec.id, accepted.producer, 'bad_blob', round, stage, { key: req.key, accepted_sha256: accepted.sha256, stored_sha256: stored, found_by: hotkey, reason: req.reason.slice(0, 500) });
        await this.exclude(trx, spec, accepted.producer);
      }
    });
    await this.deleteUnkept(spec.id, this.restartSpent.splice(0));
    await this.advance(spec);
    this.wake();
    return 'confirmed';
  }

  /**
   * A miner caught uploading garbage: its sum for the round is untrusted (re-issued, not to it), and
   * it is dropped, so it must register again and start from a clean sum.
   */
  private async expel(trx: Transaction<Database>, spec: RunSpec, hotkey: string, stage: number, round: number): Promise<void> {
    await this.loseContribution(trx, spec, hotkey, stage, round, true);
    await this.forget(trx, spec, hotkey, stage);
    await trx.updateTable('participants').set({ status: 'excluded' }).where('hotkey', '=', hotkey).execute();
    await this.log(trx, 'excluded', hotkey, spec.id, { stage, round });
  }

  /** Blobs of restarted rounds, deleted once the transaction that restarted them is committed. */
  private restartSpent: string[] = [];

  /**
   * A miner caught cheating outside its own round's compute (a failed check, a CLASP flag, a
   * reduced slice not as reported): if it worked in the open round, that round starts again
   * without it, and it takes no further part in the run.
   */

  private async exclude(trx: Transaction<Database>, spec: RunSpec, hotkey: string): Promise<void> {
    const p = await trx.selectFrom('participants').select(['status', 'stage', 'run_id']).where('hotkey', '=', hotkey).executeTakeFirst();
    if (!p || p.run_id !== spec.id || p.status === 'excluded') return;
    if (p.status === 'active' && p.stage !== null) {
      const open = await trx.selectFrom('rounds').select('round').where('run_id', '=', spec.id).where('status', '=', 'compute').execute();
      for (const r of open) {
        const worked = await trx.selectFrom('work_items').select('id').where('run_id', '=', spec.id).where('round', '=', r.round).where('completed_by', '=', hotkey).where('direction', 'in', ['forward', 'backward', 'redo']).executeTakeFirst();
        if (worked) this.restartSpent.push(...(await this.restartRound(trx, spec, Number(r.round), { excluded: hotkey })));
      }
      await this.forget(trx, spec, hotkey, p.stage);
    }
    await trx.updateTable('participants').set({ status: 'excluded' }).where('hotkey', '=', hotkey).execute();
    await this.log(trx, 'excluded', hotkey, spec.id, { stage: p.stage });
  }

  /** The key of a work item's stage input (null at stage 0, whose input is the sample). */
  private async stageInputKey(db: Kysely<Database>, item: Item): Promise<string | null> {
    if (item.stage === 0) return null;
    const fwd = await db.selectFrom('work_items').select('input_key').where('id', '=', `${item.run_id}.${item.sample_id}.${item.stage}.f`).executeTakeFirst();
    return fwd?.input_key ?? null;
  }

  /** Items created by `producer`'s completion that are not done yet (done ones cannot exist while its output is unread). */
  private async deleteDownstream(trx: Transaction<Database>, producer: Item): Promise<void> {
    await trx.deleteFrom('work_items').where('run_id', '=', producer.run_id).where('input_key', '=', producer.output_key).where('status', 'in', ['pending', 'leased']).where('direction', 'in', ['forward', 'backward']).execute();
  }

  /**
   * `hotkey`'s gradient sum for (round, stage) is gone or untrusted: the samples it covered are
   * re-issued as redo items (not to it when `flagged`), and the stage's share starts again.
   */
  private async loseContribution(trx: Transaction<Database>, spec: RunSpec, hotkey: string, stage: number, round: number, flagged: boolean): Promise<void> {
    const sr = await trx.selectFrom('stage_rounds').selectAll().where('run_id', '=', spec.id).where('round', '=', round).where('stage', '=', stage).executeTakeFirst();
    const r = await trx.selectFrom('rounds').select('status').where('run_id', '=', spec.id).where('round', '=', round).executeTakeFirst();
    if (!sr || r?.status !== 'compute') return;
    if (spec.mode === 'local') return this.loseLocalContribution(trx, spec, hotkey, stage, round, flagged, sr);
    if (!flagged && sr.phase !== 'compute') {
      // A share already stored is as good as the replica: nothing is lost.
      const share = await trx.selectFrom('work_items').select('status').where('id', '=', this.shareId(spec.id, round, stage, Number(sr.attempt), hotkey)).executeTakeFirst();
      if (!share || share.status === 'done') return;
    }
    const last = spec.stages.length - 1;
    const covered = await trx
      .selectFrom('work_items')
      .selectAll()
      .where('run_id', '=', spec.id)
      .where('round', '=', round)
      .where('stage', '=', stage)
      .where('direction', 'in', stage === last ? ['forward', 'redo'] : ['backward', 'redo'])
      .where('status', '=', 'done')
      .where('completed_by', '=', hotkey)
      .execute();
    if (covered.length === 0 && sr.phase === 'compute') return;
    for (const c of covered) {
      await trx.updateTable('work_items').set({ status: 'lost' }).where('id', '=', c.id).execute();
      await trx
        .insertInto('work_items')
        .values({ ...this.itemRow(spec.id, c.sample_id, stage, 'redo', c.input_key, null, round), id: `${spec.id}.${c.sample_id}.${stage}.redo-${newLeaseId().slice(0, 12)}`, not_hotkey: flagged ? hotkey : null })
        .execute();
    }
    if (sr.phase !== 'compute') {
      await trx.deleteFrom('work_items').where('run_id', '=', spec.id).where('round', '=', round).where('stage', '=', stage).where('direction', 'in', ['share', 'reduce']).execute();
      await trx.updateTable('stage_rounds').set({ phase: 'compute', attempt: Number(sr.attempt) + 1, sumsq: null }).where('run_id', '=', spec.id).where('round', '=', round).where('stage', '=', stage).execute();
    }
    await this.log(trx, 'contribution_lost', hotkey, spec.id, { round, stage, samples: covered.length, flagged });
  }

  /**
   * Local mode: nothing is redone (a replica's own steps are its own); its inner step is dropped,
   * and a merge it was part of starts again without it, unless its share is already stored.
   */
  private async loseLocalContribution(trx: Transaction<Database>, spec: RunSpec, hotkey: string, stage: number, round: number, flagged: boolean, sr: { phase: string; attempt: number; contributors_json: string }): Promise<void> {
    await trx.deleteFrom('work_items').where('run_id', '=', spec.id).where('round', '=', round).where('stage', '=', stage).where('direction', '=', 'local').where('required_hotkey', '=', hotkey).where('status', '!=', 'done').execute();
    if ((sr.phase !== 'share' && sr.phase !== 'reduce') || !(JSON.parse(sr.contributors_json) as string[]).includes(hotkey)) return;
    const share = await trx.selectFrom('work_items').select('status').where('id', '=', this.shareId(spec.id, round, stage, Number(sr.attempt), hotkey)).executeTakeFirst();
    if (!flagged && share?.status === 'done') return;
    await trx.deleteFrom('work_items').where('run_id', '=', spec.id).where('round', '=', round).where('stage', '=', stage).where('direction', 'in', ['share', 'reduce']).execute();
    await trx.updateTable('stage_rounds').set({ phase: 'local', attempt: Number(sr.attempt) + 1, sumsq: null }).where('run_id', '=', spec.id).where('round', '=', round).where('stage', '=', stage).execute();
    await this.log(trx, 'merge_restarted', hotkey, spec.id, { round, stage, flagged });
  }

  private shareId(runId: string, round: number, stage: number, attempt: number, hotkey: string): string {
    return `${runId}.r${round}.${stage}.a${attempt}.share.${hotkey}`;
  }

  /** Share items for a stage's contributors: each uploads its buffer (`what`) in sliceCount(C) slices. */
  private async startShare(trx: Transaction<Database>, spec: RunSpec, r: number, s: number, attempt: number, contributors: string[], what: 'grad' | 'delta'): Promise<void> {
    const slices = splitRange(this.model(spec).stageParams[s], sliceCount(contributors.length));
    const grant = newLeaseId(); // in the keys: a rollback repeats round, stage and attempt while their old blobs are being deleted
    for (const h of contributors) {
      const keys = slices.map((_, j) => this.roundKey(spec.id, r, s, attempt, `share-${h}-${j}-${grant}`));
      await trx.insertInto('work_items').values({ ...this.itemRow(spec.id, `r${r}-s0`, s, 'share', null, h, r), id: this.shareId(spec.id, r, s, attempt, h), detail_json: JSON.stringify({ slices, keys, what } satisfies ShareDetail) }).execute();
    }
    await trx.updateTable('stage_rounds').set({ phase: 'share', contributors_json: JSON.stringify(contributors) }).where('run_id', '=', spec.id).where('round', '=', r).where('stage', '=', s).execute();
  }

  // ---- redundant reduction ----
  //
  // Every slice of a stage's all-reduce is reduced by two different miners, picked at random by
  // the orchestrator (a miner cannot choose its partner, or know it). Reductions are deterministic
  // (fixed input order, float32), so honest results are bit-identical: the two digests and sums of
  // squares must match. When they do not, the slice goes to a third reducer (another replica of
  // the stage, else a miner of another stage: summing needs no weights), and so on until two
  // different miners agree; whoever disagreed with the agreed result is flagged, and its result
  // kept as evidence. A reducer that vanishes has its copy reassigned.

  /** The miners of the run that are alive: same stage first, each group in random order. */
  private async liveMiners(trx: Kysely<Database>, runId: string, stage: number): Promise<string[]> {
    const rows = await trx.selectFrom('participants').select(['hotkey', 'stage']).where('run_id', '=', runId).where('role', '=', 'miner').where('status', '=', 'active').execute();
    return [...shuffled(rows.filter((p) => p.stage === stage)), ...shuffled(rows.filter((p) => p.stage !== stage))].map((p) => p.hotkey);
  }

  /**
   * Who reduces each slice. An even number C of contributors cuts the stage into C/2 slices, and a
   * random permutation pairs them up: slice j goes to perm[j] and perm[C/2 + j], so each replica
   * reduces one slice of 2/C. An odd number cuts C slices: copy 0 of slice j goes to perm[j], copy
   * 1 to a random derangement of perm, so each replica reduces two slices of 1/C. The bytes are the
   * same either way; the even plan takes one task a replica instead of two. No slice is reduced
   * twice by one miner. A lone contributor's partner is a live miner of another stage, when there
   * is one.
   */
  private async reducerPlan(trx: Kysely<Database>, spec: RunSpec, contributors: string[], slices: number): Promise<string[][]> {
    const first = shuffled(contributors);
    if (contributors.length >= 2 && slices * 2 === contributors.length) return Array.from({ length: slices }, (_, j) => [first[j], first[slices + j]]);
    if (contributors.length >= 2) {
      let second = shuffled(first);
      while (second.some((h, j) => h === first[j])) second = shuffled(first);
      return Array.from({ length: slices }, (_, j) => [first[j % first.length], second[j % second.length]]);
    }
    const [partner] = (await this.liveMiners(trx, spec.id, -1)).filter((h) => h !== contributors[0]);
    return Array.from({ length: slices }, () => (partner ? [contributors[0], partner] : [contributors[0]]));
  }

  /** A copy of a slice's reduction; its output key is set when it is leased (reducedKey). */
  private async insertReduceCopy(trx: Kysely<Database>, spec: RunSpec, round: number, stage: number, attempt: number, d: ReduceDetail, reducer: string | null): Promise<void> {
    const row = this.itemRow(spec.id, `r${round}-s0`, stage, 'reduce', null, reducer, round);
    await trx
      .insertInto('work_items')
      .values({ ...row, id: `${spec.id}.r${round}.${stage}.a${attempt}.reduce.${d.slice}.${d.copy}`, detail_json: JSON.stringify({ ...d, attempt } satisfies ReduceDetail) })
      .execute();
  }

  /** The other copies of `item`'s slice (same round, stage and attempt). */
  private async siblingCopies(trx: Kysely<Database>, item: Item): Promise<Item[]> {
    const d = JSON.parse(item.detail_json) as ReduceDetail;
    const prefix = item.id.slice(0, item.id.lastIndexOf('.reduce.'));
    const all = await trx.selectFrom('work_items').selectAll().where('run_id', '=', item.run_id).where('round', '=', item.round).where('stage', '=', item.stage).where('direction', '=', 'reduce').execute();
    return all.filter((c) => c.id !== item.id && c.id.startsWith(`${prefix}.reduce.${d.slice}.`));
  }

  /** A live miner that has not reduced (and is not reducing) this slice, or null. */
  private async freshReducer(trx: Kysely<Database>, spec: RunSpec, stage: number, used: Set<string>): Promise<string | null> {
    return (await this.liveMiners(trx, spec.id, stage)).find((h) => !used.has(h)) ?? null;
  }

  /** Gives a pending copy whose reducer is gone (or gave it back) to someone else. */
  private async reassignReduction(trx: Kysely<Database>, spec: RunSpec, copy: Item, gone: string): Promise<void> {
    const used = new Set([gone, ...(await this.siblingCopies(trx, copy)).map((c) => c.completed_by ?? c.required_hotkey).filter((h): h is string => h !== null)]);
    const reducer = await this.freshReducer(trx, spec, copy.stage, used);
    // Nobody left who has not reduced it: anyone at the stage (agreement still needs two miners).
    await trx.updateTable('work_items').set({ required_hotkey: reducer, not_hotkey: reducer === null ? gone : null }).where('id', '=', copy.id).execute();
    await this.log(trx, 'reduction_reassigned', gone, spec.id, { item: copy.id, to: reducer });
  }

  /**
   * Checks the copies of every slice of (round, stage): issues another copy where the results in
   * disagree, and once every slice has an agreed result flags the losers and answers the stage's
   * sum of squares (null while some slice is not agreed).
   */
  private async judgeReductions(trx: Transaction<Database>, spec: RunSpec, round: number, stage: number, attempt: number): Promise<{ sumsq: number | null; issued: boolean }> {
    const copies = (await trx.selectFrom('work_items').selectAll().where('run_id', '=', spec.id).where('round', '=', round).where('stage', '=', stage).where('direction', '=', 'reduce').execute()).map((item) => ({
      item,
      d: JSON.parse(item.detail_json) as ReduceDetail,
    }));
    const resultKey = (c: (typeof copies)[number]): string => `${c.d.digest}|${Number(c.item.sumsq)}`;
    const bySlice = new Map<number, typeof copies>();
    for (const c of copies) bySlice.set(c.d.slice, [...(bySlice.get(c.d.slice) ?? []), c]);
    let sumsq = 0;
    let agreedAll = copies.length > 0;
    let issued = false;
    const losers: { loser: (typeof copies)[number]; winners: typeof copies }[] = [];
    for (const [slice, list] of [...bySlice].sort((a, b) => a[0] - b[0])) {
      const done = list.filter((c) => c.item.status === 'done');
      const groups = new Map<string, typeof copies>();
      for (const c of done) {
        const k = resultKey(c);
        if (!(groups.get(k) ?? []).some((x) => x.item.completed_by === c.item.completed_by)) groups.set(k, [...(groups.get(k) ?? []), c]);
      }
      const quorum = Math.min(...list.map((c) => c.d.quorum));
      const winners = [...groups.values()].sort((a, b) => b.length - a.length)[0];
      if (winners && winners.length >= quorum) {
        sumsq += Number(winners[0].item.sumsq);
        // Everyone whose result differs from the agreed one (a repeat by an agreeing miner is not a loser).
        const agreed = resultKey(winners[0]);
        for (const c of done) if (resultKey(c) !== agreed) losers.push({ loser: c, winners });
        continue;
      }
      agreedAll = false;
      if (list.some((c) => c.item.status === 'pending' || c.item.status === 'leased')) continue;
      // Every copy is in and no two miners agree: one more copy, by someone new.
      const used = new Set(list.map((c) => c.item.completed_by ?? c.item.required_hotkey).filter((h): h is string => h !== null));
      const reducer = await this.freshReducer(trx, spec, stage, used);
      if (reducer === null) {
        await this.log(trx, 'reduction_waiting', null, spec.id, { round, stage, slice, reason: 'no miner left that has not reduced this slice' });
        continue;
      }
      const { digest: _, ...template } = list[0].d;
      await this.insertReduceCopy(trx, spec, round, stage, attempt, { ...template, copy: Math.max(...list.map((c) => c.d.copy)) + 1, quorum: 2 }, reducer);
      await this.log(trx, 'reduction_disputed', null, spec.id, { round, stage, slice, digests: done.map((c) => ({ by: c.item.completed_by, digest: c.d.digest })), third: reducer });
      issued = true;
    }
    if (!agreedAll) return { sumsq: null, issued };
    for (const { loser, winners } of losers) {
      await trx.updateTable('work_items').set({ status: 'lost' }).where('id', '=', loser.item.id).execute();
      await this.flag(trx, spec.id, loser.item.completed_by!, 'bad_reduction', round, stage, {
        slice: loser.d.slice,
        range: loser.d.range,
        key: loser.item.output_key,
        digest: loser.d.digest,
        sumsq: Number(loser.item.sumsq),
        agreed_digest: winners[0].d.digest,
        agreed_sumsq: Number(winners[0].item.sumsq),
        agreed_by: winners.map((w) => w.item.completed_by),
        agreed_keys: winners.map((w) => w.item.output_key),
      });
    }
    return { sumsq, issued };
  }

  /** Records that `hotkey` was caught doing wrong, with what shows it. */
  private async flag(trx: Kysely<Database>, runId: string, hotkey: string, kind: Flag['kind'], round: number | null, stage: number | null, evidence: Record<string, unknown>): Promise<void> {
    await trx.insertInto('flags').values({ run_id: runId, hotkey, kind, round, stage, at: this.now(), evidence_json: JSON.stringify(evidence) }).execute();
    await this.log(trx, `flag_${kind}`, hotkey, runId, { round, stage });
  }

  /** Everyone flagged in a run, oldest first. */
  async flags(runId: string): Promise<Flag[]> {
    await this.spec(runId);
    const rows = await this.db.selectFrom('flags').selectAll().where('run_id', '=', runId).orderBy('id').execute();
    return rows.map((f) => ({ hotkey: f.hotkey, kind: f.kind, round: f.round === null ? null : Number(f.round), stage: f.stage === null ? null : Number(f.stage), at: Number(f.at), evidence: JSON.parse(f.evidence_json) as Record<string, unknown> }));
  }

  /**
   * Moves the run's open round along: stages whose samples are all covered start their share,
   * shared stages get their reduce items, and when every stage is reduced the round's step is
   * fixed and the next round queued. Idempotent; called after anything that may let it move.
   */
  private async advance(spec: RunSpec): Promise<void> {
    const spent: string[] = [];
    let tripped: ({ round: number } & GuardVerdict) | null = null;
    // Validators wait for reduced rounds, not for the phases of stages.
    let reduced = false;
    const moved = await withTransaction(this.db, async (trx) => {
      reduced = false;
      const round = await trx
        .selectFrom('rounds')
        .selectAll()
        .where('run_id', '=', spec.id)
        .where('status', '=', 'compute')
        .orderBy('round')
        .limit(1)
        .$if(isPostgres(trx), (qb) => qb.forUpdate())
        .executeTakeFirst();
      if (!round) return false;
      const r = Number(round.round);
      const last = spec.stages.length - 1;
      let changed = false;
      const stages = await trx.selectFrom('stage_rounds').selectAll().where('run_id', '=', spec.id).where('round', '=', r).orderBy('stage').execute();
      const counts = await trx
        .selectFrom('work_items')
        .select(['stage', 'direction', 'status', (eb) => eb.fn.countAll<number>().as('n')])
        .where('run_id', '=', spec.id)
        .where('round', '=', r)
        .groupBy(['stage', 'direction', 'status'])
        .execute();
      const count = (stage: number, directions: string[], statuses: string[]): number =>
        counts.filter((c) => c.stage === stage && directions.includes(c.direction) && statuses.includes(c.status)).reduce((n, c) => n + Number(c.n), 0);
      for (const sr of stages) {
        const s = sr.stage;
        const attempt = Number(sr.attempt);
        if (sr.phase === 'compute') {
          const gradientKinds: ItemKind[] = s === last ? ['forward', 'redo'] : ['backward', 'redo'];
          if (count(s, gradientKinds, ['done']) !== spec.samples_per_round || count(s, ['redo'], ['pending', 'leased']) > 0) continue;
          const rows = await trx.selectFrom('work_items').select('completed_by').distinct().where('run_id', '=', spec.id).where('round', '=', r).where('stage', '=', s).where('direction', 'in', gradientKinds).where('status', '=', 'done').execute();
          const contributors = rows.map((x) => x.completed_by!).sort();
          if (spec.mode === 'local') {
            // Each replica steps on its own sum: an inner step, no all-reduce.
            for (const h of contributors) await trx.insertInto('work_items').values({ ...this.itemRow(spec.id, `r${r}-s0`, s, 'local', null, h, r), id: `${spec.id}.r${r}.${s}.local.${h}` }).execute();
            await trx.updateTable('stage_rounds').set({ phase: 'local' }).where('run_id', '=', spec.id).where('round', '=', r).where('stage', '=', s).execute();
          } else await this.startShare(trx, spec, r, s, attempt, contributors, 'grad');
          changed = true;
        } else if (sr.phase === 'local') {
          const locals = await trx.selectFrom('work_items').select('status').where('run_id', '=', spec.id).where('round', '=', r).where('stage', '=', s).where('direction', '=', 'local').execute();
          if (locals.some((x) => x.status !== 'done')) continue;
          if (!isMergeRound(spec, r)) {
            await trx.updateTable('stage_rounds').set({ phase: 'done', sumsq: 0 }).where('run_id', '=', spec.id).where('round', '=', r).where('stage', '=', s).execute();
            sr.phase = 'done';
            sr.sumsq = 0;
          } else {
            // A merge: every replica still here that stepped since the last one shares its pseudo-gradient.
            const stepped = await trx
              .selectFrom('work_items')
              .select('completed_by')
              .distinct()
              .where('run_id', '=', spec.id)
              .where('stage', '=', s)
              .where('direction', '=', 'local')
              .where('status', '=', 'done')
              .where('round', '>=', r - (r % spec.local.steps))
              .where('round', '<=', r)
              .execute();
            const active = new Set((await trx.selectFrom('participants').select('hotkey').where('run_id', '=', spec.id).where('stage', '=', s).where('status', '=', 'active').execute()).map((x) => x.hotkey));
            const contributors = stepped.map((x) => x.completed_by!).filter((h) => active.has(h)).sort();
            if (contributors.length === 0) {
              await this.log(trx, 'merge_waiting', null, spec.id, { round: r, stage: s, reason: 'no replica that stepped since the last merge is left' });
              continue;
            }
            await this.startShare(trx, spec, r, s, attempt, contributors, 'delta');
          }
          changed = true;
        } else if (sr.phase === 'share') {
          const shares = await trx.selectFrom('work_items').select(['status', 'required_hotkey', 'detail_json']).where('run_id', '=', spec.id).where('round', '=', r).where('stage', '=', s).where('direction', '=', 'share').execute();
          if (shares.length === 0 || shares.some((x) => x.status !== 'done')) continue;
          const contributors = JSON.parse(sr.contributors_json) as string[];
          const details = new Map(shares.map((x) => [x.required_hotkey!, JSON.parse(x.detail_json) as ShareDetail & { bytes: number[] }]));
          const slices = details.get(contributors[0])!.slices;
          const reducers = await this.reducerPlan(trx, spec, contributors, slices.length);
          for (const [j, range] of slices.entries()) {
            const inputs = contributors.map((h) => ({ hotkey: h, key: details.get(h)!.keys[j], bytes: details.get(h)!.bytes[j] }));
            for (const [copy, reducer] of reducers[j].entries()) {
              // The mean over the round's samples (exact), or over the replicas' pseudo-gradients (local).
              const scale = spec.mode === 'local' ? 1 / contributors.length : 1 / spec.samples_per_round;
              await this.insertReduceCopy(trx, spec, r, s, attempt, { range, scale, inputs, slice: j, copy, quorum: reducers[j].length }, reducer);
            }
          }
          await trx.updateTable('stage_rounds').set({ phase: 'reduce' }).where('run_id', '=', spec.id).where('round', '=', r).where('stage', '=', s).execute();
          changed = true;
        } else if (sr.phase === 'reduce') {
          const verdict = await this.judgeReductions(trx, spec, r, s, attempt);
          if (verdict.issued) changed = true;
          if (verdict.sumsq === null) continue;
          const sumsq = verdict.sumsq;
          await trx.updateTable('stage_rounds').set({ phase: 'done', sumsq }).where('run_id', '=', spec.id).where('round', '=', r).where('stage', '=', s).execute();
          sr.phase = 'done';
          sr.sumsq = sumsq;
          changed = true;
        }
      }
      if (stages.every((sr) => sr.phase === 'done')) {
        const gradSumSq = stages.reduce((a, sr) => a + Number(sr.sumsq), 0);
        const guard = spec.mode === 'local' ? { ...spec.guard, grad_spike: 0 } : spec.guard;
        const verdict = judgeRound(guard, await this.roundFigures(trx, spec.id, r, guard.window), { loss: await this.roundLoss(trx, spec.id, r), gradNorm: Math.sqrt(gradSumSq) });
        if (verdict) {
          const earlier = (await trx.selectFrom('events').select('details_json').where('run_id', '=', spec.id).where('kind', '=', 'guard_tripped').execute()).filter((e) => (JSON.parse(e.details_json) as { round?: number }).round === r).length;
          if (earlier < spec.guard.max_rollbacks) {
            await this.log(trx, 'guard_tripped', null, spec.id, { round: r, reason: verdict.reason });
            tripped = { round: r, ...verdict };
            return changed;
          }
          await this.log(trx, 'guard_overridden', null, spec.id, { round: r, reason: verdict.reason, rollbacks: earlier });
        }
        const optim = fromOptimizerSpec(spec.optimizer);
        await trx
          .updateTable('rounds')
          .set({ status: 'reduced', reduced_at: this.now(), grad_sumsq: gradSumSq, clip: clipCoefficient(gradSumSq, optim), lr: learningRate(r, optim) })
          .where('run_id', '=', spec.id)
          .where('round', '=', r)
          .execute();
        if (spec.rounds === undefined || r + 1 < spec.rounds) await this.enqueueRound(trx, spec, r + 1);
        await this.log(trx, 'round_reduced', null, spec.id, { round: r, grad_norm: Math.sqrt(gradSumSq) });
        reduced = true;
        // The round's activations and gradients are never read again (a redo happens within its round).
        const blobs = await trx.selectFrom('work_items').select('output_key').where('run_id', '=', spec.id).where('round', '=', r).where('direction', 'in', ['forward', 'backward']).where('output_key', '!=', '').execute();
        spent.push(...blobs.map((b) => b.output_key));
        changed = true;
      }
      return changed;
    });
    if (moved) this.wake(undefined, reduced);
    await this.deleteUnkept(spec.id, spent);
    if (moved) {
      await this.expireChecks(spec);
      await this.closeEpochs(spec);
    }
    if (tripped) {
      // Back to the newest stored state the fault had not reached (the initial state at worst).
      const t: { round: number } & GuardVerdict = tripped;
      const limit = t.badFrom === 'this_round' ? t.round : t.round - 1;
      const target = (await this.versions(spec.id)).versions.filter((v) => v.stored && v.rounds <= limit).at(-1)?.rounds ?? 0;
      await this.rollback(spec.id, target, `automatic: round ${t.round}: ${t.reason}`, t.round);
    }
  }

  /** Mean sample loss of a round (null while none is known). */
  private async roundLoss(db: Kysely<Database>, runId: string, round: number): Promise<number | null> {
    const row = await db.selectFrom('samples').select((eb) => eb.fn.avg<number>('loss').as('loss')).where('run_id', '=', runId).where('round', '=', round).executeTakeFirst();
    return row?.loss === null || row?.loss === undefined ? null : Number(row.loss);
  }

  /** Loss and gradient norm of the last `window` reduced rounds before `round`, oldest first. */
  private async roundFigures(db: Kysely<Database>, runId: string, round: number, window: number): Promise<RoundFigures[]> {
    const rows = await db.selectFrom('rounds').select(['round', 'grad_sumsq']).where('run_id', '=', runId).where('status', '=', 'reduced').where('round', '<', round).orderBy('round', 'desc').limit(window).execute();
    const out: RoundFigures[] = [];
    for (const r of rows.reverse()) out.push({ loss: await this.roundLoss(db, runId, Number(r.round)), gradNorm: Math.sqrt(Number(r.grad_sumsq)) });
    return out;
  }

  // ---- checks (validators) ----
  //
  // When a miner's work item is in, the orchestrator draws (crypto randomness, weighted towards
  // newcomers and the flagged: rewards.ts checkProbability) whether a validator re-runs it; a
  // share is checked the first time each miner shares, then at the base rate. A check keeps the
  // blobs it needs alive. A validator holds one stage like a replica (it follows the rounds' steps
  // without voting on versions) and takes the checks of the round its weights are at; its verdict
  // is signed. A failed check flags the miner with the evidence (kept), redoes what an open round
  // holds of its work, and excludes it from the run.

  /** The stage with the fewest validators (the lowest on a tie): each stage gets one before any gets two. */
  private async validatorStage(runId: string, stages: number): Promise<number> {
    const rows = await this.db.selectFrom('participants').select('stage').where('run_id', '=', runId).where('role', '=', 'validator').where('status', '=', 'active').execute();
    const counts = Array.from({ length: stages }, (_, s) => rows.filter((r) => r.stage === s).length);
    return counts.indexOf(Math.min(...counts));
  }

  /** Whether `item` (just completed by its miner) is checked, and if so queues the check. */
  private async drawCheck(spec: RunSpec, item: Item, loss: number | null): Promise<void> {
    // Local mode: a replica's weights between merges are its own, so nobody else can re-run its work.
    if (spec.mode !== 'exact') return;
    const miner = item.completed_by!;
    const history = await this.db
      .selectFrom('checks')
      .select(['target', (eb) => eb.fn.countAll<number>().as('n')])
      .where('run_id', '=', spec.id)
      .where('miner', '=', miner)
      .where('status', '=', 'passed')
      .groupBy('target')
      .execute();
    const passed = (target: string): number => Number(history.find((h) => h.target === target)?.n ?? 0);
    const flagged = (await this.db.selectFrom('flags').select('id').where('run_id', '=', spec.id).where('hotkey', '=', miner).executeTakeFirst()) !== undefined;
    const share = item.direction === 'share';
    const p = share ? (flagged || passed('share') === 0 ? 1 : spec.validation.rate) : checkProbability(spec.validation, passed('item'), flagged);
    if (p <= 0 || randomInt(1_000_000) >= p * 1_000_000) return;
    const round = Number(item.round);
    const last = spec.stages.length - 1;
    let detail: CheckDetail;
    if (share) {
      // Every gradient item the miner's sum covered, and the slices it uploaded.
      const covered = await this.db
        .selectFrom('work_items')
        .selectAll()
        .where('run_id', '=', spec.id)
        .where('round', '=', round)
        .where('stage', '=', item.stage)
        .where('direction', 'in', item.stage === last ? ['forward', 'redo'] : ['backward', 'redo'])
        .where('status', '=', 'done')
        .where('completed_by', '=', miner)
        .orderBy('completed_at')
        .execute();
      if (covered.length === 0) return;
      const d = JSON.parse(item.detail_json) as ShareDetail;
      const items: CheckItemDetail[] = [];
      for (const c of covered) items.push(await this.checkedItem(spec, c, null, false));
      detail = { items, shares: d.slices.map((range, j) => ({ range, key: d.keys[j] })) };
    } else detail = { items: [await this.checkedItem(spec, item, loss, true)] };
    const keys = [...new Set([...detail.items.flatMap((i) => [i.input, i.forward_input ?? null, i.output.key]), ...(detail.shares ?? []).map((x) => x.key)].filter((k): k is string => k !== null))];
    await this.db
      .insertInto('checks')
      .values({ run_id: spec.id, round, stage: item.stage, miner, target: share ? 'share' : 'item', subject: item.id, detail_json: JSON.stringify(detail), keys_json: JSON.stringify(keys), status: 'pending', lease_id: null, leased_to: null, lease_expires: null, created_at: this.now(), decided_at: null, validator: null, error: null, loss_diff: null, reason: null, signature: null })
      .execute();
    this.wake(item.stage, true);
  }

  /** A work item as a validator re-runs it: its inputs' keys and (when `withOutput`) what it sent on. */
  private async checkedItem(spec: RunSpec, item: Item, loss: number | null, withOutput: boolean): Promise<CheckItemDetail> {
    const last = spec.stages.length - 1;
    const direction = item.direction as CheckItemDetail['direction'];
    const stageInput = await this.stageInputKey(this.db, item);
    // Forward (and a redo at the last stage, which runs forward and backward): the stage input.
    // Backward (and its redo): the output gradient, with the stage input beside it.
    const backward = direction === 'backward' || (direction === 'redo' && item.stage < last);
    const outputKind: CheckItemDetail['output']['kind'] = !withOutput ? 'none' : direction === 'forward' && item.stage < last ? 'activation' : item.stage > 0 ? 'gradient' : 'none';
    return {
      sample_id: item.sample_id,
      direction,
      input: backward ? item.input_key : item.stage === 0 ? null : (item.input_key ?? stageInput),
      ...(backward ? { forward_input: stageInput } : {}),
      output: { kind: outputKind, key: outputKind === 'none' ? null : item.output_key },
      loss,
    };
  }

  /** The next task for a validator holding `version` rounds of its stage: a check, a step, a stored state, or none yet. */
  async checkLease(hotkey: string, req: LeaseRequest = {}): Promise<LeaseResponse> {
    const version = req.version ?? 0;
    const deadline = this.now() + (req.wait_ms ?? 0);
    let p = await this.participant(hotkey);
    if (p.role !== 'validator' || p.stage === null) throw new ApiError('forbidden', 'only validators take checks');
    const spec = await this.spec(p.run_id);
    for (;;) {
      const done = await this.roundsDone(spec.id);
      await this.db.updateTable('participants').set({ last_seen: this.now(), ...(version <= done ? { version } : {}) }).where('hotkey', '=', hotkey).execute();
      if (version > done || Number(p.resync) === 1) return { lease: await this.resyncTask(hotkey, p.stage!, spec, done), finished: false, retry_after_ms: 0 };
      const task = await this.nextCheck(hotkey, p.stage!, spec, version, done);
      if (task === 'finished') return { lease: null, finished: true, retry_after_ms: 0 };
      if (task) return { lease: task, finished: false, retry_after_ms: 0 };
      const left = deadline - this.now();
      if (left <= 0 || (!(await this.waitForChange(p.stage!, Math.min(left, 5000), true)) && left <= 5000)) return this.noTaskYet();
      p = await this.participant(hotkey);
    }
  }

  private async nextCheck(hotkey: string, stage: number, spec: RunSpec, version: number, done: number): Promise<Task | 'finished' | null> {
    for (;;) {
      const now = this.now();
      const ttlMs = spec.lease_ttl_s * 1000;
      const row = await withTransaction(this.db, async (trx) => {
        const found = await trx
          .selectFrom('checks')
          .selectAll()
          .where('run_id', '=', spec.id)
          .where('stage', '=', stage)
          .where('round', '=', version)
          .where((eb) => eb.or([eb('status', '=', 'pending'), eb.and([eb('status', '=', 'leased'), eb('lease_expires', '<', now)])]))
          .orderBy('id')
          .limit(1)
          .executeTakeFirst();
        if (!found) return null;
        const leaseId = newLeaseId();
        await trx.updateTable('checks').set({ status: 'leased', lease_id: leaseId, leased_to: hotkey, lease_expires: now + ttlMs }).where('id', '=', found.id).execute();
        return { ...found, lease_id: leaseId, lease_expires: now + ttlMs };
      });
      if (row) {
        const task = await this.validateTask(spec, row);
        if (task) return task;
        continue; // its blobs are gone: expired, try the next
      }
      if (version < done) return this.catchUp(hotkey, stage, spec, version, false);
      if (spec.rounds !== undefined && version >= spec.rounds) return 'finished';
      return null;
    }
  }

  private async validateTask(spec: RunSpec, row: { id: number; round: number; stage: number; miner: string; target: 'item' | 'share'; detail_json: string; keys_json: string; lease_id: string | null; lease_expires: number | null }): Promise<ValidateTask | null> {
    const d = JSON.parse(row.detail_json) as CheckDetail;
    for (const key of JSON.parse(row.keys_json) as string[]) {
      if (await this.store.head(key)) continue;
      await this.db.updateTable('checks').set({ status: 'expired', reason: `blob ${key} is gone` }).where('id', '=', row.id).execute();
      return null;
    }
    const round = Number(row.round);
    const input = async (key: string | null, sample: ReturnType<Coordinator['sampleRef']>): Promise<CheckedItem['input']> => (key === null ? { kind: 'sample', ...sample } : { kind: 'blob', ...(await this.blobRef(key, spec)) });
    const items: CheckedItem[] = [];
    for (const i of d.items) {
      const sample = this.sampleRef(spec, round, (await this.sampleOf(spec.id, i.sample_id)).index);
      items.push({
        sample_id: i.sample_id,
        direction: i.direction,
        sample,
        input: await input(i.input, sample),
        ...(i.forward_input !== undefined ? { forward_input: await input(i.forward_input, sample) } : {}),
        output: { kind: i.output.kind, blob: i.output.key === null ? null : await this.blobRef(i.output.key, spec) },
        loss: i.loss,
      });
    }
    const shares = await Promise.all((d.shares ?? []).map(async (x) => ({ range: x.range, blob: await this.blobRef(x.key, spec) })));
    const version = await this.db.selectFrom('versions').select('reports_json').where('run_id', '=', spec.id).where('stage', '=', row.stage).where('rounds', '=', round).executeTakeFirst();
    const stored = await this.db.selectFrom('snapshots').select('hash').where('run_id', '=', spec.id).where('stage', '=', row.stage).where('rounds', '=', round).where('status', '=', 'done').executeTakeFirst();
    const hash = (version ? majority(JSON.parse(version.reports_json) as Record<string, string>) : null) ?? stored?.hash ?? null;
    return {
      kind: 'validate',
      id: row.lease_id!,
      check: Number(row.id),
      run_id: spec.id,
      round,
      stage: row.stage,
      expires_at: Number(row.lease_expires),
      target: row.target,
      miner: row.miner,
      hash,
      items,
      shares,
      tolerance: spec.validation.tolerance,
      loss_tolerance: spec.validation.loss_tolerance,
    };
  }

  /** A validator's signed verdict on a check it leased. */
  async verdict(hotkey: string, req: VerdictRequest): Promise<{ status: 'accepted' | 'duplicate' }> {
    const p = await this.participant(hotkey);
    if (p.role !== 'validator') throw new ApiError('forbidden', 'only validators judge checks');
    const row = await this.db.selectFrom('checks').selectAll().where('lease_id', '=', req.lease_id).executeTakeFirst();
    if (!row) throw new ApiError('lease_expired', `check lease ${req.lease_id} is no longer valid`);
    if (row.leased_to !== hotkey) throw new ApiError('forbidden', `check lease ${req.lease_id} belongs to another validator`);
    if (row.status === 'passed' || row.status === 'failed') return { status: 'duplicate' };
    if (row.status !== 'leased') throw new ApiError('lease_expired', `check lease ${req.lease_id} is no longer valid`);
    const spec = await this.spec(row.run_id);
    const round = Number(row.round);
    const message = verdictMessage({ run_id: spec.id, check: Number(row.id), miner: row.miner, round, stage: row.stage, outcome: req.outcome, error: req.error, loss_diff: req.loss_diff });
    if (!verifyMessage(hotkey, message, req.signature)) throw new ApiError('bad_request', `the verdict's signature is not ${hotkey}'s signature of this verdict (check ${row.id}, outcome ${req.outcome})`);
    const reason = (req.reason ?? '').slice(0, 2000);
    if (req.outcome === 'abstain') {
      // The validator's weights are not the stage's: it reloads them, and the check waits for a judge.
      await withTransaction(this.db, async (trx) => {
        await trx.updateTable('checks').set({ status: 'pending', lease_id: null, leased_to: null, lease_expires: null }).where('id', '=', row.id).execute();
        await trx.updateTable('participants').set({ resync: 1 }).where('hotkey', '=', hotkey).execute();
        await this.log(trx, 'check_abstained', hotkey, spec.id, { check: Number(row.id), reason: reason.slice(0, 500) });
      });
      this.wake(row.stage, true);
      return { status: 'accepted' };
    }
    const failed = req.outcome === 'fail';
    const updated = await withTransaction(this.db, async (trx) => {
      const done = await trx
        .updateTable('checks')
        .set({ status: failed ? 'failed' : 'passed', decided_at: this.now(), validator: hotkey, error: req.error, loss_diff: req.loss_diff ?? null, reason, signature: req.signature })
        .where('id', '=', row.id)
        .where('lease_id', '=', req.lease_id)
        .where('status', '=', 'leased')
        .executeTakeFirst();
      if (Number(done.numUpdatedRows) === 0) return false;
      if (failed) {
        await this.flag(trx, spec.id, row.miner, 'failed_check', round, row.stage, {
          check: Number(row.id),
          target: row.target,
          subject: row.subject,
          error: req.error,
          loss_diff: req.loss_diff ?? null,
          tolerance: spec.validation.tolerance,
          loss_tolerance: spec.validation.loss_tolerance,
          reason: reason.slice(0, 500),
          validator: hotkey,
          signature: req.signature,
          keys: JSON.parse(row.keys_json) as string[],
        });
        await this.exclude(trx, spec, row.miner);
      }
      return true;
    });
    if (!updated) return { status: 'duplicate' };
    if (failed) {
      await this.deleteUnkept(spec.id, this.restartSpent.splice(0));
      await this.advance(spec);
      this.wake();
    } else if (round < (await this.roundsDone(spec.id))) await this.deleteUnkept(spec.id, JSON.parse(row.keys_json) as string[]);
    return { status: 'accepted' };
  }

  /** Deletes blobs no longer needed (and their records), except those an open check reads or a failed one keeps as evidence. */
  private async deleteUnkept(runId: string, keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    const rows = await this.db.selectFrom('checks').select('keys_json').where('run_id', '=', runId).where('status', 'in', ['pending', 'leased', 'failed']).execute();
    const kept = new Set(rows.flatMap((r) => JSON.parse(r.keys_json) as string[]));
    const gone = keys.filter((key) => key !== '' && !kept.has(key));
    for (const key of gone) await this.store.delete(key).catch(() => {});
    await forgetAccepted(this.db, gone);
  }

  /** Checks whose round was reduced more than keep_rounds ago without a validator: dropped, blobs freed. */
  private async expireChecks(spec: RunSpec): Promise<void> {
    const before = (await this.roundsDone(spec.id)) - spec.validation.keep_rounds;
    const stale = await this.db.selectFrom('checks').select(['id', 'keys_json']).where('run_id', '=', spec.id).where('round', '<', before).where('status', 'in', ['pending', 'leased']).execute();
    if (stale.length === 0) return;
    await this.db.updateTable('checks').set({ status: 'expired', reason: 'no validator took it in time' }).where('id', 'in', stale.map((c) => c.id)).execute();
    await this.deleteUnkept(spec.id, stale.flatMap((c) => JSON.parse(c.keys_json) as string[]));
  }

  // ---- epochs and rewards ----
  //
  // An epoch is validation.epoch_rounds rounds. When its last round is reduced it closes: CLASP
  // over its samples flags (and excludes) miners whose pathways carry significantly worse loss,
  // then every miner's work is scored (rewards.ts) and the shares are written to the ledger, which
  // the database keeps append-only. A closed epoch never changes, even if its rounds are later
  // rolled back.

  private async closeEpochs(spec: RunSpec): Promise<void> {
    const size = spec.validation.epoch_rounds;
    const done = await this.roundsDone(spec.id);
    const newest = await this.db.selectFrom('epochs').select((eb) => eb.fn.max<number>('epoch').as('e')).where('run_id', '=', spec.id).executeTakeFirst();
    const finished = spec.rounds !== undefined && done >= spec.rounds;
    for (let e = newest?.e === null || newest?.e === undefined ? 0 : Number(newest.e) + 1; ; e++) {
      const from = e * size;
      const to = Math.min(from + size, spec.rounds ?? Infinity) - 1;
      if (from > to || (to + 1 > done && !(finished && from < done))) return;
      await this.closeEpoch(spec, e, from, Math.min(to, done - 1));
    }
  }

  /** What each miner did in rounds [from, to], for scoring; `only`: one miner. */
  private async epochWork(spec: RunSpec, from: number, to: number, only?: string): Promise<EpochWork[]> {
    const { stageParams } = this.model(spec);
    const total = stageParams.reduce((a, b) => a + b, 0);
    const last = spec.stages.length - 1;
    const items = await this.db
      .selectFrom('work_items')
      .select(['completed_by', 'stage', 'direction', 'round'])
      .where('run_id', '=', spec.id)
      .where('round', '>=', from)
      .where('round', '<=', to)
      .where('status', '=', 'done')
      .where('direction', 'in', ['forward', 'backward', 'redo'])
      .$if(only !== undefined, (qb) => qb.where('completed_by', '=', only!))
      .execute();
    const checks = await this.db.selectFrom('checks').select(['miner', 'status', 'round']).where('run_id', '=', spec.id).where('round', '<=', to).where('status', 'in', ['passed', 'failed']).execute();
    const flags = await this.db.selectFrom('flags').select(['hotkey', 'kind', 'round', 'id']).where('run_id', '=', spec.id).orderBy('id').execute();
    const miners = new Map<string, EpochWork & { rounds: Set<number> }>();
    const entry = (hotkey: string) => {
      let m = miners.get(hotkey);
      if (!m) {
        const flag = flags.find((f) => f.hotkey === hotkey);
        m = { hotkey, work: 0, passed: 0, failed: 0, activeRounds: 0, vouched: false, excluded: flag ? `excluded: ${flag.kind.replace('_', ' ')} in round ${flag.round ?? '?'} (flag ${flag.id})` : null, rounds: new Set() };
        miners.set(hotkey, m);
      }
      return m;
    };
    for (const i of items) {
      if (i.completed_by === null) continue;
      const m = entry(i.completed_by);
      m.work += workCost(i.direction, i.stage === last, stageParams[i.stage], total);
      m.rounds.add(Number(i.round));
    }
    for (const c of checks) {
      if (only !== undefined && c.miner !== only) continue;
      if (c.status === 'passed') entry(c.miner).vouched = true;
      if (Number(c.round) < from) continue;
      if (c.status === 'passed') entry(c.miner).passed++;
      else entry(c.miner).failed++;
    }
    for (const f of flags) if (only === undefined || f.hotkey === only) entry(f.hotkey);
    return [...miners.values()].map(({ rounds, ...m }) => ({ ...m, activeRounds: rounds.size }));
  }

  private async closeEpoch(spec: RunSpec, epoch: number, from: number, to: number): Promise<void> {
    if (spec.validation.clasp && epoch > 0) {
      // Flagged in this epoch and in the one before: one epoch's test wrongly accuses an honest
      // miner with probability up to α (and early, noisy epochs came close); two in a row, about α².
      const found = await this.attribution(spec.id, { from, to });
      const before = await this.attribution(spec.id, { from: Math.max(0, from - spec.validation.epoch_rounds), to: from - 1 });
      const earlier = new Set(before.miners.filter((m) => m.flagged).map((m) => m.hotkey));
      const flagged = found.miners.filter((m) => m.flagged && earlier.has(m.hotkey));
      for (const m of flagged) {
        const already = await this.db.selectFrom('flags').select('id').where('run_id', '=', spec.id).where('hotkey', '=', m.hotkey).executeTakeFirst();
        if (already) continue;
        await withTransaction(this.db, async (trx) => {
          await this.flag(trx, spec.id, m.hotkey, 'clasp', to, m.stage, { from_round: from, to_round: to, effect: m.effect, se: m.se, z: m.z, threshold: found.threshold, samples: m.samples, sigma: found.sigma });
          await this.exclude(trx, spec, m.hotkey);
        });
      }
      if (flagged.length) {
        await this.deleteUnkept(spec.id, this.restartSpent.splice(0));
        await this.advance(spec);
        this.wake();
      }
    }
    const lines = scoreEpoch(await this.epochWork(spec, from, to), to - from + 1);
    const total = lines.reduce((a, l) => a + l.score, 0);
    const closedAt = this.now();
    try {
      await withTransaction(this.db, async (trx) => {
        await trx
          .insertInto('epochs')
          .values({ run_id: spec.id, epoch, from_round: from, to_round: to, closed_at: closedAt, total_score: total, miners: lines.filter((l) => l.score > 0).length, excluded_json: JSON.stringify(lines.filter((l) => l.reason?.startsWith('excluded')).map((l) => l.hotkey)) })
          .execute();
        if (lines.length) await trx.insertInto('rewards').values(lines.map((l) => ({ run_id: spec.id, epoch, hotkey: l.hotkey, work: l.work, passed: l.passed, failed: l.failed, liveness: l.liveness, score: l.score, share: l.share, reason: l.reason }))).execute();
        await this.log(trx, 'epoch_closed', null, spec.id, { epoch, from, to, miners: lines.length, total_score: total });
      });
    } catch (e) {
      // Closed meanwhile by another call: the ledger has it once.
      if (await this.db.selectFrom('epochs').select('epoch').where('run_id', '=', spec.id).where('epoch', '=', epoch).executeTakeFirst()) return;
      throw e;
    }
    const setter = this.opts.weights;
    if (setter && spec.admission.mode === 'metagraph') {
      const shares = lines.filter((l) => l.share > 0).map((l) => ({ hotkey: l.hotkey, share: l.share }));
      await setter.setWeights(spec.admission.netuid, { run_id: spec.id, epoch, shares }, toU16Weights(shares)).catch((err: Error) => this.log(this.db, 'weights_failed', null, spec.id, { epoch, error: err.message.slice(0, 500) }));
    }
  }

  /** The public summary of a run's closed epochs, each with its five largest shares. */
  async epochs(runId: string): Promise<EpochsResponse> {
    const spec = await this.spec(runId);
    const epochs = await this.db.selectFrom('epochs').selectAll().where('run_id', '=', runId).orderBy('epoch').execute();
    const rewards = await this.db.selectFrom('rewards').select(['epoch', 'hotkey', 'score', 'share']).where('run_id', '=', runId).where('score', '>', 0).execute();
    return {
      run_id: runId,
      epoch_rounds: spec.validation.epoch_rounds,
      epochs: epochs.map((e) => ({
        ...epochRow(e),
        top: rewards
          .filter((r) => r.epoch === e.epoch)
          .sort((a, b) => b.share - a.share)
          .slice(0, 5)
          .map((r) => ({ hotkey: r.hotkey, score: Number(r.score), share: Number(r.share) })),
      })),
    };
  }

  /** A miner's line in every closed epoch, its work so far in the open one, and its flags. */
  async minerRewards(runId: string, hotkey: string): Promise<MinerRewards> {
    const spec = await this.spec(runId);
    const rows = await this.db
      .selectFrom('rewards as r')
      .innerJoin('epochs as e', (j) => j.onRef('e.run_id', '=', 'r.run_id').onRef('e.epoch', '=', 'r.epoch'))
      .select(['r.epoch', 'r.hotkey', 'r.work', 'r.passed', 'r.failed', 'r.liveness', 'r.score', 'r.share', 'r.reason', 'e.from_round', 'e.to_round', 'e.closed_at'])
      .where('r.run_id', '=', runId)
      .where('r.hotkey', '=', hotkey)
      .orderBy('r.epoch')
      .execute();
    const newest = await this.db.selectFrom('epochs').select((eb) => eb.fn.max<number>('to_round').as('to')).where('run_id', '=', runId).executeTakeFirst();
    const from = newest?.to === null || newest?.to === undefined ? 0 : Number(newest.to) + 1;
    const finished = spec.rounds !== undefined && from >= spec.rounds;
    const open = finished ? [] : await this.epochWork(spec, from, Number.MAX_SAFE_INTEGER, hotkey);
    const mine = open.find((m) => m.hotkey === hotkey);
    return {
      run_id: runId,
      hotkey,
      epochs: rows.map((r) => ({ ...rewardRow(r), from_round: Number(r.from_round), to_round: Number(r.to_round), closed_at: Number(r.closed_at) })),
      pending: finished ? null : { epoch: Math.floor(from / spec.validation.epoch_rounds), from_round: from, work: mine?.work ?? 0, passed: mine?.passed ?? 0, failed: mine?.failed ?? 0 },
      flags: (await this.flags(runId)).filter((f) => f.hotkey === hotkey),
    };
  }

  // ---- pathways ----

  async pathway(runId: string, sampleId: string): Promise<Pathway> {
    const spec = await this.spec(runId);
    const s = await this.db.selectFrom('samples').selectAll().where('run_id', '=', runId).where('id', '=', sampleId).executeTakeFirst();
    if (!s) throw new ApiError('not_found', `run ${runId} has no sample ${sampleId}`);
    const items = await this.db.selectFrom('work_items').select(['stage', 'direction', 'completed_by']).where('run_id', '=', runId).where('sample_id', '=', sampleId).execute();
    const last = spec.stages.length - 1;
    const by = (stage: number, direction: string) => items.find((i) => i.stage === stage && i.direction === direction)?.completed_by ?? null;
    return {
      sample_id: sampleId,
      run_id: runId,
      loss: s.loss === null ? null : Number(s.loss),
      done: Boolean(Number(s.done)),
      // The last stage runs its backward with its forward.
      stages: spec.stages.map((_, stage) => ({ stage, forward_miner: by(stage, 'forward'), backward_miner: stage === last ? by(stage, 'forward') : by(stage, 'backward') })),
    };
  }

  /** CLASP over the run's finished samples of rounds [from, to] (all when not given). */
  async attribution(runId: string, q: { from?: number; to?: number } = {}): Promise<Attribution> {
    const spec = await this.spec(runId);
    const from = q.from ?? 0;
    const to = q.to ?? Number.MAX_SAFE_INTEGER;
    const rows = await this.db
      .selectFrom('samples as s')
      .innerJoin('work_items as w', (j) => j.onRef('w.run_id', '=', 's.run_id').onRef('w.sample_id', '=', 's.id'))
      .select(['s.id as sample', 's.round as round', 's.loss as loss', 'w.stage as stage', 'w.completed_by as miner'])
      .where('s.run_id', '=', runId)
      .where('s.round', '>=', from)
      .where('s.round', '<=', to)
      .where('s.loss', 'is not', null)
      .where('w.direction', '=', 'forward')
      .where('w.status', '=', 'done')
      .orderBy('w.completed_at')
      .execute();
    // A sample's pathway: the miner whose forward of each stage was last accepted.
    const bySample = new Map<string, PathwaySample>();
    for (const r of rows) {
      const p = bySample.get(r.sample) ?? { loss: Number(r.loss), group: Number(r.round), miners: new Array<string>(spec.stages.length).fill('') };
      p.miners[r.stage] = r.miner ?? '';
      bySample.set(r.sample, p);
    }
    const samples = [...bySample.values()].filter((p) => p.miners.every((m) => m !== ''));
    const result = clasp(samples);
    // A loop, not Math.min(...): a long run has more samples than a call may take arguments.
    let first = Infinity;
    let lastRound = -Infinity;
    for (const p of samples) [first, lastRound] = [Math.min(first, p.group), Math.max(lastRound, p.group)];
    return {
      run_id: runId,
      from_round: samples.length ? first : from,
      to_round: samples.length ? lastRound : from,
      samples: samples.length,
      sigma: result.sigma,
      threshold: Number.isFinite(result.threshold) ? result.threshold : null,
      miners: result.effects.map((e) => ({ hotkey: e.miner, stage: e.stage, samples: e.samples, effect: e.effect, se: e.se, z: e.z, tested: e.tested, flagged: e.flagged })),
    };
  }

  private async log(db: Kysely<Database>, kind: string, hotkey: string | null, runId: string | null, details: Record<string, unknown>): Promise<void> {
    await db.insertInto('events').values({ at: this.now(), kind, hotkey, run_id: runId, details_json: JSON.stringify(details) }).execute();
  }
}

function epochRow(e: { run_id: string; epoch: number; from_round: number; to_round: number; closed_at: number; total_score: number; miners: number; excluded_json: string }): Epoch {
  return { run_id: e.run_id, epoch: Number(e.epoch), from_round: Number(e.from_round), to_round: Number(e.to_round), closed_at: Number(e.closed_at), total_score: Number(e.total_score), miners: Number(e.miners), excluded: JSON.parse(e.excluded_json) as string[] };
}

function rewardRow(r: { epoch: number; hotkey: string; work: number; passed: number; failed: number; liveness: number; score: number; share: number; reason: string | null }): Reward {
  return { epoch: Number(r.epoch), hotkey: r.hotkey, work: Number(r.work), passed: Number(r.passed), failed: Number(r.failed), liveness: Number(r.liveness), score: Number(r.score), share: Number(r.share), reason: r.reason };
}
