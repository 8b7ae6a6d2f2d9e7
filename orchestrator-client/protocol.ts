// The orchestrator's HTTP protocol: every request and response as a zod schema, used by the
// server to validate what it receives and by the client to validate what it gets back. Paths are
// versioned under /v1. Numbers that are times are milliseconds since the Unix epoch.
import { z } from 'zod';
import { CODECS } from './codecs.ts';

export const API_PREFIX = '/v1';

// ---- errors ----

export const ERROR_CODES = [
  'bad_request', // malformed JSON, schema mismatch
  'unauthorized', // missing or forged signature
  'stale_request', // timestamp outside the accepted window
  'replayed_request', // nonce seen before
  'forbidden', // wrong role, not admitted, or a key this caller may not use
  'not_registered', // the hotkey has no registration
  'not_found',
  'conflict', // e.g. the work was completed by someone else
  'lease_expired', // a lease that was handed to another miner
  'payload_too_large',
  'rate_limited',
  'run_full', // every stage is at capacity; retry after the given delay
  'unavailable', // not ready (starting up, database down)
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

export const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  stale_request: 401,
  replayed_request: 401,
  forbidden: 403,
  not_registered: 403,
  not_found: 404,
  conflict: 409,
  lease_expired: 410,
  payload_too_large: 413,
  rate_limited: 429,
  run_full: 503,
  unavailable: 503,
  internal: 500,
};

// ---- signed requests ----

/** Headers that carry a request's signature (see signing.ts for what is signed). */
export const AUTH_HEADERS = {
  hotkey: 'x-tah-hotkey',
  timestamp: 'x-tah-timestamp',
  nonce: 'x-tah-nonce',
  signature: 'x-tah-signature',
} as const;

// ---- shared pieces ----

/**
 * The one grammar of every id that becomes part of a request path or a storage key (run ids,
 * sample ids, lease ids): 1 to 128 letters, digits, '.', '_' and '-', starting with a letter or
 * a digit. So no id is '.' or '..', holds a separator or a control character, or reads as a flag.
 */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const IdSchema = z.string().regex(ID_PATTERN, 'an id: 1 to 128 letters, digits, ".", "_" and "-", starting with a letter or digit');
const id = IdSchema;
export const Ss58Schema = z.string().min(40).max(60).regex(/^[1-9A-HJ-NP-Za-km-z]+$/, 'an SS58 address');
const count = z.number().int().nonnegative();
const positive = z.number().int().positive();

export const RoleSchema = z.enum(['miner', 'validator', 'operator']);
export type Role = z.infer<typeof RoleSchema>;

export const HardwareSchema = z
  .object({
    device: z.enum(['cpu', 'cuda', 'coreml', 'webgpu']),
    cores: positive.max(4096),
    memory_bytes: count,
    accelerator_memory_bytes: count.optional(),
    /** Measured training throughput of this machine on the run's model, tokens per second. */
    tokens_per_s: z.number().nonnegative().max(1e9),
  })
  .strict();
export type Hardware = z.infer<typeof HardwareSchema>;

// ---- runs (operator) ----

export const AdmissionSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('open') }).strict(),
  z.object({ mode: z.literal('allowlist'), hotkeys: z.array(Ss58Schema).max(100_000) }).strict(),
  z.object({ mode: z.literal('metagraph'), netuid: count }).strict(),
]);
export type Admission = z.infer<typeof AdmissionSchema>;

/** AdamW with warm-up and cosine decay (worker/optim/adamw.ts), in the protocol's snake case. */
export const OptimizerSpecSchema = z
  .object({
    lr: z.number().positive().max(10).default(3e-3),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.95),
    eps: z.number().positive().max(1).default(1e-8),
    weight_decay: z.number().min(0).max(10).default(0.1),
    clip_norm: z.number().min(0).default(1),
    warmup_steps: count.default(30),
    total_steps: positive.default(1000),
    min_lr_ratio: z.number().min(0).max(1).default(0.1),
  })
  .strict();
export type OptimizerSpec = z.output<typeof OptimizerSpecSchema>;

/**
 * Local-steps mode (DiLoCo): each replica takes `steps` AdamW steps on its own samples between
 * merges (one round is one such inner step), then the replicas all-reduce their pseudo-gradient
 * (weights at the last merge minus weights now) and each applies the same outer Nesterov step.
 * `newcomer_state`: a replica that joins loads the stage's inner AdamW moments ('shared') or
 * starts them from zero ('fresh'); the second is only for comparing the two.
 */
