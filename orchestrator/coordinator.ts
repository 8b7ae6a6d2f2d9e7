// The orchestrator's logic, free of HTTP: runs, registration and stage assignment, work leases
// and their completion, pathways, heartbeats. Its world comes in as arguments (database, blob
// store, clock), and every state change goes through the database, so a restart loses nothing.
import type { Kysely, Transaction } from 'kysely';
import {
  type Assignment,
  type CompleteRequest,
  type Hardware,
  type Lease,
  type LeaseResponse,
  type Pathway,
  type RegisterRequest,
  type Run,
  type RunSpec,
  RunSpecSchema,
} from '../orchestrator-client/protocol.ts';
import { chooseMove, chooseStage, type StageLoad } from './assignment.ts';
import type { Database, NewWorkItem, WorkItemRow } from './db/schema.ts';
import { pickAvailableItem, withTransaction } from './db/open.ts';
import { ApiError } from './http.ts';
import { checkRunSpec } from './runs.ts';
import type { BlobStore } from './storage/blob-store.ts';

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
}

type Item = WorkItemRow;
const DATA_SHARDS = 16;

export class Coordinator {
  private readonly db: Kysely<Database>;
  private readonly store: BlobStore;
  private readonly now: () => number;

  constructor(private readonly opts: CoordinatorOptions) {
    this.db = opts.db;
    this.store = opts.store;
    this.now = opts.now ?? Date.now;
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
    const row = await this.db.selectFrom('runs').select('created_at').where('id', '=', runId).executeTakeFirstOrThrow();
    const loads = await this.stageLoads(runId, spec.stages.length);
    return { ...spec, created_at: Number(row.created_at), stage_count: spec.stages.length, miners_per_stage: loads.map((l) => l.miners) };
  }

  private async defaultRunId(): Promise<string> {
    const row = await this.db.selectFrom('runs').select('id').where('status', '=', 'active').orderBy('created_at', 'desc').executeTakeFirst();
    if (!row) throw new ApiError('not_found', 'no active run: the operator has not started one yet');
    return row.id;
  }

  /** Samples of a round and their stage-0 forward items. */
  private async enqueueRound(trx: Transaction<Database>, spec: RunSpec, round: number): Promise<void> {
    const now = this.now();
    const ids = Array.from({ length: spec.samples_per_round }, (_, k) => k);
    // In batches: one statement per row made a round of thousands of samples block the server.
    for (let at = 0; at < ids.length; at += 500) {
      const batch = ids.slice(at, at + 500);
      await trx
        .insertInto('samples')
        .values(batch.map((k) => {
          const index = round * spec.samples_per_round + k;
          return { run_id: spec.id, id: `r${round}-s${k}`, round, seed: spec.seed, shard: index % DATA_SHARDS, idx: Math.floor(index / DATA_SHARDS), loss: null, done: 0, created_at: now };
        }))
        .execute();
      await trx.insertInto('work_items').values(batch.map((k) => this.itemRow(spec.id, `r${round}-s${k}`, 0, 'forward', null, null))).execute();
    }
  }

  private async newItem(trx: Transaction<Database>, runId: string, sampleId: string, stage: number, direction: 'forward' | 'backward', inputKey: string | null, requiredHotkey: string | null): Promise<void> {
    await trx.insertInto('work_items').values(this.itemRow(runId, sampleId, stage, direction, inputKey, requiredHotkey)).execute();
  }

