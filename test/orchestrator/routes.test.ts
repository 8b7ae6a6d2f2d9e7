// Every route of the table (orchestrator-client/routes.ts), walked on a real orchestrator over
// HTTP (SQLite, the local blob store, a built interface, a fixed clock): each is served; each, in
// every other spelling of its request target, is refused by the front door with a 400 that names
// the problem, unsigned or signed by its rightful caller; each that takes a signature refuses the
// unsigned, the unregistered and the wrong role before it looks at the body; and none of it
// changes a table row (but the nonces accepted signatures spend) or a file of the blob store.
//
// Deterministic: the variants are listed, not drawn, and come from the table itself, so a route
// added to the table is walked without this file changing.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { API_PREFIX, type ErrorCode, ErrorBodySchema, type Hardware, type Lease, RunSpecSchema } from '../../orchestrator-client/protocol.ts';
import { type Access, ROUTES, type RouteDef, type RouteName, routePath } from '../../orchestrator-client/routes.ts';
import { type Keypair, keypairFromSeed, ready, signRequest } from '../../orchestrator-client/signing.ts';
import { type Orchestrator, startOrchestrator } from '../../orchestrator/service.ts';
import { LocalBlobStore } from '../../orchestrator/storage/local.ts';
import { seedRun } from '../helpers/run-fixture.ts';
import { type HostileOutcome, runPool, sendHostile, sendRaw } from '../helpers/hostile-http.ts';
import { handlesInto, snapshotDatabase, snapshotDir } from '../helpers/server-state.ts';

const clock = Date.UTC(2026, 10, 22);
const now = (): number => clock;
const hardware: Hardware = { device: 'cpu', cores: 2, memory_bytes: 8 * 2 ** 30, tokens_per_s: 1000 };
const JSON_TYPE = 'application/json';
const CONCURRENCY = 16;
/** A well-formed SHA-256 (of nothing stored). */
const SHA = 'ab'.repeat(32);

const key = (n: number): Keypair => keypairFromSeed(new Uint8Array(32).fill(n));
await ready();
const operator = key(1);
const minerA = key(2);
const minerB = key(3);
const validator = key(4);
const stranger = key(10);
const NAMES = new Map<Keypair, string>([
  [operator, 'the operator'],
  [minerA, 'miner A'],
  [minerB, 'miner B'],
  [validator, 'the validator'],
  [stranger, 'a stranger'],
]);

let dir = '';
let blobDir = '';
let orch: Orchestrator;
let port = 0;
let lease: Lease;
/** A blob the store holds, and signed URLs: to read it, to upload the lease's output, and an expired one. */
let blob: { key: string; get: string; put: string; expired: string };

let tablesBefore: Map<string, string>;
let blobDirBefore: string[];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tah-routes-'));
  blobDir = join(dir, 'blobs');
  // A built interface, so that the table's interface routes are served.
  const ui = join(dir, 'ui');
  await mkdir(join(ui, 'assets'), { recursive: true });
  await writeFile(join(ui, 'index.html'), '<!doctype html><title>dashboard</title><script type="module" src="/assets/app.js"></script>');
  await writeFile(join(ui, 'assets', 'app.js'), 'export {};\n');
  orch = await startOrchestrator({
    db: `sqlite:${join(dir, 'o.db')}`,
    storage: `local:${blobDir}`,
    operator: operator.address,
    now,
    reapIntervalMs: 3_600_000,
    // Thousands of refused signatures from one address: the per-address limits are not under test here.
    rateLimitPerMinute: 10_000_000,
    uiDir: ui,
  });
  port = Number(new URL(orch.url).port);
  lease = await seedRun(orch.url, { operator, minerA, minerB, validator }, now);

  // URLs signed by the store itself (its key is in the database); an expired one by a store on a clock a day behind.
  assert.ok(orch.store instanceof LocalBlobStore);
  const blobKey = 'runs/run1/routes-test/existing.bin';
  await orch.store.put(blobKey, new Uint8Array(64).fill(7));
  const rel = (u: string): string => u.slice(orch.url.length);
  const secret = (await orch.database.db.selectFrom('kv').select('value').where('key', '=', 'local_blob_secret').executeTakeFirstOrThrow()).value;
  const past = new LocalBlobStore({ dir: blobDir, secret: Buffer.from(secret, 'hex'), now: () => clock - 86_400_000, baseUrl: orch.url });
  blob = { key: blobKey, get: rel(await orch.store.presign('get', blobKey, { expiresInS: 3600 })), put: rel(lease.output.url), expired: rel(await past.presign('get', blobKey, { expiresInS: 60 })) };

  tablesBefore = await snapshotDatabase(orch.database);
  blobDirBefore = await snapshotDir(blobDir);
});