export const LocalStepsSchema = z
  .object({
    steps: positive.max(100_000).default(10),
    // Plain averaging by default: at short periods (H = 10) it beat DiLoCo's 0.7 and 0.9 (tuned
    // for H = 500) on the demo preset, held-out 1.894 against 2.254 (momentum 0.3: 2.040).
    outer_lr: z.number().positive().max(10).default(1),
    outer_momentum: z.number().min(0).lt(1).default(0),
    newcomer_state: z.enum(['shared', 'fresh']).default('shared'),
    /** 'int8': pseudo-gradients and their reductions move as int8 blocks with float32 scales. */
    quantize: z.enum(['none', 'int8']).default('none'),
  })
  .strict();
export type LocalSteps = z.output<typeof LocalStepsSchema>;

/**
 * When the orchestrator rolls a run back by itself: a round whose mean loss is more than
 * `loss_spike` times the median of the previous `window` rounds', or whose gradient norm is more
 * than `grad_spike` times theirs, or not finite. 0 turns a check off. A round that trips the
 * guard `max_rollbacks` times is let through (the spike is then the data's, not a fault's).
 */
export const GuardSpecSchema = z
  .object({
    loss_spike: z.number().min(0).default(1.5),
    grad_spike: z.number().min(0).default(10),
    window: positive.max(1000).default(5),
    max_rollbacks: count.max(100).default(2),
  })
  .strict();
export type GuardSpec = z.output<typeof GuardSpecSchema>;

/**
 * What crosses stage boundaries (docs/COMPRESSION.md): a bottleneck of `bottleneck_dim` channels
 * after every stage but the last (absent: the full model width), and the codecs for activations
 * (forward) and their gradients (backward). Both are part of the model's computation.
 */
export const CompressionSpecSchema = z
  .object({
    bottleneck_dim: positive.max(65_536).optional(),
    forward: z.enum(CODECS).default('f32'),
    backward: z.enum(CODECS).default('f32'),
  })
  .strict();
export type CompressionSpec = z.output<typeof CompressionSpecSchema>;

/**
 * How validators check the run's miners and how rewards are paid (docs/VALIDATION.md). A miner's
 * work item is re-run with probability max(rate, probation / (probation + checks it passed)), and
 * its gradient share with rate; a miner with any flag is checked every time until excluded.
 */
export const ValidationSpecSchema = z
  .object({
    rate: z.number().min(0).max(1).default(0.05),
    probation: count.max(1000).default(4),
    /** Relative L2 error ‖re-run − theirs‖ / ‖re-run‖ an output or share may differ by. */
    tolerance: z.number().positive().max(1).default(5e-3),
    /** Absolute difference a reported sample loss may differ by (nats). */
    loss_tolerance: z.number().positive().max(10).default(1e-3),
    /** Rounds per reward epoch. */
    epoch_rounds: positive.max(1_000_000).default(25),
    /** Rounds a sampled check may wait for a validator after its round is reduced before it is dropped. */
    keep_rounds: positive.max(1000).default(4),
    /** CLASP over each epoch's samples at its close; flagged miners are excluded like failed checks. */
    clasp: z.boolean().default(true),
  })
  .strict();
export type ValidationSpec = z.output<typeof ValidationSpecSchema>;

export const RunSpecSchema = z
  .object({
    id,
    /** A bundled preset name; the model's full configuration is resolved by the server. */
    preset: z.string().min(1).max(64),
    /** Stage layer ranges, first..last inclusive, contiguous and covering every layer. */
    stages: z.array(z.tuple([count, count])).min(1).max(64),
    samples_per_round: positive.max(1_000_000),
    /** Miners per stage at most (capacity); 0 means no limit. */
    max_miners_per_stage: count.default(0),
    lease_ttl_s: positive.max(3600).default(60),
    heartbeat_timeout_s: positive.max(3600).default(90),
    /** Upper bound on one uploaded blob. */
    max_blob_bytes: positive.max(2 ** 34).default(64 * 2 ** 20),
    seed: count.default(0),
    admission: AdmissionSchema.default({ mode: 'open' }),
    /** Sequences (rows) in one sample; a round's global batch is samples_per_round × this. */
    rows_per_sample: positive.max(4096).default(1),
    /** Rounds (optimizer steps) the run lasts; omitted: until the operator stops it. */
    rounds: positive.max(10_000_000).optional(),
    /** The optimizer every replica applies, identically, at the end of each round. */
    optimizer: OptimizerSpecSchema.prefault({}),
    /** Every this many rounds one replica of each stage stores the stage's state for newcomers. */
    snapshot_every: positive.max(1_000_000).default(25),
    /** Stored states kept: the newest this many, plus those after a multiple of long_term_every rounds. */
    keep_versions: positive.max(1000).default(3),
    long_term_every: positive.max(1_000_000).default(100),
    guard: GuardSpecSchema.prefault({}),
    /** 'exact': every round all-reduces the gradient (single-process training). 'local': see LocalStepsSchema. */
    mode: z.enum(['exact', 'local']).default('exact'),
    local: LocalStepsSchema.prefault({}),
    compression: CompressionSpecSchema.prefault({}),
    validation: ValidationSpecSchema.prefault({}),
  })
  .strict();
