// The orchestrator's HTTP service: fastify routes over the Coordinator. Every /v1 route except
// health, readiness and the blob URLs (which carry their own signatures) takes a signed request;
// the signer's hotkey is the caller's identity.
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { Registry, collectDefaultMetrics, Counter, Histogram } from 'prom-client';
import {
  API_PREFIX,
  CompleteRequestSchema,
  MoveRequestSchema,
  RegisterRequestSchema,
  ReleaseRequestSchema,
} from '../orchestrator-client/protocol.ts';
import { NonceCache, ready as cryptoReady, verifyRequest } from '../orchestrator-client/signing.ts';
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
  /** Requests per minute per hotkey (or per address before authentication). */
  rateLimitPerMinute?: number;
  bodyLimitBytes?: number;
  logger?: FastifyServerOptions['logger'];
  /** Extra routes (the local blob store) registered on the same server. */
  plugins?: ((app: FastifyInstance) => Promise<void> | void)[];
  version?: string;
  isReady?: () => Promise<boolean>;
}

const UNSIGNED = new Set([`${API_PREFIX}/health`, `${API_PREFIX}/ready`, '/metrics']);

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  await cryptoReady();
  const now = opts.now ?? Date.now;
  const started = now();
  const nonces = new NonceCache();
  // Requests signed before this process started cannot be checked against the nonces it has
  // not seen, so they are refused: replay protection survives restarts without storing nonces.
  nonces.rejectBefore(started);
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: opts.bodyLimitBytes ?? 1 << 20, trustProxy: false });
  installErrorHandling(app);

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
  const latency = new Histogram({ name: 'tah_http_request_seconds', help: 'HTTP request latency', labelNames: ['route'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests.inc({ route, status: reply.statusCode });
    latency.observe({ route }, reply.elapsedTime / 1000);
  });

  app.addHook('preHandler', async (req: FastifyRequest) => {
    const path = req.url.split('?')[0];
    if (UNSIGNED.has(path) || path.startsWith(`${API_PREFIX}/blobs/`) || !path.startsWith(API_PREFIX)) return;
    const result = verifyRequest(
      { method: req.method, path: req.url, body: req.rawBody ?? Buffer.alloc(0), headers: req.headers as Record<string, string | string[] | undefined> },
      { now: now(), windowMs: opts.signatureWindowMs ?? 60_000, seen: nonces },
    );
    if (!result.ok) throw new ApiError(result.code, result.message);
    req.hotkey = result.hotkey;
  });
  await app.register(rateLimit, {
    hook: 'preHandler',
    max: opts.rateLimitPerMinute ?? 6000,
    timeWindow: 60_000,
    keyGenerator: (req) => req.hotkey ?? req.ip,
    // Blob transfers carry their own signed, expiring URLs and are bounded by the leases.
    allowList: (req) => req.url.startsWith(`${API_PREFIX}/blobs/`),
    errorResponseBuilder: (_req, ctx) => ({ statusCode: 429, ...errorBody('rate_limited', `too many requests: at most ${ctx.max} a minute; retry in ${Math.ceil(ctx.ttl / 1000)} s`) }),
  });

  const c = opts.coordinator;
  const who = (req: FastifyRequest): string => req.hotkey!;
  const operatorOnly = (req: FastifyRequest): void => {
    if (!opts.operator || req.hotkey !== opts.operator) throw new ApiError('forbidden', 'this endpoint is for the run operator');
  };

  app.get(`${API_PREFIX}/health`, async () => ({ status: 'ok', version: opts.version ?? 'dev', uptime_s: (now() - started) / 1000 }));
  app.get(`${API_PREFIX}/ready`, async (_req, reply) => {
    const ok = opts.isReady ? await opts.isReady().catch(() => false) : true;
    if (!ok) return reply.code(503).send(errorBody('unavailable', 'not ready: the database is not reachable'));
    return { status: 'ok', version: opts.version ?? 'dev', uptime_s: (now() - started) / 1000 };
  });
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));

  app.post(`${API_PREFIX}/participants/register`, async (req) => c.register(who(req), parse(RegisterRequestSchema, req.body, 'registration')));
  app.post(`${API_PREFIX}/participants/heartbeat`, async (req) => c.heartbeat(who(req)));
  app.post(`${API_PREFIX}/participants/move`, async (req) => c.move(who(req), parse(MoveRequestSchema, req.body ?? {}, 'move request').stage));
  app.post(`${API_PREFIX}/work/lease`, async (req) => c.lease(who(req)));
  app.post(`${API_PREFIX}/work/complete`, async (req) => c.complete(who(req), parse(CompleteRequestSchema, req.body, 'completion')));
  app.post(`${API_PREFIX}/work/release`, async (req) => {
    await c.release(who(req), parse(ReleaseRequestSchema, req.body, 'release').lease_id);
    return { status: 'released' };
  });
  app.get<{ Params: { run: string; sample: string } }>(`${API_PREFIX}/runs/:run/samples/:sample`, async (req) => c.pathway(req.params.run, req.params.sample));
  app.get<{ Params: { run: string } }>(`${API_PREFIX}/runs/:run`, async (req) => c.getRun(req.params.run));
  app.post(`${API_PREFIX}/admin/runs`, async (req, reply) => {
    operatorOnly(req);
    const run = await c.createRun(req.body);
    return reply.code(201).send(run);
  });

  for (const plugin of opts.plugins ?? []) await plugin(app);
  return app;
}
