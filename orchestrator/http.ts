// The HTTP edge of the orchestrator: typed errors in the protocol's JSON envelope, zod parsing
// of every input, and one error handler that turns anything thrown into a clear 4xx/5xx.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { type ErrorBody, type ErrorCode, HTTP_STATUS } from '../orchestrator-client/protocol.ts';

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export const errorBody = (code: ErrorCode, message: string, details?: Record<string, unknown>): ErrorBody => ({
  error: { code, message, ...(details ? { details } : {}) },
});

/** Parses a value with a schema; a mismatch is a 400 that says what and where. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  // Cut each issue: zod quotes unknown keys, and a key can be as long as the body.
  const cut = (x: string): string => (x.length > 120 ? `${x.slice(0, 120)}…` : x);
  const issues = r.error.issues.slice(0, 5).map((i) => cut(i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
  throw new ApiError('bad_request', `invalid ${what}: ${issues.join('; ')}`);
}

/** Maps fastify's own errors (bad JSON, body too large, ...) and ours onto the error envelope. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | ApiError, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof ApiError) {
      if (err.headers) void reply.headers(err.headers);
      return reply.code(HTTP_STATUS[err.code]).send(errorBody(err.code, err.message, err.details));
    }
    const status = err.statusCode ?? 500;
    if (status === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send(errorBody('payload_too_large', 'request body is too large'));
    if (status === 429) return reply.code(429).send(errorBody('rate_limited', err.message || 'too many requests'));
    if (status >= 400 && status < 500) {
      const message = err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'requests must be JSON (content-type: application/json)' : err.message;
      return reply.code(status).send(errorBody(status === 404 ? 'not_found' : 'bad_request', message));
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send(errorBody('internal', 'internal error'));
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody('not_found', `no route ${req.method} ${req.url.split('?')[0]}`)));
}
