// The durable record of accepted requests' nonces: a request accepted once is never accepted
// again, also after a restart and by another orchestrator process on the same database. Each
// signed request claims its (hotkey, nonce) with one statement, atomic on both dialects; a nonce
// is kept until its request's timestamp leaves the signature window, after which a replay is
// refused as stale anyway, and the sweep forgets it.
import type { Kysely } from 'kysely';
import type { Database } from './db/schema.ts';

export interface NonceLedger {
  /**
   * True when the nonce was not claimed (or its claim expired); false: a replay. A claim is
   * expired once expiresAt <= now, so expiresAt is the first millisecond the request is stale.
   */
  claim(hotkey: string, nonce: string, expiresAt: number, now: number): Promise<boolean>;
  /** Forgets claims that expired by `now`; answers how many. */
  sweep(now: number): Promise<number>;
}

export function databaseNonces(db: Kysely<Database>): NonceLedger {
  return {
    async claim(hotkey, nonce, expiresAt, now) {
      // A row left over from an expired claim (not swept yet) is taken over, not a replay.
      const r = await db
        .insertInto('request_nonces')
        .values({ hotkey, nonce, expires_at: expiresAt })
        .onConflict((oc) => oc.columns(['hotkey', 'nonce']).doUpdateSet({ expires_at: expiresAt }).where('request_nonces.expires_at', '<=', now))
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
    },
    async sweep(now) {
      const r = await db.deleteFrom('request_nonces').where('expires_at', '<=', now).executeTakeFirst();
      return Number(r.numDeletedRows);
    },
  };
}
