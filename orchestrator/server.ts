// The orchestrator's HTTP service: fastify, registered from the route table (orchestrator-client/
// routes.ts). Every request passes the front door first: its target must be an origin-form path in
// canonical spelling (request-target.ts). Each route then checks its own access on the route it
// matched (access.ts) and parses its parameters, query and body with the route's schemas before
// its handler (api.ts) runs.
import { createReadStream } from 'node:fs';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { API_PREFIX, AUTH_HEADERS } from '../orchestrator-client/protocol.ts';
import { type Access, ROUTES, type RouteDef, type RouteName } from '../orchestrator-client/routes.ts';
import { ready as cryptoReady } from '../orchestrator-client/signing.ts';
import { resolveStaticFile } from '../orchestrator-client/static-files.ts';
import { accessCheck } from './access.ts';
import { type Handlers, type ServiceInfo, apiHandlers } from './api.ts';
import type { Coordinator } from './coordinator.ts';
import { ApiError, errorBody, installErrorHandling, parse } from './http.ts';
import { registerMetrics } from './metrics.ts';
import type { NonceLedger } from './nonces.ts';
import { requestTargetCheck } from './request-target.ts';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
  }
  interface FastifyContextConfig {
    /** Who may call the route (routes.ts); read by the rate limiter. */
    access?: Access;
  }
}

export interface ServerOptions {
  coordinator: Coordinator;
  /** The durable record of accepted requests' nonces (replays are refused across restarts). */
  nonces: NonceLedger;
  /** SS58 hotkey allowed to call /v1/admin. */
  operator?: string;
  now?: () => number;
  /** Signed requests older or newer than this are refused. */
  signatureWindowMs?: number;
  /** Requests per minute per address and claimed hotkey, counted before authentication; also the cap on failed signatures per address. */
  rateLimitPerMinute?: number;
  bodyLimitBytes?: number;
  logger?: FastifyServerOptions['logger'];
  /** Routes of the table served by another part (the local blob store's): registered on the same server. */
  plugins?: ((app: FastifyInstance) => Promise<void> | void)[];
  /** The built renderer, served read-only at / as the runs' public dashboard. */
  uiDir?: string;
  version?: string;
  isReady?: () => Promise<boolean>;
  /** The local blob store's id, told in /v1/health (see orchestrator/storage/local.ts). */
  localStoreId?: string;
}

const shorten = (s: string, n = 200): string => (s.length > n ? `${s.slice(0, n)}…` : s);

/** The routes of the table this server answers itself (the blob store's come through a plugin). */
const OWN_ROUTES = (Object.keys(ROUTES) as RouteName[]).filter((name) => ROUTES[name].access !== 'blob_url');

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  await cryptoReady();
  const now = opts.now ?? Date.now;
  const started = now();
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

  // The front door: anything but a canonical origin-form path is refused before any route runs.
  const targetProblem = requestTargetCheck(Object.values(ROUTES).filter((r) => r.path !== '/' && r.path !== '/*'));
  app.addHook('onRequest', async (req) => {
    const problem = targetProblem(req.raw.url ?? '');
    if (problem !== null) throw new ApiError('bad_request', problem);
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

  registerMetrics(app, opts.coordinator);

  const limit = opts.rateLimitPerMinute ?? 6000;
  // Counted as requests arrive, before the signature check, so forgeries count too. The key is
  // the address plus the claimed hotkey: a stranger claiming someone's hotkey spends only its own
  // address's share, and one address rotating made-up hotkeys is stopped by the failure count.
  await app.register(rateLimit, {
    hook: 'onRequest',
    max: limit,
    timeWindow: 60_000,
    keyGenerator: (req) => `${req.ip}|${String(req.headers[AUTH_HEADERS.hotkey] ?? '')}`,
    // Blob transfers carry their own signed, expiring URLs and are bounded by the leases.
    allowList: (req) => req.routeOptions.config.access === 'blob_url',
    errorResponseBuilder: (_req, ctx) => new ApiError('rate_limited', `too many requests: at most ${ctx.max} a minute; retry in ${Math.ceil(ctx.ttl / 1000)} s`, undefined, { 'retry-after': String(Math.ceil(ctx.ttl / 1000)) }),
  });

  const authenticate = accessCheck({
    now,
    windowMs: opts.signatureWindowMs ?? 60_000,
    operator: opts.operator,
    nonces: opts.nonces,
    participant: (hotkey) => opts.coordinator.activeParticipant(hotkey),
    maxFailuresPerMinute: limit,
  });
  const info: ServiceInfo = { version: opts.version ?? 'dev', started, now, isReady: opts.isReady, localStoreId: opts.localStoreId };
  const handlers = apiHandlers(opts.coordinator, info);
  for (const name of OWN_ROUTES) {
    const route: RouteDef = ROUTES[name];
    if (name === 'metrics' || name === 'uiIndex' || name === 'uiFiles') continue;
    const handle = handlers[name as keyof Handlers] as (ctx: unknown) => Promise<unknown>;
    app.route({
      method: route.method,
      url: route.path,
      config: { access: route.access },
      handler: async (req, reply) => {
        // Access first: nothing about the request is looked at for a caller who may not make it.
        const caller = await authenticate(req, route.access);
        const params = route.params ? parse(route.params, req.params, 'path') : {};
        const query = route.query ? parse(route.query, req.query ?? {}, 'query') : {};
        const body = route.body ? parse(route.body, req.body === undefined && route.bodyOptional ? {} : req.body, route.what ?? 'body') : undefined;
        return handle({ caller, params, query, body, reply });
      },
    });
  }

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
  for (const route of [ROUTES.uiIndex, ROUTES.uiFiles]) app.route({ method: route.method, url: route.path, config: { access: route.access }, handler: answer });
}
