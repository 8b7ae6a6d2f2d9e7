// The server half of scripts/bench-nonces.ts: the orchestrator's HTTP server on a database, put
// together as startOrchestrator does (without the local store's routes, which no signed request
// uses), with the durable nonce record or, as the baseline, a record kept in this process's
// memory only. The second is a measuring stand-in and exists only here: the product always
// claims nonces in the database. Prints {"url": …} once it listens; stops on SIGTERM.
//
//   node --import tsx scripts/bench-nonces-server.ts --db URL --ledger durable|memory --dir DIR --operator SS58
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Coordinator } from '../orchestrator/coordinator.ts';
import { openDatabase } from '../orchestrator/db/open.ts';
import { type NonceLedger, databaseNonces } from '../orchestrator/nonces.ts';
import { buildServer } from '../orchestrator/server.ts';
import { openBlobStore } from '../orchestrator/storage/open.ts';

const { values: flags } = parseArgs({
  options: { db: { type: 'string' }, ledger: { type: 'string' }, dir: { type: 'string' }, operator: { type: 'string' } },
});
if (!flags.db || !flags.dir || !flags.operator || (flags.ledger !== 'durable' && flags.ledger !== 'memory')) {
  throw new Error('usage: --db URL --ledger durable|memory --dir DIR --operator SS58');
}

/** The baseline: one statement's worth of bookkeeping in a Map, no database round trip. */
function memoryNonces(): NonceLedger {
  const claims = new Map<string, number>();
  return {
    claim: async (hotkey, nonce, expiresAt, now) => {
      const key = `${hotkey}:${nonce}`;
      const held = claims.get(key);
      if (held !== undefined && held > now) return false;
      claims.set(key, expiresAt);
      return true;
    },
    sweep: async (now) => {
      let n = 0;
      for (const [k, e] of claims) if (e <= now && claims.delete(k)) n++;
      return n;
    },
  };
}

const database = await openDatabase(flags.db);
const store = await openBlobStore(`local:${join(flags.dir, 'blobs')}`, { secret: randomBytes(32) });
const coordinator = new Coordinator({ db: database.db, store });
const app = await buildServer({
  coordinator,
  nonces: flags.ledger === 'durable' ? databaseNonces(database.db) : memoryNonces(),
  operator: flags.operator,
  // The bench sends thousands of requests a minute from one address.
  rateLimitPerMinute: 1e9,
});
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ url })}\n`);
process.once('SIGTERM', () => {
  void app
    .close()
    .then(() => database.close())
    .then(() => process.exit(0));
});
