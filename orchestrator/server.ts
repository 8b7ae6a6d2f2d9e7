// The orchestrator's HTTP service: fastify routes over the Coordinator. Every /v1 route except
// health, readiness and the blob URLs (which carry their own signatures) takes a signed request;
// the signer's hotkey is the caller's identity.
import { createReadStream } from 'node:fs';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { Registry, collectDefaultMetrics, Counter, Gauge, Histogram } from 'prom-client';
import {
  API_PREFIX,
  AUTH_HEADERS,
  AppliedRequestSchema,
  AttributionQuerySchema,
  CompleteRequestSchema,
  type LeaseRequest,
  LeaseRequestSchema,
  type LeaseResponse,
  VerdictRequestSchema,
  MoveRequestSchema,
  RegisterRequestSchema,
  RejectRequestSchema,
  RollbackRequestSchema,
  ReleaseRequestSchema,
} from '../orchestrator-client/protocol.ts';
import { NonceCache, ready as cryptoReady, verifyRequest } from '../orchestrator-client/signing.ts';
import { resolveStaticFile } from '../orchestrator-client/static-files.ts';
import type { Coordinator } from './coordinator.ts';
import { ApiError, errorBody, installErrorHandling, parse } from './http.ts';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
    hotkey?: string;
  }
}

export interface ServerOptions {
  coordinator: Coordinator;
  /** SS58 hotkey allowed to call /v1/admin. */
  operator?: string;
  now?: () => number;
  /** Signed requests older or newer than this are refused. */
  signatureWindowMs?: number;
  /** Requests per minute per address and claimed hotkey, counted before authentication; also the cap on failed signatures per address. */
  rateLimitPerMinute?: number;
  bodyLimitBytes?: number;
  logger?: FastifyServerOptions['logger'];
  /** Extra routes (the local blob store) registered on the same server. */
  plugins?: ((app: FastifyInstance) => Promise<void> | void)[];
  /** The built renderer, served read-only at / as the runs' public dashboard. */
  uiDir?: string;
  version?: string;
  isReady?: () => Promise<boolean>;
  /** The local blob store's id, told in /v1/health (see orchestrator/storage/local.ts). */
  localStoreId?: string;
}

/** Failed signature checks per address in a one-minute window; past the limit the address waits. */
class FailureCounter {
  private readonly counts = new Map<string, { since: number; n: number }>();
  constructor(
    private readonly max: number,
    private readonly now: () => number,
  ) {}

  blockedFor(ip: string): number {
    const c = this.counts.get(ip);
    if (!c) return 0;
    const left = c.since + 60_000 - this.now();
    if (left <= 0) {
      this.counts.delete(ip);
      return 0;
    }
    return c.n >= this.max ? left : 0;
  }

  add(ip: string): void {
    const c = this.counts.get(ip);
    if (c && this.now() - c.since < 60_000) c.n++;
    else this.counts.set(ip, { since: this.now(), n: 1 });
    // Bounded memory under a flood from many addresses: forget the oldest windows.
    if (this.counts.size > 100_000) for (const k of [...this.counts.keys()].slice(0, 10_000)) this.counts.delete(k);
  }
}

const shorten = (s: string, n = 200): string => (s.length > n ? `${s.slice(0, n)}…` : s);

