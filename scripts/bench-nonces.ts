// What replay protection costs per request: the durable nonce claim (orchestrator/nonces.ts) on
// SQLite (a file, WAL, as the orchestrator opens it) and PostgreSQL, and whole signed requests a
// second with the durable claim and with a memory-only stand-in (scripts/bench-nonces-server.ts),
// each the median of --reps rounds of --requests, the two servers taking turns.
//
//   node --import tsx scripts/bench-nonces.ts [--claims 5000] [--requests 500] [--reps 7] [--prefill 100000] [--postgres URL] [--json]
//
// PostgreSQL: --postgres URL, or else throwaway clusters (test/helpers/postgres.ts): one as the
// tests run it (fsync and synchronous_commit off), one with PostgreSQL's defaults (both on). The table holds --prefill live claims while measuring, about what two windows of a
// busy server leave. Claimers run in this process, as a server's requests do: SQLite's one
// connection takes them in turn; PostgreSQL's pool has 10 connections. Server, client and
// database share this machine's cores, so whole-request rates are a floor, not a capacity.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { OrchestratorClient } from '../orchestrator-client/client.ts';
import { type Keypair, keypairFromSeed, ready, signRequest } from '../orchestrator-client/signing.ts';
import { type Db, openDatabase } from '../orchestrator/db/open.ts';
import { databaseNonces } from '../orchestrator/nonces.ts';
import { postgresMissing, startPostgres } from '../test/helpers/postgres.ts';

const { values: flags } = parseArgs({
  options: {
    claims: { type: 'string', default: '5000' },
    requests: { type: 'string', default: '500' },
    reps: { type: 'string', default: '7' },
    prefill: { type: 'string', default: '100000' },
    postgres: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const CLAIMS = Number(flags.claims);
const REQUESTS = Number(flags.requests);
const PREFILL = Number(flags.prefill);
const REPS = Number(flags.reps);
const CONCURRENCY = [1, 8, 16];
const WINDOW = 60_000;
const hex = (): string => randomBytes(16).toString('hex');
const rows: Record<string, string | number>[] = [];
const say = (s: string): void => void (flags.json || process.stderr.write(`${s}\n`));

// ---- the claim alone ----

async function prefill(db: Db): Promise<void> {
  const until = Date.now() + 10 * WINDOW;
  for (let i = 0; i < PREFILL; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, PREFILL - i) }, (_, j) => ({ hotkey: `prefill${j % 50}`, nonce: hex(), expires_at: until }));
    await db.db.insertInto('request_nonces').values(batch).execute();
  }
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

async function claims(label: string, db: Db): Promise<void> {
  const ledger = databaseNonces(db.db);
  for (const concurrency of CONCURRENCY) {
    const nonces = Array.from({ length: CLAIMS }, hex);
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async (_, c) => {
        for (let i = next++; i < CLAIMS; i = next++) {
          const now = Date.now();
          const t = performance.now();
          if (!(await ledger.claim(`claimer${c}`, nonces[i], now + WINDOW + 1, now))) throw new Error('a fresh nonce was refused');
          latencies.push(performance.now() - t);
        }
      }),
    );
    const elapsed = performance.now() - started;
    latencies.sort((a, b) => a - b);
    rows.push({ part: 'claim', db: label, concurrency, claims: CLAIMS, us_per_claim: round((elapsed * 1000) / CLAIMS), p50_us: round(percentile(latencies, 0.5) * 1000), p99_us: round(percentile(latencies, 0.99) * 1000) });
  }
  // A sweep every 5 s at ~2,000 requests a second forgets ~10,000 claims.
  const expired = Date.now() - 1;
  for (let i = 0; i < 10_000; i += 1000) await db.db.insertInto('request_nonces').values(Array.from({ length: 1000 }, () => ({ hotkey: 'old', nonce: hex(), expires_at: expired }))).execute();
  const t = performance.now();
  const swept = await ledger.sweep(Date.now());
  rows.push({ part: 'sweep', db: label, swept, ms: round(performance.now() - t) });
}

const round = (x: number): number => Math.round(x * 10) / 10;

// ---- whole signed requests ----

const SERVER = fileURLToPath(new URL('./bench-nonces-server.ts', import.meta.url));

function serve(db: string, ledger: string, dir: string, operator: Keypair): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, '--db', db, '--ledger', ledger, '--dir', dir, '--operator', operator.address], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve({ child, url: (JSON.parse(line) as { url: string }).url }));
    child.once('exit', (code) => reject(new Error(`the bench server exited with ${code}`)));
  });
}

