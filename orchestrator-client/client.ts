// The orchestrator's client: its calls built from the route table (routes.ts), every request
// signed with the caller's hotkey, every response checked against the route's schema, typed
// errors, and retries with backoff for what is worth retrying (network failures, 429, 503), so
// miners ride out restarts of the orchestrator.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { z } from 'zod';
import {
  API_PREFIX,
  type AppliedRequest,
  type AppliedResponseSchema,
  type Assignment,
  type Attribution,
  type CompleteRequest,
  type CompleteResponseSchema,
  type Dashboard,
  type EpochsResponse,
  ErrorBodySchema,
  type ErrorCode,
  type Flag,
  type Health,
  type HeartbeatResponseSchema,
  type LeaseRequest,
  type LeaseResponse,
  type LeaveResponseSchema,
  type MinerRewards,
  type Pathway,
  type RefusalRequest,
  type RefusalResponseSchema,
  type RegisterRequest,
  type RejectResponseSchema,
  type ReleaseResponseSchema,
  type RollbackRequest,
  type RollbackResponse,
  type Run,
  type RunStatus,
  type StoredVersion,
  type VerdictRequest,
  type VerdictResponseSchema,
  type VersionsResponse,
} from './protocol.ts';
import { type ApiRouteName, type BodyInputOf, type ParamsInputOf, type ResponseOf, ROUTES, type RouteDef, routePath } from './routes.ts';
import { type Keypair, signMessage, signRequest } from './signing.ts';

