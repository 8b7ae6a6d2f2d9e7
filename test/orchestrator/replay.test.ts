// Replays against real orchestrators over HTTP: a signed request accepted once is refused when
// sent again byte for byte, after the orchestrator stopped or was killed and a new one started on
// the same database, and by a second orchestrator on the same PostgreSQL database, also when both
// get it at the same moment. A request signed before a restart but never sent is still accepted,
// and once a request's timestamp leaves the window its replay is stale, swept record or not.
// In-process orchestrators read a fixed clock, so nothing here depends on timing; the killed
// child reads the real clock, with tens of seconds to spare.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OrchestratorClient } from '../../orchestrator-client/client.ts';
import type { Hardware } from '../../orchestrator-client/protocol.ts';
import { type Keypair, keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { openDatabase } from '../../orchestrator/db/open.ts';
import { SWEEP_MARGIN_MS, type Orchestrator, type OrchestratorOptions, startOrchestrator } from '../../orchestrator/service.ts';
import { type FrozenRequest, codeOf, freeze, send, snapshotTables } from '../helpers/frozen-requests.ts';
import { startOrchestratorChild } from '../helpers/orchestrator-child.ts';
import { postgresMissing, startPostgres } from '../helpers/postgres.ts';

const WINDOW = 60_000;
const T0 = Date.UTC(2026, 10, 22);
let clock = T0;
const now = (): number => clock;
const hardware: Hardware = { device: 'cpu', cores: 2, memory_bytes: 8 * 2 ** 30, tokens_per_s: 1000 };
const RUN = { id: 'run', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 4 };
const LEASE = { method: 'POST', path: '/v1/leases/next', body: '{}' } as const;
const HEARTBEAT = { method: 'POST', path: '/v1/participants/heartbeat', body: '{}' } as const;

let dir = '';
let operator: Keypair;
let miner: Keypair;
const open: Orchestrator[] = [];
const children: ChildProcess[] = [];
const cluster = await startPostgres();

before(async () => {
  await ready();
  operator = keypairFromSeed(new Uint8Array(32).fill(1));
  miner = keypairFromSeed(new Uint8Array(32).fill(2));
  dir = await mkdtemp(join(tmpdir(), 'tah-replay-'));
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const o of open) await o.close().catch(() => {});
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const frozen = (r: { method: string; path: string; body: string }, at: number): FrozenRequest => freeze(miner, r.method, r.path, r.body, at);

async function start(opts: Partial<OrchestratorOptions> & { db: string }): Promise<Orchestrator> {
  // The reaper only where a test asks for it: it would also release leases as the clock jumps.
  const o = await startOrchestrator({ storage: `local:${join(dir, 'blobs')}`, operator: operator.address, now, reapIntervalMs: 3_600_000, ...opts });
  open.push(o);
  return o;
}

async function stop(o: Orchestrator): Promise<void> {
  open.splice(open.indexOf(o), 1);
  await o.close();
}

/** A run with the miner registered on it, through `url`. */
async function setUp(url: string, clientNow?: () => number): Promise<void> {
  const client = (k: Keypair) => new OrchestratorClient({ baseUrl: url, keypair: k, now: clientNow, attempts: 1 });
  await client(operator).createRun(RUN);
  assert.equal((await client(miner).register({ role: 'miner', hardware })).stage, 0);
}

async function accepted(url: string, r: FrozenRequest): Promise<void> {
  const res = await send(url, r);
  assert.equal(res.status, 200, res.body.toString());
}

/** Sends `r` again and checks it is refused with `code`, changing no table of `db`. */
async function refused(url: string, r: FrozenRequest, code: string, db: () => Promise<Record<string, string[]>>): Promise<void> {
  const before = await db();
  const res = await send(url, r);
  assert.deepEqual([res.status, codeOf(res)], [401, code], res.body.toString());
  assert.deepEqual(await db(), before, 'a refused replay changed a table');
}

const ROWS = (o: Orchestrator) => o.database.db.selectFrom('request_nonces').select(['nonce', 'expires_at']).execute();

/** Polls (bounded) until `check` holds: the reaper runs on its own timer. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (const deadline = Date.now() + 10_000; !(await check()); ) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('SQLite: replays after a restart on the same database', () => {
  let orch: Orchestrator;
  const tables = () => snapshotTables(orch.database.db);

  test('stopped and started again: a lease request stamped 50 s ahead, accepted before, is refused after until it is stale; one signed before and never sent is accepted', async () => {
    const opts = { db: `sqlite:${join(dir, 'o.db')}` };
    orch = await start(opts);
    await setUp(orch.url, now);
    // The review's case: stamped nearly the window ahead, so still fresh after a restart.
    const ahead = frozen(LEASE, clock + 50_000);
    const unsent = frozen(HEARTBEAT, clock + 1_000);
    const first = await send(orch.url, ahead);
    assert.equal(first.status, 200, first.body.toString());
    assert.equal((first.json as { lease: { kind: string } | null }).lease?.kind, 'work', 'the request has an effect a replay would repeat');

    const port = Number(new URL(orch.url).port);
    await stop(orch);
    clock += 5_000;
    // The same port, so the replay is the same bytes, host header included.
    orch = await start({ ...opts, port });
    await refused(orch.url, ahead, 'replayed_request', tables);
    // The old design refused everything signed before the start; a nonce never claimed is fine.
    await accepted(orch.url, unsent);
    await refused(orch.url, unsent, 'replayed_request', tables);
    // Started again at the last millisecond the request is fresh (this process's memory has seen
    // the replay above, the next one's has not), and then the first one it is not.
    await stop(orch);
    clock = T0 + 50_000 + WINDOW;
    orch = await start({ ...opts, port });
    await refused(orch.url, ahead, 'replayed_request', tables);
    clock++;
    await refused(orch.url, ahead, 'stale_request', tables);
    await stop(orch);
  });

  test('the sweep keeps a claim while its request is fresh (and a window more, for other orchestrators\' clocks), then removes it; the replay is stale, not accepted, and claims nothing', async () => {
    orch = await start({ db: `sqlite:${join(dir, 'o.db')}`, reapIntervalMs: 10 });
    const start0 = clock;
    const early = freeze(miner, 'GET', '/v1/runs/run', undefined, start0);
    const ahead = freeze(miner, 'GET', '/v1/runs/run', undefined, start0 + 50_000);
    await accepted(orch.url, early);
    await accepted(orch.url, ahead);
    const nonceOf = (r: FrozenRequest) => r.headers['x-tah-nonce'];
    const has = async (r: FrozenRequest): Promise<boolean> => (await ROWS(orch)).some((row) => row.nonce === nonceOf(r));
    assert.deepEqual(
      (await ROWS(orch)).filter((r) => [nonceOf(early), nonceOf(ahead)].includes(r.nonce)).map((r) => Number(r.expires_at)),
      [start0 + WINDOW + 1, start0 + 50_000 + WINDOW + 1],
    );
    // At the ahead request's last fresh millisecond both claims are kept (the early one is a
    // window past its expiry only later). Started again, the verdict rests on the kept claim.
    clock = start0 + 50_000 + WINDOW;
    await new Promise((r) => setTimeout(r, 50)); // five reaper ticks at 10 ms: the chance to sweep too early
    assert.ok((await has(early)) && (await has(ahead)), 'claims are kept while a request is fresh, and a window more');
    await stop(orch);
    orch = await start({ db: `sqlite:${join(dir, 'o.db')}`, reapIntervalMs: 10 });
    const res = await send(orch.url, ahead);
    assert.deepEqual([res.status, codeOf(res)], [401, 'replayed_request']);
    // A window past the early claim's expiry it is swept; the ahead one stays a little longer.
    clock = start0 + WINDOW + 1 + SWEEP_MARGIN_MS;
    await eventually(async () => !(await has(early)), 'the early claim is swept');
    assert.ok(await has(ahead), 'the later claim is kept until a window past its own expiry');
    clock = start0 + 50_000 + WINDOW + 1 + SWEEP_MARGIN_MS;
    await eventually(async () => (await ROWS(orch)).length === 0, 'every claim is swept');
    // The requests are stale now: refused on their timestamps, without claiming the nonce again.
    for (const r of [ahead, early]) {
      const again = await send(orch.url, r);
      assert.deepEqual([again.status, codeOf(again)], [401, 'stale_request']);
    }
    assert.deepEqual(await ROWS(orch), []);
    await stop(orch);
  });

  test('SIGKILLed child process, started again: the accepted request is refused, the unsent one accepted', async () => {
    const file = join(dir, 'killed.db');
    const args = ['--port', '0', '--db', `sqlite:${file}`, '--storage', `local:${join(dir, 'killed-blobs')}`, '--operator', operator.address];
    const first = await startOrchestratorChild(args, children);
    await setUp(first.url);
    // The child reads the real clock: 50 s ahead leaves 50 s for the kill and the restart.
    const ahead = frozen(LEASE, Date.now() + 50_000);
    const unsent = frozen(HEARTBEAT, Date.now());
    await accepted(first.url, ahead);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));

    const port = Number(new URL(first.url).port);
    const second = await startOrchestratorChild(args.map((a) => (a === '0' ? String(port) : a)), children);
    const database = await openDatabase(`sqlite:${file}`);
    try {
      await refused(second.url, ahead, 'replayed_request', () => snapshotTables(database.db));
      await accepted(second.url, unsent);
    } finally {
      await database.close();
    }
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
  });
});



describe('PostgreSQL: two orchestrators on one database', { skip: cluster ? false : (postgresMissing() ?? 'no PostgreSQL') }, () => {
  let a: Orchestrator;
  let b: Orchestrator;
  const tables = () => snapshotTables(a.database.db);

  before(async () => {
    const url = await cluster!.createDatabase();
    a = await start({ db: url, storage: `local:${join(dir, 'blobs-a')}` });
    b = await start({ db: url, storage: `local:${join(dir, 'blobs-b')}` });
    await setUp(a.url, now);
  });

  test('a request accepted by one is refused by the other, either way round, and changes nothing there', async () => {
    const lease = frozen(LEASE, clock + 50_000);
    await accepted(a.url, lease);
    await refused(b.url, lease, 'replayed_request', tables);
    await refused(a.url, lease, 'replayed_request', tables);
    const beat = frozen(HEARTBEAT, clock);
    await accepted(b.url, beat);
    await refused(a.url, beat, 'replayed_request', tables);
  });

  test('sent to both at the same moment, exactly one is accepted', async () => {
    // Several copies to each, many times: the in-memory caches see only their own process's
    // copies, so the durable claim decides between the two processes.
    for (let round = 0; round < 25; round++) {
      const beat = frozen(HEARTBEAT, clock);
      const answers = await Promise.all([a, b, a, b, a, b].map((o) => send(o.url, beat)));
      const ok = answers.filter((r) => r.status === 200).length;
      assert.equal(ok, 1, `round ${round}: ${answers.map((r) => `${r.status} ${codeOf(r) ?? ''}`).join(', ')}`);
      for (const r of answers) if (r.status !== 200) assert.deepEqual([r.status, codeOf(r)], [401, 'replayed_request']);
    }
  });
});
