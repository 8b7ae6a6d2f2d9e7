// Every route of the orchestrator's HTTP API, once: method, path, who may call it, and the
// schemas of its parameters, query, body and answer. The server registers its routes from this
// table and checks each request's access on the route it matched (never on the request's text);
// the client builds its calls from it. Protocol schemas live in protocol.ts.
import { z } from 'zod';
import {
  AppliedRequestSchema,
  AppliedResponseSchema,
  AssignmentSchema,
  AttributionQuerySchema,
  AttributionSchema,
  CompleteRequestSchema,
  CompleteResponseSchema,
  DashboardSchema,
  EpochsResponseSchema,
  FlagsResponseSchema,
  HealthSchema,
  HeartbeatResponseSchema,
  IdSchema,
  LeaseRequestSchema,
  LeaseResponseSchema,
  LeaveResponseSchema,
  MinerRewardsSchema,
  MoveRequestSchema,
  PathwaySchema,
  RefusalRequestSchema,
  RefusalResponseSchema,
  RegisterRequestSchema,
  RejectRequestSchema,
  RejectResponseSchema,
  ReleaseRequestSchema,
  ReleaseResponseSchema,
  RollbackRequestSchema,
  RollbackResponseSchema,
  RunSchema,
  RunStatusSchema,
  Ss58Schema,
  StoredVersionSchema,
  VerdictRequestSchema,
  VerdictResponseSchema,
  VersionsResponseSchema,
} from './protocol.ts';

/**
 * Who may call a route:
 *  - public: anyone, unsigned (health, the public dashboard, metrics, the built interface);
 *  - signed: any valid signature (the signer's hotkey is the caller);
 *  - participant / miner / validator: signed by a hotkey registered and active in a run (as that role);
 *  - operator: signed by the run operator's hotkey;
 *  - blob_url: the local blob store's own HMAC-signed, expiring URLs (no request signature).
 */
export const ACCESS = ['public', 'signed', 'participant', 'miner', 'validator', 'operator', 'blob_url'] as const;
export type Access = (typeof ACCESS)[number];

export interface RouteDef {
  readonly method: 'GET' | 'POST' | 'PUT';
  /** fastify syntax: ':name' is a parameter, a final '*' the rest of the path. */
  readonly path: string;
  readonly access: Access;
  /** Path parameters (absent: none). */
  readonly params?: z.ZodObject;
  /** The query string (absent: none allowed on an API route). */
  readonly query?: z.ZodType;
  /** A JSON body (absent: none read). */
  readonly body?: z.ZodType;
  /** An absent body reads as {} (requests whose every field is optional). */
  readonly bodyOptional?: boolean;
  /** What the body is, for error messages ("invalid registration: …"). */
  readonly what?: string;
  /** The JSON answer (absent: not JSON, e.g. metrics, blobs, the interface). */
  readonly response?: z.ZodType;
}

const run = z.object({ run: IdSchema }).strict();
/** A version is a whole number of rounds, written in decimal. */
const Rounds = z.string().regex(/^\d{1,9}$/, 'a version is a number of rounds').transform(Number);
/** Some requests have no fields; a body, when sent, is the empty object. */
const Empty = z.object({}).strict();

export const ReadySchema = z.object({ status: z.literal('ok'), version: z.string(), uptime_s: z.number() });