export type RunSpec = z.output<typeof RunSpecSchema>;

export const RunSchema = RunSpecSchema.extend({
  created_at: count,
  stage_count: positive,
  miners_per_stage: z.array(count),
  status: z.enum(['active', 'finished', 'stopped']),
  /** Rounds whose optimizer step is known (every stage reduced). */
  rounds_done: count,
});
export type Run = z.infer<typeof RunSchema>;

// ---- registration ----

export const RegisterRequestSchema = z
  .object({
    role: z.enum(['miner', 'validator']),
    run_id: id.optional(),
    hardware: HardwareSchema,
  })
  .strict();
export type RegisterRequest = z.infer<typeof RegisterRequestSchema>;

export const AssignmentSchema = z.object({
  hotkey: Ss58Schema,
  role: RoleSchema,
  run_id: id,
  /** The stage this miner holds (null for validators). */
  stage: count.nullable(),
  stage_count: positive,
  layers: z.tuple([count, count]).nullable(),
  heartbeat_interval_s: positive,
  lease_ttl_s: positive,
});
export type Assignment = z.infer<typeof AssignmentSchema>;

export const LeaveResponseSchema = z.object({ status: z.literal('left') });

export const MoveRequestSchema = z.object({ stage: count.optional() }).strict();

export const HeartbeatResponseSchema = z.object({ server_time: count, stage: count.nullable(), leases_held: count });

// ---- work ----

/** 'redo' recomputes a stage's parameter gradients for a sample whose first result was lost. */
export const DirectionSchema = z.enum(['forward', 'backward', 'redo']);
export type Direction = z.infer<typeof DirectionSchema>;

/**
 * Which training rows a sample is: rows first_row … first_row + rows − 1 of the single-process
 * batch for optimizer step `step` (worker/data/dataset.ts trainBatch with this seed and
 * batch_size), so that a round trains on exactly what one process would.
 */
export const SampleRefSchema = z.object({ seed: count, step: count, batch_size: positive, first_row: count, rows: positive });
export type SampleRef = z.infer<typeof SampleRefSchema>;

/** SHA-256, 64 lowercase hex digits. */
export const DigestSchema = z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 digest: 64 lowercase hex digits');

/**
 * A blob to read: where, how large, and the SHA-256 of its bytes as they were when its upload was
 * accepted. A reader refuses content with another digest (an uploader can still write through an
 * S3 URL after its upload was accepted; nothing downstream may use what nobody checked).
 */
const BlobRefSchema = z.object({ key: z.string(), url: z.string(), bytes: count, sha256: DigestSchema });
export type BlobRef = z.infer<typeof BlobRefSchema>;
/**
 * Where to upload one blob: one PUT to `url`, or, for blobs that may be large, parts of
 * `multipart.part_bytes` (the last may be shorter) each PUT to its own URL, whose ETags the
 * completion reports (as `Uploaded.multipart`); `url` is then empty.
 */
const UploadSchema = z.object({
  key: z.string(),
  url: z.string(),
  max_bytes: count,
  multipart: z.object({ upload_id: z.string(), part_bytes: positive, part_urls: z.array(z.string()).min(1).max(10_000) }).optional(),
});
export type Upload = z.infer<typeof UploadSchema>;

/** Where a work item's input comes from: a data sample (stage 0 forward) or a stored tensor. */
export const LeaseInputSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('sample') }).extend(SampleRefSchema.shape),
  z.object({ kind: z.literal('blob') }).extend(BlobRefSchema.shape),
]);