after(async () => {
  await orch?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---- the routes, filled in ----

/**
 * Who may call each route, as this test expects it: said here as well as in the table, so that a
 * route's access changing there (to 'public', say) fails here instead of becoming what the test
 * expects. A route added to the table must be added here too.
 */
const EXPECTED_ACCESS: Record<RouteName, Access> = {
  health: 'public',
  ready: 'public',
  metrics: 'public',
  dashboard: 'public',
  runDashboard: 'public',
  register: 'signed',
  heartbeat: 'participant',
  leave: 'participant',
  move: 'miner',
  leaseNext: 'miner',
  complete: 'miner',
  release: 'miner',
  reject: 'miner',
  applied: 'miner',
  refusal: 'participant',
  checkNext: 'validator',
  verdict: 'validator',
  run: 'signed',
  pathway: 'signed',
  runStatus: 'signed',
  versions: 'signed',
  flags: 'signed',
  attribution: 'signed',
  epochs: 'signed',
  rewards: 'signed',
  createRun: 'operator',
  storedVersion: 'operator',
  rollback: 'operator',
  blobGet: 'blob_url',
  blobPut: 'blob_url',
  uiIndex: 'public',
  uiFiles: 'public',
};

const NAMES_OF_ROUTES = Object.keys(ROUTES) as RouteName[];
const def = (name: RouteName): RouteDef => ROUTES[name];
/** The access the requests are judged by: the expected one (checked against the table's in the first test). */
const accessOf = (name: RouteName): Access => EXPECTED_ACCESS[name];
const takesSignature = (a: Access): boolean => a !== 'public' && a !== 'blob_url';

/** The canonical path of a route: its parameters real values (the run, a leased sample, miner A, round 0), its wildcard a real file. */
function canonicalPath(name: RouteName, params: Record<string, string> = {}): string {
  const d = def(name);
  const rest = accessOf(name) === 'blob_url' ? (d.method === 'PUT' ? lease.output.key : blob.key) : 'assets/app.js';
  return routePath(d.path.replace(/\*$/, rest), { run: 'run1', sample: lease.sample_id, hotkey: minerA.address, rounds: '0', ...params });
}

/** The query of the route's signed URL (blob routes), or nothing. */
function urlQuery(name: RouteName): string {
  if (accessOf(name) !== 'blob_url') return '';
  const url = def(name).method === 'PUT' ? blob.put : blob.get;
  return url.slice(url.indexOf('?'));
}

/** Who may call the route (for a public route, anyone: a stranger's signature is ignored). */
function rightfulCaller(name: RouteName): Keypair | null {
  switch (accessOf(name)) {
    case 'public':
    case 'signed':
      return stranger;
    case 'participant':
    case 'miner':
      return minerA;
    case 'validator':
      return validator;
    case 'operator':
      return operator;
    case 'blob_url':
      return null;
  }
}

/** A body the route's schema accepts, one that would do something if the request got through. */
function validBody(name: RouteName): unknown {
  switch (name) {
    case 'register':
      return { role: 'miner', run_id: 'run1', hardware };
    case 'heartbeat':
    case 'leave':
      return {};
    case 'move':
      return { stage: 1 };
    case 'leaseNext':
    case 'checkNext':
      return { version: 0, wait_ms: 0 };
    case 'complete':
      return { lease_id: lease.id, output: { key: lease.output.key, bytes: 1, sha256: SHA }, loss: 1.5 };
    case 'release':
      return { lease_id: lease.id };
    case 'reject':
      return { lease_id: lease.id, reason: `${lease.output.key}: tensor activation holds NaN at element 0` };
    case 'applied':
      return { round: 0, snapshot: { key: 'runs/run1/snapshots/stage-0/1.safetensors', bytes: 1, sha256: SHA } };
    case 'refusal':
      return { key: blob.key, sha256: SHA, reason: 'the bytes are not as accepted' };
    case 'verdict':
      return { lease_id: lease.id, outcome: 'pass', error: 0, signature: `0x${'ab'.repeat(64)}` };
    case 'createRun':
      return { id: 'routes-run', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 4 };
    case 'rollback':
      return { to: 0, reason: 'routes test' };
    default:
      return undefined;
  }
}

/** A body the route's schema refuses. */
const INVALID_BODY = { lease_id: ['not', 'an', 'id'], role: 'operator', stage: -1, to: 'yesterday', extra: 1 };

/** The bytes a request to the route carries (JSON for the API, a few bytes for an upload). */
function bodyBytes(name: RouteName, value = validBody(name)): Buffer | undefined {
  const d = def(name);
  if (d.method === 'PUT') return Buffer.from('12345678');
  if (d.method !== 'POST') return undefined;
  return Buffer.from(JSON.stringify(value ?? {}));
}

function headersFor(name: RouteName, signer: Keypair | null, signedPath: string, body: Buffer | undefined): Record<string, string> {
  const d = def(name);
  const headers: Record<string, string> = signer ? signRequest(signer, { method: d.method, path: signedPath, body: body ?? null }, { now: clock }) : {};
  if (body) headers['content-type'] = d.method === 'PUT' ? 'application/octet-stream' : JSON_TYPE;
  return headers;
}

// ---- sending and judging ----

interface Sent {
  what: string;
  method: string;
  target: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Written on a raw connection (a target node's client will not write). */
  raw?: boolean;
}

function send(s: Sent): Promise<HostileOutcome> {
  if (!s.raw) return sendHostile({ port, method: s.method, path: s.target, headers: s.headers, body: s.body });
  const head = [`${s.method} ${s.target} HTTP/1.1`, `host: 127.0.0.1:${port}`, 'connection: close', ...Object.entries(s.headers).map(([k, v]) => `${k}: ${v}`), `content-length: ${s.body?.length ?? 0}`, '', ''].join('\r\n');
  return sendRaw(port, Buffer.concat([Buffer.from(head, 'latin1'), s.body ?? Buffer.alloc(0)]));
}

/** What was wrong with an answer (null: it is the expected refusal). */
function problemWith(o: HostileOutcome, status: number | number[], codes: ErrorCode[], message?: RegExp): string | null {
  if (o.kind === 'reset') return `no answer (${o.error})`;
  const r = o.response;
  const text = r.body.subarray(0, 200).toString('utf8');
  const statuses = Array.isArray(status) ? status : [status];
  if (!statuses.includes(r.status)) return `status ${r.status}, expected ${statuses.join(' or ')}: ${text}`;
  const env = ErrorBodySchema.safeParse(r.json);
  if (!env.success) return `not the error envelope: ${text}`;
  const { code, message: said } = env.data.error;
  if (!codes.includes(code)) return `code ${code}, expected ${codes.join(' or ')}: ${said}`;
  if (message && !message.test(said)) return `message '${said}' does not say ${message}`;
  return null;
}

async function sendAll(cases: { sent: Sent; judge: (o: HostileOutcome) => string | null }[]): Promise<string[]> {
  const problems: string[] = [];
  await runPool(
    cases.map(({ sent, judge }) => async () => {
      const p = judge(await send(sent));
      if (p !== null) problems.push(`${sent.what}\n      ${sent.method} ${JSON.stringify(sent.target.slice(0, 160))}: ${p}`);
    }),
    CONCURRENCY,
  );
  return problems;
}

const report = (problems: string[], n = 25): string => `${problems.length} failed:\n${problems.slice(0, n).map((p) => `  ${p}`).join('\n')}${problems.length > n ? `\n  … and ${problems.length - n} more` : ''}`;

// ---- 1. every route is served ----

test("every route's access in the table is the one expected", () => {
  const differ = NAMES_OF_ROUTES.filter((name) => def(name).access !== EXPECTED_ACCESS[name]).map((name) => `${name}: the table says ${def(name).access}, expected ${EXPECTED_ACCESS[name]}`);
  assert.deepEqual(differ, []);
});

test('every route of the table is registered on the server, and answers its canonical path (no 404)', async () => {
  const missing = NAMES_OF_ROUTES.filter((name) => !orch.app.hasRoute({ method: def(name).method, url: def(name).path }));
  assert.deepEqual(missing, [], `routes of the table the server does not serve: ${missing.join(', ')}`);
  const problems: string[] = [];
  for (const name of NAMES_OF_ROUTES) {
    const d = def(name);
    const target = canonicalPath(name);
    const o = await sendHostile({ port, method: d.method, path: target, headers: headersFor(name, null, target, bodyBytes(name)), body: bodyBytes(name) });
    const status = o.kind === 'response' ? o.response.status : o.error;
    // Unsigned: a public route answers, a signed one refuses the caller, a blob route the URL.
    const expected = accessOf(name) === 'public' ? 200 : accessOf(name) === 'blob_url' ? 400 : 401;
    if (status !== expected) problems.push(`${name}: ${d.method} ${target} answered ${status}, expected ${expected}`);
  }
  assert.deepEqual(problems, []);
});

// ---- 2. every route in every other spelling ----

interface Variant {
  what: string;
  target: string;
  /** What the refusal's message must say. */
  says: RegExp;
  raw?: boolean;
}

const SAYS = {
  absolute: /absolute-form/,
  authority: /authority-form|^malformed HTTP request$/,
  asterisk: /asterisk-form/,
  fragment: /fragment/,
  dot: /dot segment/,
  doubled: /doubled slash/,
  backslash: /backslash/,
  separator: /encoded separator/,
  control: /control character/,
  prefixCase: new RegExp(`case-sensitive: the API is under ${API_PREFIX}/`),
  literalCase: /case-sensitive/,
  encoded: /percent-encod/,
};

/** Every other spelling of `path` (a route's `template` filled in), with `query` (a signed URL's) where it belongs. */
function variants(path: string, template: string, query: string): Variant[] {
  // The root is no segment at all (not one empty one).
  const segs = path === '/' ? [] : path.split('/').slice(1);
  const n = segs.length;
  const join_ = (parts: string[]): string => `/${parts.join('/')}`;
  const inserted = (i: number, ...s: string[]): string => join_([...segs.slice(0, i), ...s, ...segs.slice(i)]);
  const replaced = (i: number, s: string): string => join_(segs.map((x, j) => (j === i ? s : x)));
  /** The path with the separator before segment i (1 ≤ i < n) written as `sep`. */
  const separated = (i: number, sep: string): string => `/${segs.slice(0, i).join('/')}${sep}${segs.slice(i).join('/')}`;
  const last = n - 1;
  /** The path with its last segment (at the root: a first one) written as `f` of it. */
  const lastAs = (f: (seg: string) => string): string => (n > 0 ? replaced(last, f(segs[last])) : `/${f('')}`);
  const inside = n > 1 ? [1] : [];
  const out: Variant[] = [];
  const add = (what: string, target: string, says: RegExp, raw = false): void => {
    if (target !== path) out.push({ what, target: target.startsWith('/') && !target.includes('#') ? target + query : target, says, raw });
  };

  for (const origin of [`http://127.0.0.1:${port}`, `https://127.0.0.1:${port}`, 'http://evil.example', 'HTTPS://evil.example:8443', 'ws://x']) add(`absolute form (${origin})`, `${origin}${path}${query}`, SAYS.absolute);
  // Node's client will not write these, and node's parser (today) refuses them before the server
  // sees them (only CONNECT takes authority form); should it let one through, the front door must name it.
  for (const other of [`127.0.0.1:${port}`, 'evil.example:443', path.slice(1) || 'index.html']) add(`authority form or no leading slash (${other})`, other, SAYS.authority, true);
  add('asterisk form', '*', SAYS.asterisk, true);

  for (const frag of ['', 'x', '/../health']) add(`a fragment at the end (#${frag})`, `${path}${query}#${frag}`, SAYS.fragment);
  if (n > 1) add('a fragment inside the path', replaced(0, `${segs[0]}#x`), SAYS.fragment);
  add('a fragment inside the last segment', lastAs((seg) => `${seg.slice(0, 1)}#${seg.slice(1)}`), SAYS.fragment);

  for (const at of new Set([0, Math.min(1, n), n])) {
    for (const dot of ['.', '%2e', '%2E']) add(`a dot segment '${dot}' at ${at}`, inserted(at, dot), SAYS.dot);
    // 'zz/..' cancels out: the path a normalising router would take is the route itself.
    for (const dotdot of ['..', '%2e%2e', '%2E%2E', '.%2e', '%2E.']) add(`a dot-dot segment '${dotdot}' at ${at}`, inserted(at, 'zz', dotdot), SAYS.dot);
  }

  add('a doubled slash at the start', `/${path}`, SAYS.doubled);
  for (const i of inside) add(`a doubled slash before segment ${i}`, separated(i, '//'), SAYS.doubled);
  add('a doubled slash at the end', `${path}//`, SAYS.doubled);

  add('a trailing backslash', `${path}\\`, SAYS.backslash);
  for (const i of inside) add(`a backslash for the slash before segment ${i}`, separated(i, '\\'), SAYS.backslash);

  for (const enc of ['%2F', '%2f', '%5C', '%5c']) {
    for (const i of inside) add(`'${enc}' for the slash before segment ${i}`, separated(i, enc), SAYS.separator);
    add(`'${enc}' inside the last segment`, lastAs((seg) => `${seg.slice(0, 1)}${enc}${seg.slice(1)}`), SAYS.separator);
  }

  for (const ctl of ['%00', '%01', '%09', '%0A', '%0d', '%1F', '%7F']) add(`a control character '${ctl}' in the last segment`, lastAs((seg) => `${seg}${ctl}`), SAYS.control);

  // Letter case and percent-encoding of the route's own words (a parameter's spelling is its value's).
  const literals = template
    .split('/')
    .slice(1)
    .map((seg, i) => (seg.startsWith(':') || seg === '*' || seg === '' ? -1 : i))
    .filter((i) => i >= 0);
  for (const i of literals) {
    const word = segs[i];
    const says = i === 0 && `/${word}` === API_PREFIX ? SAYS.prefixCase : SAYS.literalCase;
    add(`segment ${i} '${word}' upper-cased`, replaced(i, word.toUpperCase()), says);
    add(`segment ${i} '${word}' capitalised`, replaced(i, word.slice(0, 1).toUpperCase() + word.slice(1)), says);
    const encodedFirst = `%${word.charCodeAt(0).toString(16).toUpperCase()}${word.slice(1)}`;
    add(`segment ${i} '${word}' with its first letter percent-encoded`, replaced(i, encodedFirst), SAYS.encoded);
    add(`segment ${i} '${word}' percent-encoded whole, lower-case hex`, replaced(i, [...word].map((ch) => `%${ch.charCodeAt(0).toString(16)}`).join('')), SAYS.encoded);
  }
  return out;
}

test('every route in every other spelling of its request target is refused by the front door: 400, naming the problem, unsigned or signed by its rightful caller', async (t) => {
  const cases: { sent: Sent; judge: (o: HostileOutcome) => string | null }[] = [];
  const perRoute: string[] = [];
  for (const name of NAMES_OF_ROUTES) {
    const d = def(name);
    const path = canonicalPath(name);
    const query = urlQuery(name);
    const signer = rightfulCaller(name);
    const body = bodyBytes(name);
    const vs = variants(path, d.path, query);
    perRoute.push(`${name} ${vs.length}`);
    for (const v of vs) {
      const callers: [string, Record<string, string>][] = [['unsigned', headersFor(name, null, path, body)]];
      if (signer) {
        // A signature over the canonical path (one that would pass there) and over the target as sent.
        callers.push([`signed by ${NAMES.get(signer)} over the canonical path`, headersFor(name, signer, path + query, body)]);
        if (v.target.startsWith('/')) callers.push([`signed by ${NAMES.get(signer)} over the target as sent`, headersFor(name, signer, v.target, body)]);
      }
      // A blob route's caller holds its signed URL: the variants with a query carry it, the others go without.
      for (const [who, headers] of callers) {
        const unsignedVariant = query !== '' ? v.target.replace(query, '') : v.target;
        const targets = query !== '' && v.target !== unsignedVariant ? [v.target, unsignedVariant] : [v.target];
        for (const target of targets) {
          cases.push({
            sent: { what: `${name}: ${v.what}, ${query && target === v.target ? 'with its signed URL' : who}`, method: d.method, target, headers, body, raw: v.raw },
            judge: (o) => problemWith(o, 400, ['bad_request'], v.says),
          });
        }
      }
    }
  }
  const nonces = async (): Promise<number> => Number((await orch.database.db.selectFrom('request_nonces').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const noncesBefore = await nonces();
  const started = performance.now();
  const problems = await sendAll(cases);
  t.diagnostic(`${cases.length} requests in ${((performance.now() - started) / 1000).toFixed(1)} s; variants per route: ${perRoute.join(', ')}`);
  assert.ok(cases.length > 1500, `only ${cases.length} requests`);
  assert.equal(problems.length, 0, report(problems));
  // Refused before any signature was looked at: not one nonce was spent.
  assert.equal(await nonces(), noncesBefore, 'nonces spent by requests the front door refused');
});

// ---- 3. access ----

/** The parameters a route refuses (out of the id grammar, not an address, not a number): its access answers first. */
const BAD_PARAMS: Record<string, string> = { run: '-bad', sample: '_bad', hotkey: 'O0Il', rounds: 'x' };

test('every route that takes a signature refuses the unsigned, the unregistered and the wrong role before it reads the body; a signed route lets a stranger through', async (t) => {
  const cases: { sent: Sent; judge: (o: HostileOutcome) => string | null }[] = [];
  const wrongRoles: Record<Access, Keypair[]> = { public: [], blob_url: [], signed: [], participant: [], miner: [validator], validator: [minerA, minerB], operator: [minerA, minerB, validator] };
  for (const name of NAMES_OF_ROUTES) {
    const d = def(name);
    const access = accessOf(name);
    if (!takesSignature(access)) continue;
    // The valid request, then one its schema refuses (a bad body or bad parameters).
    const forms: { what: string; path: string; body?: Buffer; valid: boolean }[] = [];
    const good = validBody(name);
    if (d.body) {
      assert.ok(d.body.safeParse(d.bodyOptional && good === undefined ? {} : good).success, `${name}: the test's body is valid for the route`);
      if (name === 'createRun') assert.ok(RunSpecSchema.safeParse(good).success, 'the run specification is valid');
      assert.ok(!d.body.safeParse(INVALID_BODY).success || name === 'createRun', `${name}: the invalid body is invalid`);
    }
    forms.push({ what: 'a valid request', path: canonicalPath(name), body: bodyBytes(name), valid: true });
    if (d.method === 'POST') forms.push({ what: 'an invalid body', path: canonicalPath(name), body: bodyBytes(name, name === 'createRun' ? [] : INVALID_BODY), valid: false });
    if (d.params) forms.push({ what: 'invalid parameters', path: canonicalPath(name, BAD_PARAMS), body: bodyBytes(name), valid: false });
    if (d.query) forms.push({ what: 'an invalid query', path: `${canonicalPath(name)}?from=soon&x=1`, body: bodyBytes(name), valid: false });

    for (const form of forms) {
      const push = (who: string, signer: Keypair | null, judge: (o: HostileOutcome) => string | null): void => {
        cases.push({ sent: { what: `${name} (${access}): ${form.what}, ${who}`, method: d.method, target: form.path, headers: headersFor(name, signer, form.path, form.body), body: form.body }, judge });
      };
      push('unsigned', null, (o) => problemWith(o, 401, ['unauthorized'], /unsigned request/));
      for (const signer of [stranger, ...(access === 'operator' ? [] : [operator])]) {
        // The operator's hotkey is not registered in the run: to participant routes it is a stranger.
        if (access === 'operator') push(`signed by ${NAMES.get(signer)}`, signer, (o) => problemWith(o, 403, ['forbidden'], /for the run operator/));
        else if (access !== 'signed') push(`signed by ${NAMES.get(signer)}`, signer, (o) => problemWith(o, 403, ['not_registered'], /is not registered/));
      }
      for (const signer of wrongRoles[access]) {
        push(`signed by ${NAMES.get(signer)} (the wrong role)`, signer, (o) => problemWith(o, 403, ['forbidden'], access === 'operator' ? /for the run operator/ : new RegExp(`for ${access}s`)));
      }
      if (access === 'signed') {
        // Anyone's signature passes: what follows is the route's own (nothing that changes state).
        if (d.method === 'GET') {
          push(`signed by ${NAMES.get(stranger)}`, stranger, (o) => {
            if (o.kind === 'reset') return `no answer (${o.error})`;
            if (!form.valid) return problemWith(o, 400, ['bad_request']);
            if (o.response.status !== 200) return `status ${o.response.status}: ${o.response.body.subarray(0, 200).toString('utf8')}`;
            const parsed = d.response?.safeParse(o.response.json);
            return parsed && !parsed.success ? `the answer is not the route's: ${parsed.error.message.slice(0, 200)}` : null;
          });
        } else if (form.valid) {
          // A registration for a run that does not exist: past the access check, refused by the coordinator.
          const body = Buffer.from(JSON.stringify({ ...(good as object), run_id: 'no-such-run' }));
          cases.push({ sent: { what: `${name}: a registration for no run, signed by a stranger`, method: 'POST', target: form.path, headers: headersFor(name, stranger, form.path, body), body }, judge: (o) => problemWith(o, 404, ['not_found'], /no-such-run/) });
        } else push(`signed by ${NAMES.get(stranger)}`, stranger, (o) => problemWith(o, 400, ['bad_request']));
      }
    }
    // The rightful caller's reads pass the access check (they change nothing); its writes are not sent here.
    if (d.method === 'GET') {
      const signer = rightfulCaller(name)!;
      const path = canonicalPath(name);
      cases.push({
        sent: { what: `${name}: signed by its rightful caller, ${NAMES.get(signer)}`, method: 'GET', target: path, headers: headersFor(name, signer, path, undefined) },
        judge: (o) => (o.kind === 'response' && (o.response.status === 401 || o.response.status === 403) ? `refused: ${o.response.body.toString('utf8').slice(0, 200)}` : o.kind === 'reset' ? `no answer (${o.error})` : null),
      });
    }
  }

  // Blob routes: the store's signed URL is the only authority; a request signature counts for nothing.
  const withQuery = (path: string, query: string): string => `${path}?${query}`;
  const tamper = (url: string): string => url.replace(/sig=([0-9a-f])/, (_, c: string) => `sig=${c === '0' ? '1' : '0'}`);
  for (const name of NAMES_OF_ROUTES.filter((n) => accessOf(n) === 'blob_url')) {
    const d = def(name);
    const path = canonicalPath(name);
    const own = d.method === 'PUT' ? blob.put : blob.get;
    const other = d.method === 'PUT' ? blob.get : blob.put;
    const body = bodyBytes(name);
    const attempts: [string, string, Keypair | null][] = [
      ['no query', path, null],
      ['no query, with a request signature by miner A', path, minerA],
      ['no query, with a request signature by the operator', path, operator],
      ['a tampered URL signature', tamper(own), null],
      ['a tampered URL signature, with a request signature by miner A', tamper(own), minerA],
      ["another URL's query (the other operation)", withQuery(path, other.slice(other.indexOf('?') + 1)), null],
      ["the other operation's URL", other, null],
      ['an expired URL', d.method === 'GET' ? blob.expired : withQuery(path, blob.expired.slice(blob.expired.indexOf('?') + 1)), null],
      ['no signature', withQuery(path, own.slice(own.indexOf('?') + 1).replace(/&?sig=[0-9a-f]+/, '')), null],
    ];
    for (const [what, target, signer] of attempts) {
      cases.push({ sent: { what: `${name} (blob_url): ${what}`, method: d.method, target, headers: headersFor(name, signer, target, body), body }, judge: (o) => problemWith(o, [400, 403], ['bad_request', 'forbidden']) });
    }
  }

  const problems = await sendAll(cases);
  t.diagnostic(`${cases.length} requests`);
  assert.equal(problems.length, 0, report(problems));
});

// ---- 4. nothing changed ----

test('none of it changed a table but the nonce record, which only grew', async (t) => {
  const after = await snapshotDatabase(orch.database);
  for (const table of ['runs', 'participants', 'samples', 'work_items', 'events', 'kv', 'blobs', 'request_nonces']) assert.ok(tablesBefore.has(table), `table ${table} was snapshotted`);
  assert.deepEqual([...after.keys()].sort(), [...tablesBefore.keys()].sort(), 'the same tables');
  for (const [table, rows] of tablesBefore) if (table !== 'request_nonces') assert.equal(after.get(table), rows, `table ${table} changed`);
  // Every signature the access check accepted spent its nonce, whatever came after: that is the replay protection.
  const nonces = JSON.parse(after.get('request_nonces')!) as unknown[];
  const before = JSON.parse(tablesBefore.get('request_nonces')!) as unknown[];
  assert.deepEqual(nonces.slice(0, before.length), before, 'the nonces recorded before are kept');
  assert.ok(nonces.length > before.length, 'the accepted signatures spent their nonces');
  t.diagnostic(`${tablesBefore.size - 1} tables compared; ${nonces.length - before.length} nonces spent`);
});

test('none of it changed the blob store: no blob written, no temporary upload left, no file handle open', async () => {
  // An upload refused mid-body is cleaned up as its connection closes: poll a little (bounded).
  const settled = async (): Promise<boolean> => (await handlesInto(blobDir)).length === 0 && isDeepStrictEqual(await snapshotDir(blobDir), blobDirBefore);
  for (const deadline = Date.now() + 5000; !(await settled()) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
  const files = await snapshotDir(blobDir);
  assert.deepEqual(
    files.filter((f) => /~upload-|~multipart-/.test(f)),
    [],
    'temporary upload files',
  );
  assert.deepEqual(files, blobDirBefore);
  assert.deepEqual(await handlesInto(blobDir), [], 'file handles into the blob store left open');
});
