// Who is calling: the access check every API route runs on the route it matched, before its
// handler sees anything. A signed route verifies the sr25519 signature over the exact request
// (signing.ts), claims the nonce in the durable record (nonces.ts: a request is accepted once,
// across restarts and processes), and for participant, miner, validator and operator routes looks
// the signer up. A handler is handed the caller only when the check passed.
import type { FastifyRequest } from 'fastify';
import { AUTH_HEADERS } from '../orchestrator-client/protocol.ts';
import type { Access } from '../orchestrator-client/routes.ts';
import { NonceCache, verifyRequest } from '../orchestrator-client/signing.ts';
import type { ParticipantRow } from './db/schema.ts';
import { ApiError } from './http.ts';
import type { NonceLedger } from './nonces.ts';

/** A verified signer. */
export interface Caller {
  hotkey: string;
}

/** A verified signer with an active registration (its row, as read for the check). */
export interface ParticipantCaller extends Caller {
  participant: ParticipantRow;
}

/** The caller a handler of a route with this access is handed. */
export type CallerFor<A extends Access> = A extends 'public' | 'blob_url' ? null : A extends 'participant' | 'miner' | 'validator' ? ParticipantCaller : Caller;

export interface AccessOptions {
  now: () => number;
  /** Signed requests older or newer than this are refused. */
  windowMs: number;
  /** The run operator's hotkey (absent: nobody may call operator routes). */
  operator?: string;
  nonces: NonceLedger;
  /** The active registration of a hotkey, or null. */
  participant: (hotkey: string) => Promise<ParticipantRow | null>;
  /** Failed signatures an address may send a minute before it must wait. */
  maxFailuresPerMinute: number;
}

export type Authenticate = <A extends Access>(req: FastifyRequest, access: A) => Promise<CallerFor<A>>;

export function accessCheck(opts: AccessOptions): Authenticate {
  const seen = new NonceCache();
  const failures = new FailureCounter(opts.maxFailuresPerMinute, opts.now);
  const check = async (req: FastifyRequest, access: Access): Promise<Caller | ParticipantCaller | null> => {
    if (access === 'public' || access === 'blob_url') return null;
    const wait = failures.blockedFor(req.ip);
    if (wait > 0) throw new ApiError('rate_limited', `too many failed signatures from this address; retry in ${Math.ceil(wait / 1000)} s`, undefined, { 'retry-after': String(Math.ceil(wait / 1000)) });
    const now = opts.now();
    const result = verifyRequest(
      { method: req.method, path: req.url, body: req.rawBody ?? Buffer.alloc(0), headers: req.headers as Record<string, string | string[] | undefined> },
      { now, windowMs: opts.windowMs, seen },
    );
    if (!result.ok) {
      failures.add(req.ip);
      throw new ApiError(result.code, result.message);
    }
    if (!(await opts.nonces.claim(result.hotkey, result.nonce, result.expiresAt, now))) {
      throw new ApiError('replayed_request', `this nonce was already used by this hotkey (${AUTH_HEADERS.nonce}): every request needs a fresh nonce`);
    }
    const hotkey = result.hotkey;
    if (access === 'signed') return { hotkey };
    if (access === 'operator') {
      if (opts.operator === undefined || hotkey !== opts.operator) throw new ApiError('forbidden', 'this endpoint is for the run operator');
      return { hotkey };
    }
    const participant = await opts.participant(hotkey);
    if (!participant) throw new ApiError('not_registered', `hotkey ${hotkey} is not registered (register again)`);
    if (access !== 'participant' && participant.role !== access) throw new ApiError('forbidden', `this endpoint is for ${access}s; ${hotkey} is registered as a ${participant.role}`);
    return { hotkey, participant };
  };
  return check as Authenticate;
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