export const LeaseSchema = z.object({
  kind: z.literal('work'),
  id,
  run_id: id,
  round: count,
  sample_id: id,
  stage: count,
  direction: DirectionSchema,
  expires_at: count,
  /** Bumped when the round started again from scratch: a miner drops the sum it holds for an older one. */
  generation: count.default(0),
  /** The sample's rows: stage 0 reads them, the last stage takes its targets from them. */
  sample: SampleRefSchema,
  input: LeaseInputSchema,
  /** For a backward item: the activation this miner received as input on the way forward. */
  forward_input: LeaseInputSchema.optional(),
  /** Where the result goes: an activation (forward) or the gradient of the stage input. */
  output: z.object({ kind: z.enum(['activation', 'gradient', 'none']) }).extend(UploadSchema.shape),
});
export type Lease = z.infer<typeof LeaseSchema>;

/** A flat range [start, end) of a stage's parameter (and gradient) buffer. */
const SliceSchema = z.tuple([count, count]);

/** End of a round's compute at this stage: upload your gradient sum, one blob per slice. */
export const ShareTaskSchema = z.object({
  kind: z.literal('share'),
  id,
  run_id: id,
  round: count,
  stage: count,
  expires_at: count,
  /** 'grad': the round's gradient sum (exact mode). 'delta': weights at the last merge minus weights now (local mode). */
  what: z.enum(['grad', 'delta']).default('grad'),
  slices: z.array(z.object({ range: SliceSchema, upload: UploadSchema })).min(1),
});
export type ShareTask = z.infer<typeof ShareTaskSchema>;

/** Sum one slice over every replica's share (in the given order), scale it, and upload it. */
export const ReduceTaskSchema = z.object({
  kind: z.literal('reduce'),
  id,
  run_id: id,
  round: count,
  stage: count,
  expires_at: count,
  range: SliceSchema,
  /** Multiplies the sum: 1 / samples per round, for the mean over the round's batch. */
  scale: z.number().positive(),
  inputs: z.array(BlobRefSchema).min(1),
  upload: UploadSchema,
});
export type ReduceTask = z.infer<typeof ReduceTaskSchema>;

/** Local mode: take an AdamW step on your own gradient sum of this round (mean over your samples, clipped by its own norm). */
export const LocalTaskSchema = z.object({
  kind: z.literal('local'),
  id,
  run_id: id,
  round: count,
  stage: count,
  expires_at: count,
  lr: z.number().nonnegative(),
  clip_norm: z.number().min(0),
});
export type LocalTask = z.infer<typeof LocalTaskSchema>;

/**
 * The round is over for this stage. 'step' (exact mode): apply optimizer step `round + 1` with the
 * reduced gradient and these scalars. 'outer' (local mode, a merge): apply the outer Nesterov step
 * with the reduced pseudo-gradient. 'none' (local mode, no merge): nothing to change.
 */
export const ApplyTaskSchema = z.object({
  kind: z.literal('apply'),
  step: z.enum(['step', 'outer', 'none']).default('step'),
  run_id: id,
  round: count,
  stage: count,
  lr: z.number().nonnegative(),
  clip: z.number().positive().max(1),
  /**
   * Each slice of the reduced gradient: copies that agree (reduced by different replicas), any of
   * which will do, and the digest their content must have (check it: an uploader may lie).
   */
  slices: z.array(z.object({ range: SliceSchema, digest: DigestSchema, blobs: z.array(BlobRefSchema).min(1) })),
  /** This replica also stores the stage's state after the step (weights, moments, step). */
  snapshot: UploadSchema.optional(),
});
export type ApplyTask = z.infer<typeof ApplyTaskSchema>;

/** Load the stage's stored state (after `round` rounds) instead of replaying older rounds. */
export const SyncTaskSchema = z.object({
  kind: z.literal('sync'),
  run_id: id,
  stage: count,
  rounds: count,
  /** The stored state; null: the run's initial state (rounds 0), made from its seed. */
  blob: BlobRefSchema.nullable(),
  /** stateDigest the loaded state must have, when known. */
  hash: DigestSchema.nullable().default(null),
});
export type SyncTask = z.infer<typeof SyncTaskSchema>;

/**
 * Store this replica's state after `rounds` rounds (which it holds): the replica first asked to
 * store it left without doing so. Reported as an applied report of round `rounds - 1` with the
 * snapshot. A run ends only once every stage's final state is stored.
 */
