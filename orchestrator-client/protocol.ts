// The orchestrator's HTTP protocol: every request and response as a zod schema, used by the
// server to validate what it receives and by the client to validate what it gets back. Paths are
// versioned under /v1. Numbers that are times are milliseconds since the Unix epoch.
import { z } from 'zod';

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

const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only');
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
  })
  .strict();
export type RunSpec = z.output<typeof RunSpecSchema>;

export const RunSchema = RunSpecSchema.extend({
  created_at: count,
  stage_count: positive,
  miners_per_stage: z.array(count),
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

export const MoveRequestSchema = z.object({ stage: count.optional() }).strict();

export const HeartbeatResponseSchema = z.object({ server_time: count, stage: count.nullable(), leases_held: count });

// ---- work ----

export const DirectionSchema = z.enum(['forward', 'backward']);
export type Direction = z.infer<typeof DirectionSchema>;

/** Where a work item's input comes from: a data sample (stage 0 forward) or a stored tensor. */
export const LeaseInputSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('sample'), seed: count, shard: count, index: count }),
  z.object({ kind: z.literal('blob'), key: z.string(), url: z.string(), bytes: count }),
]);

export const LeaseSchema = z.object({
  id,
  run_id: id,
  sample_id: id,
  stage: count,
  direction: DirectionSchema,
  expires_at: count,
  input: LeaseInputSchema,
  /** For a backward item: the activation this miner received as input on the way forward. */
  forward_input: LeaseInputSchema.optional(),
  /** Where the result goes: an activation (forward) or the gradient of the stage input. */
  output: z.object({ kind: z.enum(['activation', 'gradient', 'none']), key: z.string(), url: z.string(), max_bytes: count }),
});
export type Lease = z.infer<typeof LeaseSchema>;

export const LeaseResponseSchema = z.object({
  lease: LeaseSchema.nullable(),
  /** When no work is available: how long to wait before asking again. */
  retry_after_ms: count,
});
export type LeaseResponse = z.infer<typeof LeaseResponseSchema>;

export const CompleteRequestSchema = z
  .object({
    lease_id: id,
    output: z.object({ key: z.string().min(1).max(512), bytes: count }).strict().optional(),
    /** The sample's loss, reported by the last stage. */
    loss: z.number().finite().optional(),
  })
  .strict();
export type CompleteRequest = z.infer<typeof CompleteRequestSchema>;

export const CompleteResponseSchema = z.object({
  /** 'accepted' the first time, 'duplicate' when the same completion arrives again. */
  status: z.enum(['accepted', 'duplicate']),
});

export const ReleaseRequestSchema = z.object({ lease_id: id }).strict();
export const ReleaseResponseSchema = z.object({ status: z.literal('released') });

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

// ---- service ----

export const HealthSchema = z.object({ status: z.enum(['ok', 'starting', 'degraded']), version: z.string(), uptime_s: z.number() });