async function stopServer(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

interface Signed {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

const ROUTES = {
  // A miner's heartbeat: the claim, the registration looked up, last_seen written.
  heartbeat: (k: Keypair): Signed => signed(k, 'POST', '/v1/participants/heartbeat', '{}'),
  // A signed read: the claim and one run read.
  run: (k: Keypair): Signed => signed(k, 'GET', '/v1/runs/bench', undefined),
};

function signed(k: Keypair, method: string, path: string, body: string | undefined): Signed {
  const bytes = Buffer.from(body ?? '');
  const headers: Record<string, string> = { ...signRequest(k, { method, path, body: bytes }), 'content-length': String(bytes.length) };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return { method, path, headers, body: bytes };
}

function sendOne(url: URL, agent: Agent, r: Signed): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: r.method, path: r.path, headers: r.headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

/** Sends `list` with `concurrency` in flight; answers requests a second. Every answer must be 200. */
async function drive(url: string, list: Signed[], concurrency: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const u = new URL(url);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < list.length; i = next++) {
        const status = await sendOne(u, agent, list[i]);
        if (status !== 200) throw new Error(`${list[i].method} ${list[i].path} answered ${status}`);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return list.length / seconds;
}

/** Median request rates of REPS rounds, the two servers taking turns (in alternating order) so drift hits both alike. */
async function requests(label: string, dbUrl: string, dir: string): Promise<void> {
  const operator = keypairFromSeed(new Uint8Array(32).fill(1));
  const miners = [2, 3, 4, 5].map((s) => keypairFromSeed(new Uint8Array(32).fill(s)));
  const servers: Record<string, { child: ChildProcess; url: string }> = {};
  try {
    for (const ledger of LEDGERS) servers[ledger] = await serve(dbUrl, ledger, dir, operator);
    const url = servers.durable.url;
    await new OrchestratorClient({ baseUrl: url, keypair: operator, attempts: 1 }).createRun({ id: 'bench', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 4 });
    for (const m of miners) await new OrchestratorClient({ baseUrl: url, keypair: m, attempts: 1 }).register({ role: 'miner', hardware: { device: 'cpu', cores: 2, memory_bytes: 2 ** 33, tokens_per_s: 100 } });
    for (const [route, make] of Object.entries(ROUTES)) {
      for (const concurrency of [1, 16]) {
        const rates: Record<string, number[]> = { durable: [], memory: [] };
        for (let rep = 0; rep < REPS; rep++) {
          for (const ledger of rep % 2 === 0 ? LEDGERS : [...LEDGERS].reverse()) {
            // Signed just before sending (well inside the window), so the rate is the server's work, not signing.
            await drive(servers[ledger].url, Array.from({ length: 200 }, (_, i) => make(miners[i % miners.length])), concurrency);
            rates[ledger].push(await drive(servers[ledger].url, Array.from({ length: REQUESTS }, (_, i) => make(miners[i % miners.length])), concurrency));
          }
        }
        for (const ledger of LEDGERS) {
          const rate = median(rates[ledger]);
          rows.push({ part: 'request', db: label, ledger, route, concurrency, requests: REQUESTS * REPS, req_per_s: Math.round(rate), us_per_request: round(1e6 / rate), spread: `${Math.round(Math.min(...rates[ledger]))}-${Math.round(Math.max(...rates[ledger]))}` });
        }
      }
    }
  } finally {
    for (const s of Object.values(servers)) await stopServer(s.child);
  }
}

const LEDGERS = ['durable', 'memory'] as const;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---- main ----

async function bench(label: string, url: string, dir: string): Promise<void> {
  say(`${label}: claims`);
  const db = await openDatabase(url);
  try {
    await prefill(db);
    await claims(label, db);
  } finally {
    await db.close();
  }
  say(`${label}: whole requests`);
  await requests(label, url, dir);
}

async function benchCluster(label: string, durable: boolean, dir: string): Promise<void> {
  const cluster = (await startPostgres({ durable }))!;
  try {
    const url = await cluster.createDatabase();
    const db = await openDatabase(url);
    const settings = await sql<{ name: string; setting: string }>`select name, setting from pg_settings where name in ('fsync', 'synchronous_commit')`.execute(db.db);
    await db.close();
    say(`${label}: ${settings.rows.map((r) => `${r.name}=${r.setting}`).join(', ')}`);
    await bench(label, url, dir);
  } finally {
    await cluster.stop();
  }
}

await ready();
const dir = mkdtempSync(join(tmpdir(), 'tah-bench-nonces-'));
try {
  await bench('sqlite', `sqlite:${join(dir, 'o.db')}`, dir);
  if (flags.postgres) await bench('postgres', flags.postgres, dir);
  else if (postgresMissing() !== null) say(`PostgreSQL: ${postgresMissing()} and no --postgres URL; measured SQLite only`);
  // As the tests run it, then with PostgreSQL's defaults: each commit waits for its WAL to reach the disk.
  else for (const durable of [false, true]) await benchCluster(durable ? 'pg-fsync-on' : 'pg-fsync-off', durable, dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version };
const rate = (db: string, ledger: string, route: string, c: number): number => Number(rows.find((r) => r.part === 'request' && r.db === db && r.ledger === ledger && r.route === route && r.concurrency === c)?.req_per_s ?? NaN);
const summary: Record<string, unknown> = { summary: true, machine, prefill: PREFILL };
for (const db of new Set(rows.map((r) => String(r.db)))) {
  for (const c of CONCURRENCY) summary[`claim_us.${db}.c${c}`] = rows.find((r) => r.part === 'claim' && r.db === db && r.concurrency === c)?.us_per_claim;
  for (const route of Object.keys(ROUTES)) {
    for (const c of [1, 16]) {
      const [d, m] = [rate(db, 'durable', route, c), rate(db, 'memory', route, c)];
      summary[`req_per_s.${db}.${route}.c${c}`] = { durable: d, memory: m, added_us: round(1e6 / d - 1e6 / m) };
    }
  }
}

if (flags.json) {
  for (const r of rows) console.log(JSON.stringify(r));
  console.log(JSON.stringify(summary));
} else {
  console.log(`machine: ${machine.cpus} × ${machine.cpu}, ${machine.memory_gib} GiB, node ${machine.node}; ${PREFILL} live claims in the table`);
  for (const part of ['claim', 'sweep', 'request']) {
    const list = rows.filter((r) => r.part === part);
    const keys = Object.keys(list[0] ?? {}).filter((k) => k !== 'part');
    const width = (k: string) => Math.max(k.length, ...list.map((r) => String(r[k]).length)) + 2;
    console.log(`\n${part}\n${keys.map((k) => k.padEnd(width(k))).join('')}`);
    for (const r of list) console.log(keys.map((k) => String(r[k]).padEnd(width(k))).join(''));
  }
  console.log(`\nsummary ${JSON.stringify(summary, null, 1)}`);
}