const UNSIGNED = new Set([`${API_PREFIX}/health`, `${API_PREFIX}/ready`, '/metrics', `${API_PREFIX}/dashboard`]);
/** Read by the public page in any browser, so without a signature (it shows nothing private). */
const UNSIGNED_PATTERNS = [new RegExp(`^${API_PREFIX}/runs/[^/]+/dashboard$`)];

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  await cryptoReady();
  const now = opts.now ?? Date.now;
  const started = now();
  const nonces = new NonceCache();
  // Requests signed before this process started cannot be checked against the nonces it has
  // not seen, so they are refused: replay protection survives restarts without storing nonces.
  nonces.rejectBefore(started);
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimitBytes ?? 1 << 20,
    trustProxy: false,
    // Errors fastify raises before routing (bad percent-encoding, over-long parameters) and
    // requests node's HTTP parser refuses answer in the same envelope as everything else.
    frameworkErrors: (err, _req, reply) => {
      const status = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : 400;
      void (reply as FastifyReply).code(status).send(errorBody('bad_request', err.code === 'FST_ERR_BAD_URL' ? 'the request path is not valid percent-encoding' : shorten(err.message)));
    },
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      const body = JSON.stringify(errorBody('bad_request', tooLarge ? 'request headers are too large' : 'malformed HTTP request'));
      // Closed once the answer is out, as node and fastify do by default: a request in flight (an
      // upload whose body the parser refused) ends only with its connection, and a client that
      // keeps its side open would otherwise hold both, and the upload's file, for ever.
      if (socket.writable) socket.end(`HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`, () => socket.destroy());
      else socket.destroy();
    },
  });
  installErrorHandling(app);
  // CONNECT is not for this server; answer it rather than leave the socket hanging.
  app.server.on('connect', (_req, socket) => {
    const body = JSON.stringify(errorBody('bad_request', 'CONNECT is not supported'));
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });

  // Only JSON: fastify's default text parser would let a text body reach the signature check.
  app.removeAllContentTypeParsers();
  // Keep the raw body: the signature covers its exact bytes.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body: Buffer, done) => {
    req.rawBody = body;
    if (body.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(body.toString('utf8')));
    } catch (e) {
      done(new ApiError('bad_request', `request body is not valid JSON (${(e as Error).message})`), undefined);
    }
  });

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'tah_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [registry] });
  // Training progress of the active runs, read from the database when scraped.
  const runLabels = ['run'];
  const roundsDone = new Gauge({ name: 'tah_rounds_reduced', help: 'rounds whose step is known', labelNames: runLabels, registers: [registry] });
  const roundLoss = new Gauge({ name: 'tah_round_loss', help: 'mean training loss of the newest reduced round', labelNames: runLabels, registers: [registry] });
  const roundSeconds = new Gauge({ name: 'tah_round_seconds', help: 'time between the two newest reduced rounds', labelNames: runLabels, registers: [registry] });
  const minersActive = new Gauge({
    name: 'tah_miners_active',
    help: 'active miners per run and stage',
    labelNames: ['run', 'stage'],
    registers: [registry],
    async collect() {
      for (const st of await opts.coordinator.activeRunStatuses()) {
        roundsDone.set({ run: st.run_id }, st.rounds_done);
        const last = st.losses.at(-1);
        if (last?.loss !== null && last?.loss !== undefined) roundLoss.set({ run: st.run_id }, last.loss);
        const prev = st.losses.at(-2);
        if (last && prev) roundSeconds.set({ run: st.run_id }, (last.reduced_at - prev.reduced_at) / 1000);
        const perStage = new Map<number, number>();
        for (const m of st.miners) if (m.status === 'active' && m.stage !== null) perStage.set(m.stage, (perStage.get(m.stage) ?? 0) + 1);
        for (const [stage, n] of perStage) this.set({ run: st.run_id, stage: String(stage) }, n);
      }
    },
  });
  void minersActive;
  const latency = new Histogram({ name: 'tah_http_request_seconds', help: 'HTTP request latency', labelNames: ['route'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests.inc({ route, status: reply.statusCode });
    latency.observe({ route }, reply.elapsedTime / 1000);
  });

  const limit = opts.rateLimitPerMinute ?? 6000;
  // Counted as requests arrive, before the signature check, so forgeries count too. The key is
  // the address plus the claimed hotkey: a stranger claiming someone's hotkey spends only its own
  // address's share, and one address rotating made-up hotkeys is stopped by `failures` below.
  await app.register(rateLimit, {
    hook: 'onRequest',
    max: limit,
    timeWindow: 60_000,
    keyGenerator: (req) => `${req.ip}|${String(req.headers[AUTH_HEADERS.hotkey] ?? '')}`,
    // Blob transfers carry their own signed, expiring URLs and are bounded by the leases.
    allowList: (req) => req.url.startsWith(`${API_PREFIX}/blobs/`),
    errorResponseBuilder: (_req, ctx) => new ApiError('rate_limited', `too many requests: at most ${ctx.max} a minute; retry in ${Math.ceil(ctx.ttl / 1000)} s`, undefined, { 'retry-after': String(Math.ceil(ctx.ttl / 1000)) }),
  });
  const failures = new FailureCounter(limit, now);

  app.addHook('preHandler', async (req: FastifyRequest) => {
    const path = req.url.split('?')[0];
    if (UNSIGNED.has(path) || UNSIGNED_PATTERNS.some((p) => p.test(path)) || path.startsWith(`${API_PREFIX}/blobs/`) || !path.startsWith(API_PREFIX)) return;
    const wait = failures.blockedFor(req.ip);
    if (wait > 0) throw new ApiError('rate_limited', `too many failed signatures from this address; retry in ${Math.ceil(wait / 1000)} s`, undefined, { 'retry-after': String(Math.ceil(wait / 1000)) });
    const result = verifyRequest(
      { method: req.method, path: req.url, body: req.rawBody ?? Buffer.alloc(0), headers: req.headers as Record<string, string | string[] | undefined> },
      { now: now(), windowMs: opts.signatureWindowMs ?? 60_000, seen: nonces },
    );
    if (!result.ok) {
      failures.add(req.ip);
      throw new ApiError(result.code, result.message);
    }
    req.hotkey = result.hotkey;
  });

  const c = opts.coordinator;
  const who = (req: FastifyRequest): string => req.hotkey!;
  const operatorOnly = (req: FastifyRequest): void => {
    if (!opts.operator || req.hotkey !== opts.operator) throw new ApiError('forbidden', 'this endpoint is for the run operator');
  };

  app.get(`${API_PREFIX}/health`, async () => ({
    status: 'ok',
    version: opts.version ?? 'dev',
    uptime_s: (now() - started) / 1000,
    ...(opts.localStoreId ? { local_store_id: opts.localStoreId } : {}),
  }));
  app.get(`${API_PREFIX}/ready`, async (_req, reply) => {
    const ok = opts.isReady ? await opts.isReady().catch(() => false) : true;
    if (!ok) return reply.code(503).send(errorBody('unavailable', 'not ready: the database is not reachable'));
    return { status: 'ok', version: opts.version ?? 'dev', uptime_s: (now() - started) / 1000 };
  });
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));

  app.post(`${API_PREFIX}/participants/register`, async (req) => c.register(who(req), parse(RegisterRequestSchema, req.body, 'registration')));
  app.post(`${API_PREFIX}/participants/heartbeat`, async (req) => c.heartbeat(who(req)));
  app.post(`${API_PREFIX}/participants/leave`, async (req) => {
    await c.leave(who(req));
    return { status: 'left' };
  });
  app.post(`${API_PREFIX}/participants/move`, async (req) => c.move(who(req), parse(MoveRequestSchema, req.body ?? {}, 'move request').stage));
  app.post(`${API_PREFIX}/leases/next`, async (req) => c.lease(who(req), parse(LeaseRequestSchema, req.body ?? {}, 'lease request')));
  // A completion or an applied report may lease the next task too: one request a task, not two.
  // The report is recorded whatever happens to the lease; a lease that fails, or that would jump
  // ahead of a miner already asking, is left out of the answer, and the miner asks on its own.
  const leaseAfter = async (hotkey: string, next: LeaseRequest | undefined): Promise<{ next?: LeaseResponse }> => {
    if (next === undefined) return {};
    try {
      const lease = await c.leaseAfterReport(hotkey, next);
      return lease ? { next: lease } : {};
    } catch {
      return {};
    }
  };
  app.post(`${API_PREFIX}/leases/complete`, async (req) => {
    const { next, ...completion } = parse(CompleteRequestSchema, req.body, 'completion');
    return { ...(await c.complete(who(req), completion)), ...(await leaseAfter(who(req), next)) };
  });
  app.post(`${API_PREFIX}/leases/release`, async (req) => {
    await c.release(who(req), parse(ReleaseRequestSchema, req.body, 'release').lease_id);
    return { status: 'released' };
  });
  app.post(`${API_PREFIX}/leases/reject`, async (req) => {
    const r = parse(RejectRequestSchema, req.body, 'rejection');
    await c.reject(who(req), r.lease_id, r.reason);
    return { status: 'rejected' };
  });
  app.post(`${API_PREFIX}/checks/next`, async (req) => c.checkLease(who(req), parse(LeaseRequestSchema, req.body ?? {}, 'check lease request')));
  app.post(`${API_PREFIX}/checks/verdict`, async (req) => c.verdict(who(req), parse(VerdictRequestSchema, req.body, 'verdict')));
  app.get<{ Params: { run: string } }>(`${API_PREFIX}/runs/:run/epochs`, async (req) => c.epochs(req.params.run));
  app.get(`${API_PREFIX}/dashboard`, async () => c.dashboard());
  app.get<{ Params: { run: string } }>(`${API_PREFIX}/runs/:run/dashboard`, async (req) => c.dashboard(req.params.run));
  app.get<{ Params: { run: string; hotkey: string } }>(`${API_PREFIX}/runs/:run/rewards/:hotkey`, async (req) => c.minerRewards(req.params.run, req.params.hotkey));
  app.post(`${API_PREFIX}/rounds/applied`, async (req) => {
    const { next, ...report } = parse(AppliedRequestSchema, req.body, 'applied report');
    return { ...(await c.applied(who(req), report)), ...(await leaseAfter(who(req), next)) };
  });
  app.get<{ Params: { run: string } }>(`${API_PREFIX}/runs/:run/status`, async (req) => c.runStatus(req.params.run));
  app.get<{ Params: { run: string } }>(`${API_PREFIX}/runs/:run/flags`, async (req) => ({ flags: await c.flags(req.params.run) }));
  app.get<{ Params: { run: string } }>(`${API_PREFIX}/runs/:run/versions`, async (req) => c.versions(req.params.run));
  app.get<{ Params: { run: string; rounds: string } }>(`${API_PREFIX}/admin/runs/:run/versions/:rounds`, async (req) => {
    operatorOnly(req);
    if (!/^\d{1,9}$/.test(req.params.rounds)) throw new ApiError('bad_request', `a version is a number of rounds, got '${req.params.rounds.slice(0, 20)}'`);
    return c.storedVersion(req.params.run, Number(req.params.rounds));
  });
  app.post<{ Params: { run: string } }>(`${API_PREFIX}/admin/runs/:run/rollback`, async (req) => {
    operatorOnly(req);
    const r = parse(RollbackRequestSchema, req.body, 'rollback request');
    return c.rollback(req.params.run, r.to, r.reason);
  });
  app.get<{ Params: { run: string } }>(`${API_PREFIX}/runs/:run/attribution`, async (req) => c.attribution(req.params.run, parse(AttributionQuerySchema, req.query ?? {}, 'attribution query')));
  app.get<{ Params: { run: string; sample: string } }>(`${API_PREFIX}/runs/:run/samples/:sample`, async (req) => c.pathway(req.params.run, req.params.sample));
  app.get<{ Params: { run: string } }>(`${API_PREFIX}/runs/:run`, async (req) => c.getRun(req.params.run));
  app.post(`${API_PREFIX}/admin/runs`, async (req, reply) => {
    operatorOnly(req);
    const run = await c.createRun(req.body);
    return reply.code(201).send(run);
  });

  for (const plugin of opts.plugins ?? []) await plugin(app);
  if (opts.uiDir) serveUi(app, opts.uiDir);
  return app;
}

/** The public page's policy: its own scripts and styles, and requests to this server only. */
export const UI_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The built renderer at /, read-only; its routes fall back to index.html, unknown API paths stay JSON 404s. */
function serveUi(app: FastifyInstance, dir: string): void {
  const answer = async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0];
    if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) throw new ApiError('not_found', `no such endpoint: ${req.method} ${path}`);
    const found = await resolveStaticFile(dir, path);
    if (found.status !== 200) throw new ApiError(found.status === 403 ? 'forbidden' : 'not_found', `no such file: ${path}`);
    reply.header('content-security-policy', UI_CSP).header('x-content-type-options', 'nosniff').header('cache-control', path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache').type(found.type);
    return reply.send(createReadStream(found.file));
  };
  app.get('/', answer);
  app.get('/*', answer);
}