export const StoreTaskSchema = z.object({
  kind: z.literal('store'),
  run_id: id,
  stage: count,
  rounds: count,
  snapshot: UploadSchema,
});
export type StoreTask = z.infer<typeof StoreTaskSchema>;

/** One work item as a miner did it, for a validator to re-run. */
export const CheckedItemSchema = z.object({
  sample_id: id,
  direction: DirectionSchema,
  sample: SampleRefSchema,
  input: LeaseInputSchema,
  forward_input: LeaseInputSchema.optional(),
  /** What the miner uploaded (none: the item sends nothing on, as stage 0's backward). */
  output: z.object({ kind: z.enum(['activation', 'gradient', 'none']), blob: BlobRefSchema.nullable() }),
  /** The sample loss the miner reported (the last stage's forward). */
  loss: z.number().nullable(),
});
export type CheckedItem = z.infer<typeof CheckedItemSchema>;

/**
 * Re-run a miner's work with the stage's weights at version `round` (the state whose hash is
 * `hash`) and compare: 'item' — one work item's output (and loss); 'share' — the gradient sum
 * of every item the miner covered this round against the share it uploaded for the merge.
 */
export const ValidateTaskSchema = z.object({
  kind: z.literal('validate'),
  id,
  check: z.number().int().nonnegative(),
  run_id: id,
  round: count,
  stage: count,
  expires_at: count,
  target: z.enum(['item', 'share']),
  miner: Ss58Schema,
  hash: DigestSchema.nullable(),
  items: z.array(CheckedItemSchema).min(1).max(1_000_000),
  shares: z.array(z.object({ range: SliceSchema, blob: BlobRefSchema })).default([]),
  tolerance: z.number().positive(),
  loss_tolerance: z.number().positive(),
});
export type ValidateTask = z.infer<typeof ValidateTaskSchema>;

export const TaskSchema = z.discriminatedUnion('kind', [LeaseSchema, ShareTaskSchema, ReduceTaskSchema, LocalTaskSchema, ApplyTaskSchema, SyncTaskSchema, StoreTaskSchema, ValidateTaskSchema]);
export type Task = z.infer<typeof TaskSchema>;

export const LeaseRequestSchema = z
  .object({
    /** Rounds whose step this miner has applied to its copy of the stage. */
    version: count.default(0),
    /** Wait up to this long for work to appear before answering with none. */
    wait_ms: count.max(30_000).default(0),
  })
  .strict();
export type LeaseRequest = z.input<typeof LeaseRequestSchema>;

export const LeaseResponseSchema = z.object({
  lease: TaskSchema.nullable(),
  /** The run ended: nothing more will come. */
  finished: z.boolean().default(false),
  /** When no work is available: how long to wait before asking again. */
  retry_after_ms: count,
});
export type LeaseResponse = z.infer<typeof LeaseResponseSchema>;

/** What was uploaded: the blob's size and SHA-256; for an upload in parts, which upload and every part's number and ETag. */
export const UploadedSchema = z
  .object({
    key: z.string().min(1).max(512),
    bytes: count,
    /** SHA-256 of the whole blob: recorded on acceptance and handed to every reader. */
    sha256: DigestSchema,
    multipart: z
      .object({
        upload_id: z.string().min(1).max(1024),
        parts: z
          .array(z.object({ number: z.number().int().min(1).max(10_000), etag: z.string().min(1).max(256) }).strict())
          .min(1)
          .max(10_000),
      })
      .strict()
      .optional(),
  })
  .strict();
export type Uploaded = z.infer<typeof UploadedSchema>;

export const CompleteRequestSchema = z
  .object({
    lease_id: id,
    output: UploadedSchema.optional(),
    /** A share's slices, in the task's order. */
    outputs: z.array(UploadedSchema).max(4096).optional(),
    /** The sample's loss, reported by the last stage. */
    loss: z.number().finite().optional(),
    /** A reduce task's result: the sum of squares of the reduced (scaled) slice. */
    sumsq: z.number().finite().nonnegative().optional(),
    /** A reduce task's result: tensorDigest (blobs.ts) of the reduced (scaled) slice. */
    digest: DigestSchema.optional(),
    /** Lease the next task in the same request: what POST /v1/leases/next would answer. */
    next: LeaseRequestSchema.optional(),
  })
  .strict();
export type CompleteRequest = z.input<typeof CompleteRequestSchema>;