export const ROUTES = {
  health: { method: 'GET', path: '/v1/health', access: 'public', response: HealthSchema },
  ready: { method: 'GET', path: '/v1/ready', access: 'public', response: ReadySchema },
  metrics: { method: 'GET', path: '/metrics', access: 'public' },
  dashboard: { method: 'GET', path: '/v1/dashboard', access: 'public', response: DashboardSchema },
  runDashboard: { method: 'GET', path: '/v1/runs/:run/dashboard', access: 'public', params: run, response: DashboardSchema },

  register: { method: 'POST', path: '/v1/participants/register', access: 'signed', body: RegisterRequestSchema, what: 'registration', response: AssignmentSchema },
  heartbeat: { method: 'POST', path: '/v1/participants/heartbeat', access: 'participant', body: Empty, bodyOptional: true, what: 'heartbeat', response: HeartbeatResponseSchema },
  leave: { method: 'POST', path: '/v1/participants/leave', access: 'participant', body: Empty, bodyOptional: true, what: 'leave request', response: LeaveResponseSchema },
  move: { method: 'POST', path: '/v1/participants/move', access: 'miner', body: MoveRequestSchema, bodyOptional: true, what: 'move request', response: AssignmentSchema },
  leaseNext: { method: 'POST', path: '/v1/leases/next', access: 'miner', body: LeaseRequestSchema, bodyOptional: true, what: 'lease request', response: LeaseResponseSchema },
  complete: { method: 'POST', path: '/v1/leases/complete', access: 'miner', body: CompleteRequestSchema, what: 'completion', response: CompleteResponseSchema },
  release: { method: 'POST', path: '/v1/leases/release', access: 'miner', body: ReleaseRequestSchema, what: 'release', response: ReleaseResponseSchema },
  reject: { method: 'POST', path: '/v1/leases/reject', access: 'miner', body: RejectRequestSchema, what: 'rejection', response: RejectResponseSchema },
  applied: { method: 'POST', path: '/v1/rounds/applied', access: 'miner', body: AppliedRequestSchema, what: 'applied report', response: AppliedResponseSchema },
  refusal: { method: 'POST', path: '/v1/refusals', access: 'participant', body: RefusalRequestSchema, what: 'refusal', response: RefusalResponseSchema },
  checkNext: { method: 'POST', path: '/v1/checks/next', access: 'validator', body: LeaseRequestSchema, bodyOptional: true, what: 'check lease request', response: LeaseResponseSchema },
  verdict: { method: 'POST', path: '/v1/checks/verdict', access: 'validator', body: VerdictRequestSchema, what: 'verdict', response: VerdictResponseSchema },

  run: { method: 'GET', path: '/v1/runs/:run', access: 'signed', params: run, response: RunSchema },
  pathway: { method: 'GET', path: '/v1/runs/:run/samples/:sample', access: 'signed', params: z.object({ run: IdSchema, sample: IdSchema }).strict(), response: PathwaySchema },
  runStatus: { method: 'GET', path: '/v1/runs/:run/status', access: 'signed', params: run, response: RunStatusSchema },
  versions: { method: 'GET', path: '/v1/runs/:run/versions', access: 'signed', params: run, response: VersionsResponseSchema },
  flags: { method: 'GET', path: '/v1/runs/:run/flags', access: 'signed', params: run, response: FlagsResponseSchema },
  attribution: { method: 'GET', path: '/v1/runs/:run/attribution', access: 'signed', params: run, query: AttributionQuerySchema, response: AttributionSchema },
  epochs: { method: 'GET', path: '/v1/runs/:run/epochs', access: 'signed', params: run, response: EpochsResponseSchema },
  rewards: { method: 'GET', path: '/v1/runs/:run/rewards/:hotkey', access: 'signed', params: z.object({ run: IdSchema, hotkey: Ss58Schema }).strict(), response: MinerRewardsSchema },

  // The run specification is checked by the coordinator (checkRunSpec: the schema and the model).
  createRun: { method: 'POST', path: '/v1/admin/runs', access: 'operator', body: z.unknown(), what: 'run specification', response: RunSchema },
  storedVersion: { method: 'GET', path: '/v1/admin/runs/:run/versions/:rounds', access: 'operator', params: z.object({ run: IdSchema, rounds: Rounds }).strict(), response: StoredVersionSchema },
  rollback: { method: 'POST', path: '/v1/admin/runs/:run/rollback', access: 'operator', params: run, body: RollbackRequestSchema, what: 'rollback request', response: RollbackResponseSchema },

  blobGet: { method: 'GET', path: '/v1/blobs/*', access: 'blob_url' },
  blobPut: { method: 'PUT', path: '/v1/blobs/*', access: 'blob_url' },

  // The built interface (the runs' public dashboard), read-only, when the server has one.
  uiIndex: { method: 'GET', path: '/', access: 'public' },
  uiFiles: { method: 'GET', path: '/*', access: 'public' },
} as const satisfies Record<string, RouteDef>;

export type RouteName = keyof typeof ROUTES;
/** Routes that answer JSON: the API proper (the others are metrics, blob transfers, the interface). */
export type ApiRouteName = { [K in RouteName]: (typeof ROUTES)[K] extends { response: z.ZodType } ? K : never }[RouteName];

type Def<K extends RouteName> = (typeof ROUTES)[K];
export type ParamsOf<K extends RouteName> = Def<K> extends { params: infer P extends z.ZodType } ? z.output<P> : Record<string, never>;
export type QueryOf<K extends RouteName> = Def<K> extends { query: infer Q extends z.ZodType } ? z.output<Q> : Record<string, never>;
export type BodyOf<K extends RouteName> = Def<K> extends { body: infer B extends z.ZodType } ? z.output<B> : undefined;
/** What a client sends (before the schema's defaults). */
export type BodyInputOf<K extends RouteName> = Def<K> extends { body: infer B extends z.ZodType } ? z.input<B> : undefined;
export type ResponseOf<K extends RouteName> = Def<K> extends { response: infer R extends z.ZodType } ? z.output<R> : never;
export type ParamsInputOf<K extends RouteName> = Def<K> extends { params: infer P extends z.ZodType } ? z.input<P> : Record<string, never>;
export type QueryInputOf<K extends RouteName> = Def<K> extends { query: infer Q extends z.ZodType } ? z.input<Q> : Record<string, never>;

/** The path of a route with its parameters filled in (each percent-encoded as one segment). */
export function routePath(path: string, params: Record<string, string | number> = {}): string {
  return path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`route ${path}: parameter '${name}' is missing`);
    return encodeURIComponent(String(value));
  });
}

/** The route's path as a regular expression over request paths (parameters: one non-empty segment). */
export function routePattern(path: string, flags = ''): RegExp {
  const body = path
    .split('/')
    .map((seg) => (seg === '*' ? '.*' : seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${body}$`, flags);
}