export class OrchestratorError extends Error {
  constructor(
    readonly code: ErrorCode | 'network' | 'bad_response',
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  baseUrl: string;
  keypair: Keypair;
  now?: () => number;
  /** Attempts for retryable failures (1 = no retry). */
  attempts?: number;
  /** First backoff delay; doubles each attempt, capped at maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const RETRYABLE = new Set<string>(['network', 'rate_limited', 'unavailable', 'run_full', 'internal']);

export class OrchestratorClient {
  private readonly base: string;

  constructor(private readonly opts: ClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
  }

  get hotkey(): string {
    return this.opts.keypair.address;
  }

  /** Signs a statement with this client's hotkey (a validator's verdict: evidence anyone can check). */
  sign(message: string): string {
    return signMessage(this.opts.keypair, message);
  }

  /** One signed request to `${API_PREFIX}${path}`, retried with backoff where a retry can help. */
  request<S extends z.ZodType>(method: 'GET' | 'POST', path: string, schema: S, body?: unknown): Promise<z.output<S>> {
    return this.send(method, `${API_PREFIX}${path}`, schema, body);
  }

  /** A route of the table (routes.ts): its method, its path with `params` filled in, its schemas. */
  call<K extends ApiRouteName>(name: K, args: { params?: ParamsInputOf<K>; query?: Record<string, string | number | undefined>; body?: BodyInputOf<K> } = {}): Promise<ResponseOf<K>> {
    const route: RouteDef = ROUTES[name];
    const query = new URLSearchParams(Object.entries(args.query ?? {}).flatMap(([k, v]): [string, string][] => (v === undefined ? [] : [[k, String(v)]]))).toString();
    const path = routePath(route.path, args.params as Record<string, string | number> | undefined) + (query ? `?${query}` : '');
    return this.send(route.method as 'GET' | 'POST', path, route.response!, args.body) as Promise<ResponseOf<K>>;
  }

  private async send<S extends z.ZodType>(method: 'GET' | 'POST', path: string, schema: S, body?: unknown): Promise<z.output<S>> {
    const attempts = this.opts.attempts ?? 6;
    const sleep = this.opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(method, path, schema, body);
      } catch (e) {
        if (!(e instanceof OrchestratorError) || !RETRYABLE.has(e.code) || attempt >= attempts) throw e;
        const backoff = Math.min(this.opts.maxDelayMs ?? 10_000, (this.opts.baseDelayMs ?? 250) * 2 ** (attempt - 1));
        await sleep(Math.max(backoff, e.retryAfterMs ?? 0) * (0.75 + 0.5 * Math.random()));
      }
    }
  }

  private async once<S extends z.ZodType>(method: string, full: string, schema: S, body?: unknown): Promise<z.output<S>> {
    const raw = body === undefined ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(body));
    const headers: Record<string, string> = signRequest(this.opts.keypair, { method, path: full, body: raw }, { now: (this.opts.now ?? Date.now)() });
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Answer;
    try {
      res = await send(`${this.base}${full}`, method, headers, body === undefined ? undefined : raw, this.opts.timeoutMs ?? 30_000);
    } catch (e) {
      const cause = (e as { code?: string }).code ?? (e as Error).message;
      throw new OrchestratorError('network', `cannot reach the orchestrator at ${this.base} (${cause === 'ABORT_ERR' ? 'no answer in time' : cause})`);
    }
    const text = res.text;
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new OrchestratorError('bad_response', `orchestrator answered ${method} ${full} with ${res.status} and a body that is not JSON`, res.status);
    }
    if (res.status < 200 || res.status >= 300) {
      const err = ErrorBodySchema.safeParse(json);
      const retryAfter = Number(res.retryAfter);
      const retryAfterMs = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined;
      if (err.success) throw new OrchestratorError(err.data.error.code, err.data.error.message, res.status, retryAfterMs);
      throw new OrchestratorError(res.status >= 500 ? 'internal' : 'bad_response', `orchestrator answered ${method} ${full} with ${res.status}`, res.status, retryAfterMs);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new OrchestratorError('bad_response', `orchestrator's answer to ${method} ${full} does not match the protocol: ${parsed.error.issues[0]?.message}`, res.status);
    return parsed.data;
  }

  /** Whether the orchestrator is up, its version and (with a local store) the store's id. */
  health(): Promise<Health> {
    return this.call('health');
  }
  register(req: RegisterRequest): Promise<Assignment> {
    return this.call('register', { body: req });
  }
  heartbeat(): Promise<z.output<typeof HeartbeatResponseSchema>> {
    return this.call('heartbeat', { body: {} });
  }
  /** Stops taking part: what this miner held is re-issued at once. */
  leave(): Promise<z.output<typeof LeaveResponseSchema>> {
    return this.call('leave', { body: {} });
  }
  move(stage?: number): Promise<Assignment> {
    return this.call('move', { body: stage === undefined ? {} : { stage } });
  }
  /** The next task for a miner holding `version` rounds; waits up to wait_ms for one to appear. */
  lease(req: LeaseRequest = {}): Promise<LeaseResponse> {
    return this.call('leaseNext', { body: req });
  }
  /**
   * Refuses a lease whose input (another miner's upload) failed validation: `key` names the input,
   * `sha256` the digest its bytes had when they were not what was accepted.
   */
  reject(leaseId: string, reason: string, blob: { key?: string; sha256?: string } = {}): Promise<z.output<typeof RejectResponseSchema>> {
    return this.call('reject', { body: { lease_id: leaseId, reason: reason.slice(0, 2000), ...blob } });
  }
  /** Reports a blob read outside a lease whose bytes are not what was accepted (see RefusalRequestSchema). */
  refusal(req: RefusalRequest): Promise<z.output<typeof RefusalResponseSchema>> {
    return this.call('refusal', { body: { ...req, reason: req.reason.slice(0, 2000) } });
  }
  applied(req: AppliedRequest): Promise<z.output<typeof AppliedResponseSchema>> {
    return this.call('applied', { body: req });
  }
  runStatus(runId: string): Promise<RunStatus> {
    return this.call('runStatus', { params: { run: runId } });
  }
  /** Every version of a run: the stages' agreed hashes and whether they are stored. */
  versions(runId: string): Promise<VersionsResponse> {
    return this.call('versions', { params: { run: runId } });
  }
  /** A stored version's stage states (operator). */
  storedVersion(runId: string, rounds: number): Promise<StoredVersion> {
    return this.call('storedVersion', { params: { run: runId, rounds: String(rounds) } });
  }
  /** Takes a run back to a stored version (operator). */
  rollback(runId: string, req: RollbackRequest): Promise<RollbackResponse> {
    return this.call('rollback', { params: { run: runId }, body: req });
  }
  /** Each miner's effect on the loss of the samples it computed (CLASP), over rounds [from, to]. */
  attribution(runId: string, range: { from?: number; to?: number } = {}): Promise<Attribution> {
    return this.call('attribution', { params: { run: runId }, query: range });
  }
  /** Everyone caught doing wrong in a run, with the evidence. */
  async flags(runId: string): Promise<Flag[]> {
    return (await this.call('flags', { params: { run: runId } })).flags;
  }
  /** A validator's next task: a check of its stage's round, a step to apply, or a stored state to load. */
  nextCheck(req: LeaseRequest = {}): Promise<LeaseResponse> {
    return this.call('checkNext', { body: req });
  }
  /** A validator's signed verdict on a check it leased. */
  verdict(req: VerdictRequest): Promise<z.output<typeof VerdictResponseSchema>> {
    return this.call('verdict', { body: req });
  }
  /** The closed reward epochs of a run, each with its largest shares (public). */
  epochs(runId: string): Promise<EpochsResponse> {
    return this.call('epochs', { params: { run: runId } });
  }
  /** A run at a glance (public): the run given, or the orchestrator's newest. */
  dashboard(runId?: string): Promise<Dashboard> {
    return runId === undefined ? this.call('dashboard') : this.call('runDashboard', { params: { run: runId } });
  }
  /** A miner's reward history: its line in every closed epoch, its pending work, its flags. */
  rewards(runId: string, hotkey: string): Promise<MinerRewards> {
    return this.call('rewards', { params: { run: runId, hotkey } });
  }
  complete(req: CompleteRequest): Promise<z.output<typeof CompleteResponseSchema>> {
    return this.call('complete', { body: req });
  }
  release(leaseId: string): Promise<z.output<typeof ReleaseResponseSchema>> {
    return this.call('release', { body: { lease_id: leaseId } });
  }
  pathway(runId: string, sampleId: string): Promise<Pathway> {
    return this.call('pathway', { params: { run: runId, sample: sampleId } });
  }
  run(runId: string): Promise<Run> {
    return this.call('run', { params: { run: runId } });
  }
  createRun(spec: unknown): Promise<Run> {
    return this.call('createRun', { body: spec });
  }
}

interface Answer {
  status: number;
  text: string;
  retryAfter: string | null;
}

/**
 * One HTTP exchange with Node's own client, not fetch: a miner sends dozens of small requests a
 * round, and fetch costs about four times the CPU per request (measured: 1.0 against 0.26 ms for
 * a signed JSON POST on loopback). The global agent keeps connections alive.
 */
function send(url: string, method: string, headers: Record<string, string>, body: Uint8Array | undefined, timeoutMs: number): Promise<Answer> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(target, { method, headers: body ? { ...headers, 'content-length': String(body.byteLength) } : headers, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const retryAfter = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), retryAfter: typeof retryAfter === 'string' ? retryAfter : null });
      });
      res.on('error', reject);
      res.on('aborted', () => reject(Object.assign(new Error('the connection closed before the answer ended'), { code: 'ECONNRESET' })));
    });
    req.on('error', reject);
    req.end(body);
  });
}