export const CompleteResponseSchema = z.object({
  /** 'accepted' the first time, 'duplicate' when the same completion arrives again. */
  status: z.enum(['accepted', 'duplicate']),
  /** The next task, when the request asked for one and it could be leased (else ask /v1/leases/next). */
  next: LeaseResponseSchema.optional(),
});

export const ReleaseRequestSchema = z.object({ lease_id: id }).strict();

/**
 * A leased item whose input (another miner's upload) failed validation: refused, re-issued. `key`
 * names the input; `sha256` is the digest its content had when that is what failed (not the one
 * accepted), which the orchestrator checks against the stored blob before blaming anyone.
 */
export const RejectRequestSchema = z
  .object({ lease_id: id, reason: z.string().min(1).max(2000), key: z.string().min(1).max(512).optional(), sha256: DigestSchema.optional() })
  .strict();
export const RejectResponseSchema = z.object({ status: z.literal('rejected') });

/** A replica applied a round's step (and, when asked, stored the stage's state). */
export const AppliedRequestSchema = z
  .object({
    round: count,
    snapshot: UploadedSchema.optional(),
    /** stateDigest (blobs.ts) of the stage's state after the step: weights, AdamW moments and step. */
    hash: DigestSchema.optional(),
    /** Copies of reduced slices whose content was not what their digest said (sha256: the digest their bytes had, when that is what failed). */
    bad_blobs: z.array(z.object({ key: z.string().min(1).max(512), reason: z.string().min(1).max(2000), sha256: DigestSchema.optional() }).strict()).max(4096).optional(),
    /** A miner: lease the next task in the same request, as with a completion. */
    next: LeaseRequestSchema.optional(),
  })
  .strict();
export type AppliedRequest = z.input<typeof AppliedRequestSchema>;
export const AppliedResponseSchema = z.object({
  status: z.enum(['ok', 'duplicate']),
  /** This replica's state is not the stage's: it will be resynchronised from storage. */
  resync: z.boolean().default(false),
  /** The next task, when the request asked for one and it could be leased. */
  next: LeaseResponseSchema.optional(),
});

/** Progress of a run, for dashboards and the swarm's live view. */
export const RunStatusSchema = z.object({
  run_id: id,
  status: z.enum(['active', 'finished', 'stopped']),
  rounds: count.nullable(),
  rounds_done: count,
  /** Mean training loss of each finished round, oldest first. */
  losses: z.array(z.object({ round: count, loss: z.number().nullable(), tokens: count, reduced_at: count })),
  miners: z.array(z.object({ hotkey: Ss58Schema, stage: count.nullable(), version: count, status: z.string(), last_seen: count })),
  /** The newest stored state of each stage: what a newcomer loads. */
  snapshots: z.array(z.object({ stage: count, rounds: count, key: z.string(), bytes: count })),
});
export type RunStatus = z.infer<typeof RunStatusSchema>;

// ---- versions ----

/** A version: the stages' states after `rounds` rounds, with each stage's agreed hash. */
export const VersionSchema = z.object({
  rounds: count,
  stages: z.array(
    z.object({
      stage: count,
      /** The hash most replicas reported (null: none reported yet). */
      hash: DigestSchema.nullable(),
      agreeing: count,
      diverged: count,
      /** The state is in storage (and so can be exported or rolled back to). */
      stored: z.boolean(),
    }),
  ),
  /** Every stage's state is stored. */
  stored: z.boolean(),
});
export type Version = z.infer<typeof VersionSchema>;
export const VersionsResponseSchema = z.object({ run_id: id, rounds_done: count, versions: z.array(VersionSchema) });
export type VersionsResponse = z.infer<typeof VersionsResponseSchema>;

/** A stored version, for the operator to export: each stage's state blob. */
export const StoredVersionSchema = z.object({
  run_id: id,
  rounds: count,
  preset: z.string(),
  stages: z.array(z.object({ stage: count, layers: z.tuple([count, count]), hash: DigestSchema.nullable(), blob: BlobRefSchema })),
});
export type StoredVersion = z.infer<typeof StoredVersionSchema>;

export const RollbackRequestSchema = z.object({ to: count, reason: z.string().min(1).max(500).default('operator') }).strict();
export type RollbackRequest = z.input<typeof RollbackRequestSchema>;
export const RollbackResponseSchema = z.object({ run_id: id, rounds: count, discarded: count });
export type RollbackResponse = z.infer<typeof RollbackResponseSchema>;

/**
 * What a validator found, signed with its hotkey over verdictMessage(): the verdict is evidence
 * anyone can check later, not only a request that was authenticated once.
 */
