// What each API route does: one handler per JSON route of the table (orchestrator-client/
// routes.ts), over the Coordinator. A handler gets its request already checked: the caller its
// route's access asks for, and the parameters, query and body parsed by the route's schemas.
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import type { LeaseRequest, LeaseResponse } from '../orchestrator-client/protocol.ts';
import type { ApiRouteName, BodyOf, ParamsOf, QueryOf, ROUTES } from '../orchestrator-client/routes.ts';
import type { CallerFor } from './access.ts';
import type { Coordinator } from './coordinator.ts';
import { errorBody } from './http.ts';

type Def<K extends ApiRouteName> = (typeof ROUTES)[K];

export interface Context<K extends ApiRouteName> {
  caller: CallerFor<Def<K>['access']>;
  params: ParamsOf<K>;
  query: QueryOf<K>;
  body: BodyOf<K>;
  reply: FastifyReply;
}

/** What a handler may answer: its route's response (before the schema's defaults), or a reply it sent itself. */
type Answer<K extends ApiRouteName> = z.input<Def<K>['response']> | FastifyReply;
export type Handlers = { [K in ApiRouteName]: (ctx: Context<K>) => Promise<Answer<K>> };

export interface ServiceInfo {
  version: string;
  started: number;
  now: () => number;
  isReady?: () => Promise<boolean>;
  /** The local blob store's id, told in /v1/health (see orchestrator/storage/local.ts). */
  localStoreId?: string;
}

export function apiHandlers(c: Coordinator, info: ServiceInfo): Handlers {
  const uptime = (): number => (info.now() - info.started) / 1000;
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
  return {
    health: async () => ({ status: 'ok', version: info.version, uptime_s: uptime(), ...(info.localStoreId ? { local_store_id: info.localStoreId } : {}) }),
    ready: async ({ reply }) => {
      const ok = info.isReady ? await info.isReady().catch(() => false) : true;
      if (!ok) return reply.code(503).send(errorBody('unavailable', 'not ready: the database is not reachable'));
      return { status: 'ok', version: info.version, uptime_s: uptime() };
    },
    dashboard: async () => c.dashboard(),
    runDashboard: async ({ params }) => c.dashboard(params.run),

    register: async ({ caller, body }) => c.register(caller.hotkey, body),
    heartbeat: async ({ caller }) => c.heartbeat(caller.hotkey),
    leave: async ({ caller }) => {
      await c.leave(caller.hotkey);
      return { status: 'left' };
    },
    move: async ({ caller, body }) => c.move(caller.hotkey, body.stage),
    leaseNext: async ({ caller, body }) => c.lease(caller.hotkey, body),
    complete: async ({ caller, body: { next, ...completion } }) => ({ ...(await c.complete(caller.hotkey, completion)), ...(await leaseAfter(caller.hotkey, next)) }),
    release: async ({ caller, body }) => {
      await c.release(caller.hotkey, body.lease_id);
      return { status: 'released' };
    },
    reject: async ({ caller, body }) => {
      await c.reject(caller.hotkey, body);
      return { status: 'rejected' };
    },
    applied: async ({ caller, body: { next, ...report } }) => ({ ...(await c.applied(caller.hotkey, report)), ...(await leaseAfter(caller.hotkey, next)) }),
    refusal: async ({ caller, body }) => ({ status: await c.refusal(caller.hotkey, body) }),
    checkNext: async ({ caller, body }) => c.checkLease(caller.hotkey, body),
    verdict: async ({ caller, body }) => c.verdict(caller.hotkey, body),

    run: async ({ params }) => c.getRun(params.run),
    pathway: async ({ params }) => c.pathway(params.run, params.sample),
    runStatus: async ({ params }) => c.runStatus(params.run),
    versions: async ({ params }) => c.versions(params.run),
    flags: async ({ params }) => ({ flags: await c.flags(params.run) }),
    attribution: async ({ params, query }) => c.attribution(params.run, query),
    epochs: async ({ params }) => c.epochs(params.run),
    rewards: async ({ params }) => c.minerRewards(params.run, params.hotkey),

    createRun: async ({ body, reply }) => reply.code(201).send(await c.createRun(body)),
    storedVersion: async ({ params }) => c.storedVersion(params.run, params.rounds),
    rollback: async ({ params, body }) => c.rollback(params.run, body.to, body.reason),
  };
}