  private itemRow(runId: string, sampleId: string, stage: number, direction: 'forward' | 'backward', inputKey: string | null, requiredHotkey: string | null): NewWorkItem {
    return {
        id: `${runId}.${sampleId}.${stage}.${direction === 'forward' ? 'f' : 'b'}`,
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
    const now = this.now();
    const existing = await this.db.selectFrom('participants').selectAll().where('hotkey', '=', hotkey).executeTakeFirst();
    // Registering again (a restart of the miner) keeps the stage it had in the same run.
    if (existing && existing.run_id === runId && existing.role === req.role && existing.status === 'active') {
      await this.db.updateTable('participants').set({ hardware_json: JSON.stringify(req.hardware), last_seen: now }).where('hotkey', '=', hotkey).execute();
      return this.assignment(hotkey, req.role, spec, existing.stage);
    }
    let stage: number | null = null;
    if (req.role === 'miner') {
      const choice = chooseStage(await this.stageLoads(runId, spec.stages.length), spec.max_miners_per_stage);
      if (!choice.ok) throw new ApiError('run_full', `run ${runId} is full: every stage has ${spec.max_miners_per_stage} miners`, { retry_after_s: 60 }, { 'retry-after': '60' });
      stage = choice.stage;
    }
    const row = { role: req.role, run_id: runId, stage, hardware_json: JSON.stringify(req.hardware), registered_at: now, last_seen: now, status: 'active' as const };
    await withTransaction(this.db, async (trx) => {
      if (existing) {
        // A new run, role or a comeback after being reaped: nothing from before is still held.
        await this.releaseAll(trx, hotkey);
        await trx.updateTable('participants').set(row).where('hotkey', '=', hotkey).execute();
      } else await trx.insertInto('participants').values({ hotkey, ...row }).execute();
      await this.log(trx, 'registered', hotkey, runId, { role: req.role, stage });
    });
    return this.assignment(hotkey, req.role, spec, stage);
  }

  private async participant(hotkey: string) {
    const p = await this.db.selectFrom('participants').selectAll().where('hotkey', '=', hotkey).executeTakeFirst();
    if (!p || p.status !== 'active') throw new ApiError('not_registered', `hotkey ${hotkey} is not registered (register again)`);
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
    const choice = chooseMove(await this.stageLoads(p.run_id, spec.stages.length), spec.max_miners_per_stage, p.stage, wanted);
    if (!choice.ok) {
      if (choice.reason === 'no_such_stage') throw new ApiError('bad_request', `run ${spec.id} has no stage ${wanted} (it has ${spec.stages.length})`);
      throw new ApiError('run_full', choice.reason === 'stage_full' ? `stage ${wanted} is full` : `run ${spec.id} is full`, undefined, { 'retry-after': '60' });
    }
    if (choice.stage !== p.stage) {
      await withTransaction(this.db, async (trx) => {
        await this.releaseAll(trx, hotkey);
        await trx.updateTable('participants').set({ stage: choice.stage, last_seen: this.now() }).where('hotkey', '=', hotkey).execute();
        await this.log(trx, 'moved', hotkey, spec.id, { from: p.stage, to: choice.stage });
      });
    }
    return this.assignment(hotkey, 'miner', spec, choice.stage);
  }

  /** Hands back everything a miner holds: its leases return to the queue, its backward work to anyone. */
  private async releaseAll(trx: Transaction<Database>, hotkey: string): Promise<void> {
    await trx.updateTable('work_items').set({ status: 'pending', lease_id: null, leased_to: null, lease_expires: null }).where('leased_to', '=', hotkey).where('status', '=', 'leased').execute();
    await trx.updateTable('work_items').set({ required_hotkey: null }).where('required_hotkey', '=', hotkey).where('status', '!=', 'done').execute();
  }

  /** Miners silent for longer than their run's heartbeat timeout are gone; their work is re-offered. */
  async reap(): Promise<string[]> {
    const now = this.now();
    const gone: string[] = [];
    const active = await this.db.selectFrom('participants').select(['hotkey', 'run_id', 'last_seen']).where('status', '=', 'active').execute();
    const timeouts = new Map<string, number>();
    for (const p of active) {
      if (!timeouts.has(p.run_id)) timeouts.set(p.run_id, (await this.spec(p.run_id)).heartbeat_timeout_s * 1000);
      if (now - Number(p.last_seen) <= timeouts.get(p.run_id)!) continue;
      await withTransaction(this.db, async (trx) => {
        await trx.updateTable('participants').set({ status: 'gone' }).where('hotkey', '=', p.hotkey).execute();
        await this.releaseAll(trx, p.hotkey);
        await this.log(trx, 'gone', p.hotkey, p.run_id, { silent_ms: now - Number(p.last_seen) });
      });
      gone.push(p.hotkey);
    }
    return gone;
  }

  // ---- work ----

  private keyFor(item: Pick<Item, 'run_id' | 'sample_id' | 'stage' | 'direction'>, leaseId: string): string {
    return `runs/${item.run_id}/samples/${item.sample_id}/${item.stage}-${item.direction}-${leaseId}.safetensors`;
  }

  private async blobInput(key: string, spec: RunSpec): Promise<Lease['input']> {
    const info = await this.store.head(key);
    return { kind: 'blob', key, url: await this.store.presign('get', key, { expiresInS: spec.lease_ttl_s * 2 }), bytes: info?.bytes ?? 0 };
  }

  private async sampleInput(runId: string, sampleId: string): Promise<Lease['input']> {
    const s = await this.db.selectFrom('samples').select(['seed', 'shard', 'idx']).where('run_id', '=', runId).where('id', '=', sampleId).executeTakeFirstOrThrow();
    return { kind: 'sample', seed: Number(s.seed), shard: Number(s.shard), index: Number(s.idx) };
  }

  async lease(hotkey: string): Promise<LeaseResponse> {
    const p = await this.participant(hotkey);
    if (p.role !== 'miner' || p.stage === null) throw new ApiError('forbidden', 'only miners with a stage lease work');
    const spec = await this.spec(p.run_id);
    const now = this.now();
    await this.db.updateTable('participants').set({ last_seen: now }).where('hotkey', '=', hotkey).execute();
    const picked = await withTransaction(this.db, async (trx) => {
      const item = await pickAvailableItem(trx, { runId: p.run_id, stage: p.stage!, hotkey, now, ttlMs: spec.lease_ttl_s * 1000 });
      if (!item) return null;
      const outputKey = this.keyFor(item, item.lease_id!);
      await trx.updateTable('work_items').set({ output_key: outputKey }).where('id', '=', item.id).execute();
      return { ...item, output_key: outputKey };
    });
    if (!picked) {
      await this.maybeNextRound(p.run_id);
      return { lease: null, retry_after_ms: this.opts.idleRetryMs ?? 1000 };
    }
    const last = spec.stages.length - 1;
    const stage = picked.stage;
    const input = picked.input_key ? await this.blobInput(picked.input_key, spec) : await this.sampleInput(picked.run_id, picked.sample_id);
    let forwardInput: Lease['input'] | undefined;
    if (picked.direction === 'backward') {
      const fwd = await this.db.selectFrom('work_items').select('input_key').where('id', '=', `${picked.run_id}.${picked.sample_id}.${stage}.f`).executeTakeFirstOrThrow();
      forwardInput = fwd.input_key ? await this.blobInput(fwd.input_key, spec) : await this.sampleInput(picked.run_id, picked.sample_id);
    }
    // Forward at the last stage also runs backward at once and sends the gradient down; stage 0's
    // backward has nowhere to send one.
    const outputKind = picked.direction === 'forward' ? (stage < last ? 'activation' : stage > 0 ? 'gradient' : 'none') : stage > 0 ? 'gradient' : 'none';
    const output: Lease['output'] =
      outputKind === 'none'
        ? { kind: 'none', key: '', url: '', max_bytes: 0 }
        : { kind: outputKind, key: picked.output_key, url: await this.store.presign('put', picked.output_key, { expiresInS: spec.lease_ttl_s * 2, maxBytes: spec.max_blob_bytes }), max_bytes: spec.max_blob_bytes };
    return {
      lease: {
        id: picked.lease_id!,
        run_id: picked.run_id,
        sample_id: picked.sample_id,
        stage,
        direction: picked.direction as 'forward' | 'backward',
        expires_at: Number(picked.lease_expires),
        input,
        ...(forwardInput ? { forward_input: forwardInput } : {}),
        output,
      },
      retry_after_ms: 0,
    };
  }

  async complete(hotkey: string, req: CompleteRequest): Promise<{ status: 'accepted' | 'duplicate' }> {
    await this.participant(hotkey);
    const item = await this.db.selectFrom('work_items').selectAll().where('lease_id', '=', req.lease_id).executeTakeFirst();
    if (!item) throw new ApiError('lease_expired', `lease ${req.lease_id} is no longer valid: it expired and the work was handed to another miner`);
    if (item.leased_to !== hotkey) throw new ApiError('forbidden', `lease ${req.lease_id} belongs to another miner`);
    if (item.status === 'done') return { status: 'duplicate' };
    const spec = await this.spec(item.run_id);
    const last = spec.stages.length - 1;
    const wantsOutput = item.direction === 'forward' ? item.stage < last || item.stage > 0 : item.stage > 0;
    let bytes: number | null = null;
    if (wantsOutput) {
      if (!req.output) throw new ApiError('bad_request', `this work item must upload its ${item.direction === 'forward' && item.stage < last ? 'activation' : 'gradient'} to ${item.output_key} first`);
      if (req.output.key !== item.output_key) throw new ApiError('forbidden', `lease ${req.lease_id} may only write ${item.output_key}, not ${req.output.key}`);
      const info = await this.store.head(item.output_key);
      if (!info) throw new ApiError('bad_request', `nothing was uploaded to ${item.output_key}`);
      if (info.bytes !== req.output.bytes) throw new ApiError('bad_request', `${item.output_key} holds ${info.bytes} bytes, the completion says ${req.output.bytes}`);
      bytes = info.bytes;
    }
    const reportsLoss = item.direction === 'forward' && item.stage === last;
    if (reportsLoss && req.loss === undefined) throw new ApiError('bad_request', 'the last stage must report the sample loss');
    const now = this.now();
    const outcome = await withTransaction(this.db, async (trx) => {
      // Conditional on the lease still being this one: two completions racing apply once.
      const done = await trx
        .updateTable('work_items')
        .set({ status: 'done', completed_by: hotkey, completed_at: now, output_bytes: bytes })
        .where('id', '=', item.id)
        .where('lease_id', '=', req.lease_id)
        .where('status', '=', 'leased')
        .executeTakeFirst();
      if (Number(done.numUpdatedRows) === 0) return 'duplicate' as const;
      if (reportsLoss) await trx.updateTable('samples').set({ loss: req.loss! }).where('run_id', '=', item.run_id).where('id', '=', item.sample_id).execute();
      const forwardMiner = async (stage: number): Promise<string | null> =>
        (await trx.selectFrom('work_items').select('completed_by').where('id', '=', `${item.run_id}.${item.sample_id}.${stage}.f`).executeTakeFirst())?.completed_by ?? null;
      if (item.direction === 'forward' && item.stage < last) await this.newItem(trx, item.run_id, item.sample_id, item.stage + 1, 'forward', item.output_key, null);
      else if (item.stage > 0) await this.newItem(trx, item.run_id, item.sample_id, item.stage - 1, 'backward', item.output_key, await forwardMiner(item.stage - 1));
      else await trx.updateTable('samples').set({ done: 1 }).where('run_id', '=', item.run_id).where('id', '=', item.sample_id).execute();
      return 'accepted' as const;
    });
    return { status: outcome };
  }

  async release(hotkey: string, leaseId: string): Promise<void> {
    await this.participant(hotkey);
    const r = await this.db
      .updateTable('work_items')
      .set({ status: 'pending', lease_id: null, leased_to: null, lease_expires: null })
      .where('lease_id', '=', leaseId)
      .where('leased_to', '=', hotkey)
      .where('status', '=', 'leased')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw new ApiError('not_found', `no lease ${leaseId} held by ${hotkey}`);
  }

  /** When every sample of the newest round is done, the next round is queued. */
  private async maybeNextRound(runId: string): Promise<void> {
    const latest = await this.db.selectFrom('samples').select((eb) => eb.fn.max('round').as('round')).where('run_id', '=', runId).executeTakeFirst();
    const round = Number(latest?.round ?? 0);
    const open = await this.db.selectFrom('samples').select('id').where('run_id', '=', runId).where('round', '=', round).where('done', '=', 0).executeTakeFirst();
    if (open) return;
    const spec = await this.spec(runId);
    await withTransaction(this.db, async (trx) => {
      // Another request may have queued it first.
      const again = await trx.selectFrom('samples').select('id').where('run_id', '=', runId).where('round', '=', round + 1).executeTakeFirst();
      if (!again) await this.enqueueRound(trx, spec, round + 1);
    });
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

  private async log(db: Kysely<Database>, kind: string, hotkey: string | null, runId: string | null, details: Record<string, unknown>): Promise<void> {
    await db.insertInto('events').values({ at: this.now(), kind, hotkey, run_id: runId, details_json: JSON.stringify(details) }).execute();
  }
}