export const VerdictRequestSchema = z
  .object({
    lease_id: id,
    /** 'abstain': this validator could not judge (its state is not the stage's); the check goes back to the queue. */
    outcome: z.enum(['pass', 'fail', 'abstain']),
    /** The largest relative error found (1e30 for values that are not finite). */
    error: z.number().nonnegative().max(1e30),
    /** |loss re-run − loss reported|, where a loss was checked. */
    loss_diff: z.number().nonnegative().max(1e30).optional(),
    reason: z.string().max(2000).default(''),
    /** sr25519 signature of verdictMessage(task, verdict), 0x-prefixed hex. */
    signature: z.string().regex(/^0x[0-9a-f]{128}$/, 'expected an sr25519 signature: 0x and 128 hex digits'),
  })
  .strict();
export type VerdictRequest = z.input<typeof VerdictRequestSchema>;
export const VerdictResponseSchema = z.object({ status: z.enum(['accepted', 'duplicate']) });

/** The exact bytes a validator signs for a verdict on check `check` of `miner`. */
export function verdictMessage(v: { run_id: string; check: number; miner: string; round: number; stage: number; outcome: 'pass' | 'fail' | 'abstain'; error: number; loss_diff?: number }): string {
  return `tah-verdict-v1\n${v.run_id}\n${v.check}\n${v.miner}\n${v.round}\n${v.stage}\n${v.outcome}\n${v.error}\n${v.loss_diff ?? ''}`;
}

/** A participant caught doing something wrong, with what shows it. */
export const FLAG_KINDS = ['bad_reduction', 'bad_blob', 'bad_upload', 'failed_check', 'clasp'] as const;
export const FlagSchema = z.object({
  hotkey: Ss58Schema,
  kind: z.enum(FLAG_KINDS),
  round: count.nullable(),
  stage: count.nullable(),
  at: count,
  /** What shows it: blob keys (kept), digests, the result that won. */
  evidence: z.record(z.string(), z.unknown()),
});
export type Flag = z.infer<typeof FlagSchema>;
export const FlagsResponseSchema = z.object({ flags: z.array(FlagSchema) });
export const ReleaseResponseSchema = z.object({ status: z.literal('released') });

/**
 * A reader outside a work lease (a replica loading a stored state, a validator) found a blob whose
 * bytes do not have the digest accepted for it. The orchestrator hashes the stored blob itself:
 * 'confirmed' flags its producer and re-issues what it made; 'unconfirmed' (the stored blob is as
 * accepted) blames nobody.
 */
export const RefusalRequestSchema = z.object({ key: z.string().min(1).max(512), sha256: DigestSchema, reason: z.string().min(1).max(2000) }).strict();
export type RefusalRequest = z.infer<typeof RefusalRequestSchema>;
export const RefusalResponseSchema = z.object({ status: z.enum(['confirmed', 'unconfirmed']) });

// ---- samples and pathways ----

export const PathwaySchema = z.object({
  sample_id: id,
  run_id: id,
  loss: z.number().nullable(),
  done: z.boolean(),
  stages: z.array(
    z.object({
      stage: count,
      forward_miner: Ss58Schema.nullable(),
      backward_miner: Ss58Schema.nullable(),
    }),
  ),
});
export type Pathway = z.infer<typeof PathwaySchema>;

/** Which rounds an attribution covers (query string: both optional, inclusive). */
export const AttributionQuerySchema = z
  .object({ from: z.coerce.number().int().nonnegative().optional(), to: z.coerce.number().int().nonnegative().optional() })
  .strict()
  .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, 'from must not be after to');
/**
 * CLASP over a run's finished samples (docs/VALIDATION.md): each miner's effect on the loss of the
 * samples it computed, against its stage's average, and whether that is significantly worse.
 */
export const AttributionSchema = z.object({
  run_id: id,
  from_round: count,
  to_round: count,
  samples: count,
  sigma: z.number(),
  threshold: z.number().nullable(),
  miners: z.array(z.object({ hotkey: Ss58Schema, stage: count, samples: count, effect: z.number(), se: z.number(), z: z.number(), tested: z.boolean(), flagged: z.boolean() })),
});
export type Attribution = z.infer<typeof AttributionSchema>;

// ---- rewards ----

/** One miner's line of an epoch: what it did, what was found, its score and its share of the reward. */
export const RewardSchema = z.object({
  epoch: count,
  hotkey: Ss58Schema,
  /** Compute-weighted work items done in the epoch (forward 1, backward 2, both 3, × the stage's parameters / the model's). */
  work: z.number().nonnegative(),
  /** Checks of its work that validators passed and failed, in the epoch. */
  passed: count,
  failed: count,
  /** Fraction of the epoch's rounds in which it completed work. */
  liveness: z.number().min(0).max(1),
  score: z.number().nonnegative(),
  /** score / the epoch's total; 0 without a score. Sums to 1 over an epoch's miners with a score. */
  share: z.number().min(0).max(1),
  /** Why the score is 0 or reduced, for people (e.g. 'excluded: failed check in round 12 (evidence: flag 3)'). */
  reason: z.string().nullable(),
});
export type Reward = z.infer<typeof RewardSchema>;

/** A closed epoch: final, never changed afterwards. */
export const EpochSchema = z.object({
  run_id: id,
  epoch: count,
  from_round: count,
  to_round: count,
  closed_at: count,
  total_score: z.number().nonnegative(),
  miners: count,
  /** Hotkeys excluded in or before this epoch. */
  excluded: z.array(Ss58Schema),
});
export type Epoch = z.infer<typeof EpochSchema>;

/** The public summary: every closed epoch with its top shares. */
export const EpochsResponseSchema = z.object({
  run_id: id,
  epoch_rounds: positive,
  epochs: z.array(EpochSchema.extend({ top: z.array(RewardSchema.pick({ hotkey: true, score: true, share: true })) })),
});
export type EpochsResponse = z.infer<typeof EpochsResponseSchema>;

/** A miner's history: its line in every closed epoch, and its work so far in the open one (pending). */
export const MinerRewardsSchema = z.object({
  run_id: id,
  hotkey: Ss58Schema,
  epochs: z.array(RewardSchema.extend({ from_round: count, to_round: count, closed_at: count })),
  pending: z.object({ epoch: count, from_round: count, work: z.number().nonnegative(), passed: count, failed: count }).nullable(),
  flags: z.array(FlagSchema),
});
export type MinerRewards = z.infer<typeof MinerRewardsSchema>;

// ---- public dashboard ----

/**
 * A run at a glance, for its public page (the renderer's network route): the pipeline's stages
 * with their miners and throughput, the loss curve, merges, validators' verdicts and the top
 * contributors of the newest closed epoch. Read-only and unauthenticated, like the epochs.
 */
export const DashboardSchema = z.object({
  run_id: id,
  preset: z.string(),
  status: z.enum(['active', 'finished', 'stopped']),
  rounds: count.nullable(),
  rounds_done: count,
  epoch_rounds: positive,
  /** The model's layer count, so a picture of the pipeline can place each stage's layers. */
  layers: positive,
  stages: z.array(
    z.object({
      stage: count,
      /** First and last layer of the stage. */
      layers: z.tuple([count, count]),
      params: count,
      /** Miners holding the stage now (not gone or excluded). */
      miners: count,
      /** Tokens the stage processed per second over the last few rounds (forward passes). */
      tokens_per_s: z.number().nonnegative(),
      /** Rounds whose gradients this stage's replicas combined (all-reduce or merge). */
      merges: count,
    }),
  ),
  /** Mean training loss of each finished round, oldest first. */
  losses: z.array(z.object({ round: count, loss: z.number().nullable(), tokens: count, reduced_at: count })),
  tokens: count,
  /** Whole-model tokens per second over the last few rounds. */
  tokens_per_s: z.number().nonnegative(),
  validators: count,
  verdicts: z.object({ passed: count, failed: count, pending: count }),
  flags: count,
  /** The newest closed epoch's largest shares; empty before the first epoch closes. */
  top: z.array(z.object({ epoch: count, hotkey: Ss58Schema, score: z.number().nonnegative(), share: z.number().min(0).max(1) })),
  updated_at: count,
});
export type Dashboard = z.infer<typeof DashboardSchema>;

// ---- service ----

export const HealthSchema = z.object({
  status: z.enum(['ok', 'starting', 'degraded']),
  version: z.string(),
  uptime_s: z.number(),
  /** The id of the orchestrator's local blob store (absent with S3): a miner on its machine may open the directory directly. */
  local_store_id: z
    .string()
    .regex(/^[0-9a-f]{32}$/)
    .optional(),
});
export type Health = z.infer<typeof HealthSchema>;
