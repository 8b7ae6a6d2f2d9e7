// Hostile input against the real orchestrator (HTTP on loopback, sr25519 signatures, SQLite, the
// local blob store): thousands of malformed, oversized or type-confused requests, most of them
// validly signed so they get past authentication to the schema checks, and request targets in
// every other spelling of a route (absolute form, fragments, dot segments, doubled slashes, case).
// Every one must get a 4xx in the protocol's error envelope, the server must keep answering, and
// the database must be exactly as it was (but for the nonces of the signatures it accepted).
//
// Reproducible: the requests come from a seeded PRNG (TAH_FUZZ_SEED overrides the seed, which
// the test prints). Requests that would be valid by accident (and so would legitimately succeed
// and change state) are recognised with the protocol's own schemas and left out, and counted.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { encodeAddress } from '@polkadot/util-crypto';
import { OrchestratorClient } from '../../orchestrator-client/client.ts';
import {
  AppliedRequestSchema,
  CompleteRequestSchema,
  type ErrorCode,
  ErrorBodySchema,
  type Hardware,
  type Lease,
  LeaseRequestSchema,
  MoveRequestSchema,
  RegisterRequestSchema,
  RejectRequestSchema,
  ReleaseRequestSchema,
  RunSpecSchema,
} from '../../orchestrator-client/protocol.ts';
import { ID_PATTERN } from '../../orchestrator-client/protocol.ts';
import { ROUTES as API, type RouteName, routePath } from '../../orchestrator-client/routes.ts';
import { type Keypair, keypairFromSeed, ready, signRequest } from '../../orchestrator-client/signing.ts';
import { type Orchestrator, startOrchestrator } from '../../orchestrator/service.ts';
import { LocalBlobStore } from '../../orchestrator/storage/local.ts';
import { parseRange } from '../../orchestrator/storage/local-routes.ts';
import { seedRun } from '../helpers/run-fixture.ts';
import { type HostileOutcome, Prng, runPool, sendHostile, sendRaw } from '../helpers/hostile-http.ts';
import { handlesInto, snapshotDatabase, snapshotDir } from '../helpers/server-state.ts';

const SEED = Number(process.env.TAH_FUZZ_SEED ?? 0x7a4f_2026) >>> 0;
const CONCURRENCY = 16;
const BODY_LIMIT = 1 << 20; // the server's default bodyLimit
const MIN_REQUESTS = 2000;

const clock = Date.UTC(2026, 10, 22);
const now = (): number => clock;
const hardware: Hardware = { device: 'cpu', cores: 2, memory_bytes: 8 * 2 ** 30, tokens_per_s: 1000 };
const JSON_TYPE = 'application/json';

let dir = '';
let orch: Orchestrator;
let port = 0;
let operator: Keypair;
let minerA: Keypair;
let minerB: Keypair;
let validator: Keypair;
let strangers: Keypair[];
let leaseA: Lease;
let blobs: { store: LocalBlobStore; get: string; put: string; expired: string; leasePut: string };
const existingSamples = new Set<string>();

const key = (n: number): Keypair => keypairFromSeed(new Uint8Array(32).fill(n));
const sign = (k: Keypair, method: string, path: string, body?: Uint8Array, at = clock): Record<string, string> =>
  signRequest(k, { method, path, body: body ?? null }, { now: at });

// ---- the state the fuzzing must not touch ----

let tablesBefore: Map<string, string>;
let blobDirBefore: string[];

before(async () => {
  await ready();
  operator = key(1);
  minerA = key(2);
  minerB = key(3);
  validator = key(4);
  strangers = [key(10), key(11), key(12)];
  dir = await mkdtemp(join(tmpdir(), 'tah-fuzz-'));
  orch = await startOrchestrator({
    db: `sqlite:${join(dir, 'o.db')}`,
    storage: `local:${join(dir, 'blobs')}`,
    operator: operator.address,
    now,
    reapIntervalMs: 3_600_000,
    rateLimitPerMinute: 10_000_000,
  });
  port = Number(new URL(orch.url).port);
  leaseA = await seedRun(orch.url, { operator, minerA, minerB, validator }, now);
  for (const s of await orch.database.db.selectFrom('samples').select('id').execute()) existingSamples.add(s.id);

  // A second handle on the same blob directory and URL key (the key lives in the kv table), to
  // presign URLs and to check mangled ones exactly as the server does.
  const secret = (await orch.database.db.selectFrom('kv').select('value').where('key', '=', 'local_blob_secret').executeTakeFirstOrThrow()).value;
  const store = new LocalBlobStore({ dir: join(dir, 'blobs'), secret: Buffer.from(secret, 'hex'), now, baseUrl: orch.url });
  await store.put('fuzz/existing.bin', new Uint8Array(64).fill(7));
  const past = new LocalBlobStore({ dir: join(dir, 'blobs'), secret: Buffer.from(secret, 'hex'), now: () => clock - 86_400_000, baseUrl: orch.url });
  const rel = (u: string): string => u.slice(orch.url.length);
  blobs = {
    store,
    get: rel(await store.presign('get', 'fuzz/existing.bin', { expiresInS: 3600 })),
    put: rel(await store.presign('put', 'fuzz/new.bin', { expiresInS: 3600, maxBytes: 16 })),
    expired: rel(await past.presign('get', 'fuzz/existing.bin', { expiresInS: 60 })),
    leasePut: rel(leaseA.output.url),
  };

  tablesBefore = await snapshotDatabase(orch.database);
  blobDirBefore = await snapshotDir(join(dir, 'blobs'));
});

after(async () => {
  await orch?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---- cases ----

/** Request classes the fuzzing once caught answering outside the envelope; each is judged in its own test below. */
type Bug = 'admin-invalid-run-500' | 'bad-url-envelope' | 'long-param-envelope' | 'parser-error-envelope';

type Group = 'signed-body' | 'semantic' | 'oversize' | 'odd-get' | 'bad-auth' | 'replay' | 'blob' | 'unknown-route' | 'parser' | 'target';

interface Req {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
  framing?: 'length' | 'chunked' | 'none';
}

interface Case {
  group: Group;
  what: string;
  req?: Req;
  /** Raw bytes on a fresh connection instead of `req`. */
  raw?: Buffer;
  /** The statuses allowed (default: any 4xx). */
  status?: number[];
  codes?: ErrorCode[];
  /** A 413 that the server may answer by closing the connection before reading the body. */
  mayReset?: boolean;
  /** This request belongs to one of those classes (see their tests). */
  bug?: Bug;
  /** Sent after this one is answered (a replay). */
  then?: Case;
}

// -- bodies --

/** JSON text inserted as is (invalid numbers, lone surrogates, deep nesting). */
class Raw {
  constructor(readonly text: string) {}
}
/** An object written with exactly these keys, duplicates included. */
class Pairs {
  constructor(readonly pairs: [string, unknown][]) {}
}

function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (v instanceof Pairs) return `{${v.pairs.map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  if (v !== null && typeof v === 'object') return toJson(new Pairs(Object.entries(v)));
  return v === undefined ? 'null' : JSON.stringify(v);
}

const UNICODE = ['é', '漢字', '🦀', '👩‍👩‍👧', '\u202e', '\u200b', '\ufeff', 'e\u0301', '\u0000', '\u001f', 'Ω', '𝕏', '\uffff', 'ﷺ', '\u2028'];
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function longString(rng: Prng): string {
  const n = rng.chance(0.85) ? rng.int(129, 20_000) : rng.int(20_000, 250_000);
  return rng.chance(0.5) ? 'a'.repeat(n) : rng.string(Math.min(n, 5000), ALNUM).repeat(Math.ceil(n / 5000)).slice(0, n);
}

function deep(rng: Prng): Raw {
  const d = rng.chance(0.7) ? rng.int(50, 2000) : rng.int(2000, 40_000);
  return rng.chance(0.5) ? new Raw('['.repeat(d) + ']'.repeat(d)) : new Raw('{"a":'.repeat(d) + '0' + '}'.repeat(d));
}

const NUMBERS: (() => unknown)[] = [
  () => 0,
  () => -1,
  () => new Raw('-0'),
  () => 1.5,
  () => 0.1,
  () => 2 ** 53,
  () => 2 ** 53 + 2,
  () => -(2 ** 53),
  () => 2 ** 64,
  () => 1e308,
  () => -1e308,
  () => 5e-324,
  () => new Raw('1e999'),
  () => new Raw('-1e999'),
  () => new Raw('1e-999'),
  () => new Raw('123456789012345678901234567890'),
  () => new Raw('NaN'),
  () => new Raw('Infinity'),
  () => new Raw('-Infinity'),
  () => new Raw('0x10'),
  () => new Raw('01'),
  () => new Raw('+1'),
  () => new Raw('.5'),
  () => new Raw('1.'),
  () => -(2 ** 31),
  () => 2 ** 31,
];

const STRINGS: ((rng: Prng) => unknown)[] = [
  () => '',
  () => ' ',
  () => 'NaN',
  () => 'Infinity',
  () => '-Infinity',
  () => '1e999',
  () => 'null',
  () => 'undefined',
  () => 'true',
  () => '0',
  () => '-1',
  () => ' 1',
  () => '١٢',
  () => '0x10',
  (rng) => longString(rng),
  (rng) => rng.pick(UNICODE).repeat(rng.int(1, 300)),
  () => UNICODE.join(''),
  () => new Raw('"\\ud800"'),
  () => new Raw('"\\udfff\\ud800x"'),
  () => "'; drop table runs; --",
  () => "' OR 1=1 --",
  () => '../../etc/passwd',
  () => '..',
  () => '%00',
  () => 'run1\u0000',
  () => '${7*7}',
  () => '<script>alert(1)</script>',
  () => 'A'.repeat(129),
  () => 'miner ',
  () => 'MINER',
  () => 'operator',
  () => 'cuda\u0000',
  () => '5F3sa2TJAWMqDhXG6jhV4N8ko9SxwGy8TpaNS1repo5EYjQX',
];

function weird(rng: Prng, base?: unknown): unknown {
  switch (rng.int(0, 9)) {
    case 0:
    case 1:
      return rng.pick(NUMBERS)();
    case 2:
    case 3:
    case 4:
      return rng.pick(STRINGS)(rng);
    case 5:
      return rng.pick([null, true, false]);
    case 6:
      return rng.pick<() => unknown>([() => [], () => ({}), () => [1, 2, 3], () => [null], () => ({ a: 1 }), () => [[0, 1]], () => [base], () => ({ value: base })])();
    case 7:
      return deep(rng);
    case 8:
      return new Raw(`[${'0,'.repeat(rng.int(1000, 120_000))}0]`);
    default:
      return new Pairs([
        ['__proto__', { role: 'operator', stage: 0 }],
        ['constructor', { prototype: { admin: true } }],
      ]);
  }
}

type Route = 'register' | 'heartbeat' | 'leave' | 'move' | 'lease' | 'complete' | 'release' | 'reject' | 'applied' | 'admin';
const ROUTES: Route[] = ['register', 'heartbeat', 'leave', 'move', 'lease', 'complete', 'release', 'reject', 'applied', 'admin'];
const PATH: Record<Route, string> = {
  register: '/v1/participants/register',
  heartbeat: '/v1/participants/heartbeat',
  leave: '/v1/participants/leave',
  move: '/v1/participants/move',
  lease: '/v1/leases/next',
  complete: '/v1/leases/complete',
  release: '/v1/leases/release',
  reject: '/v1/leases/reject',
  applied: '/v1/rounds/applied',
  admin: '/v1/admin/runs',
};
/** GET /v1/runs/:run/status, the run's progress. */
const STATUS_PATH = '/v1/runs/run1/status';
/** A well-formed SHA-256 (of nothing stored). */
const SHA = 'ab'.repeat(32);
/** The route of the table (orchestrator-client/routes.ts) each fuzzed route is. */
const TABLE_NAME: Record<Route, RouteName> = { register: 'register', heartbeat: 'heartbeat', leave: 'leave', move: 'move', lease: 'leaseNext', complete: 'complete', release: 'release', reject: 'reject', applied: 'applied', admin: 'createRun' };

/**
 * Why the route's access check refuses `signer` (before its body is looked at), or null: who is
 * registered as what is this test's own setup (miners A and B, one validator, the operator and
 * the strangers unregistered); who may call a route is the route table's.
 */
function accessRefusal(route: Route, signer: Keypair): ErrorCode | null {
  const access = API[TABLE_NAME[route]].access;
  if (access === 'signed') return null;
  if (access === 'operator') return signer === operator ? null : 'forbidden';
  if (!isRegistered(signer)) return 'not_registered';
  if (access === 'miner' && !isMiner(signer)) return 'forbidden';
  if (access === 'validator' && signer !== validator) return 'forbidden';
  return null;
}

function baseBody(route: Route): unknown {
  switch (route) {
    case 'register':
      return { role: 'miner', run_id: 'run1', hardware: { device: 'cpu', cores: 2, memory_bytes: 8 * 2 ** 30, accelerator_memory_bytes: 0, tokens_per_s: 1000 } };
    case 'move':
      return { stage: 1 };
    case 'lease':
      return { version: 0, wait_ms: 0 };
    case 'reject':
      return { lease_id: leaseA.id, reason: `${leaseA.output.key}: tensor activation holds NaN at element 0` };
    case 'applied':
      return { round: 0, snapshot: { key: 'runs/run1/snapshots/stage-0/1.safetensors', bytes: 1, sha256: SHA } };
    case 'complete':
      return { lease_id: leaseA.id, output: { key: leaseA.output.key, bytes: 1, sha256: SHA }, loss: 1.5 };
    case 'release':
      return { lease_id: leaseA.id };
    case 'admin':
      return {
        id: 'fuzz-run',
        preset: 'tiny',
        stages: [
          [0, 1],
          [2, 3],
        ],
        samples_per_round: 4,
        max_miners_per_stage: 0,
        lease_ttl_s: 60,
        heartbeat_timeout_s: 90,
        max_blob_bytes: 1024,
        seed: 0,
        admission: { mode: 'allowlist', hotkeys: [minerA.address] },
      };
    default:
      return {};
  }
}

/** Whether the server's handler for `route` accepts `body` (the parsed JSON, undefined for an empty body). */
function schemaAccepts(route: Route, body: unknown): boolean {
  switch (route) {
    case 'register':
      return RegisterRequestSchema.safeParse(body).success;
    case 'move':
      return MoveRequestSchema.safeParse(body ?? {}).success;
    case 'complete':
      return CompleteRequestSchema.safeParse(body).success;
    case 'release':
      return ReleaseRequestSchema.safeParse(body).success;
    case 'reject':
      return RejectRequestSchema.safeParse(body).success;
    case 'applied':
      return AppliedRequestSchema.safeParse(body).success;
    case 'lease':
      return LeaseRequestSchema.safeParse(body ?? {}).success; // an empty body (or null) asks with the defaults
    case 'admin':
      return RunSpecSchema.safeParse(body).success;
    default:
      // heartbeat and leave take no fields: the empty object, or no body.
      return body === undefined || (isContainer(body) && !Array.isArray(body) && Object.keys(body).length === 0);
  }
}

const isRegistered = (k: Keypair): boolean => k === minerA || k === minerB || k === validator;
const isMiner = (k: Keypair): boolean => k === minerA || k === minerB;

/**
 * Whether a signed request could change state: the server parses a body (as JSON, whatever it
 * takes for the content type) and the handler would act on it. Conservative: anything the
 * handler might accept for a signer it might act for counts.
 */
function couldChangeState(route: Route, signer: Keypair, parsed: Parsed): boolean {
  if (parsed.kind === 'invalid') return false;
  const v = parsed.kind === 'ok' ? parsed.value : undefined;
  switch (route) {
    case 'register':
      return schemaAccepts('register', v);
    case 'heartbeat':
    case 'leave':
      return isRegistered(signer) && (v === undefined || (isContainer(v) && !Array.isArray(v) && Object.keys(v).length === 0));
    case 'lease':
    case 'move':
    case 'applied':
      return isMiner(signer) && schemaAccepts(route, v);
    case 'complete':
    case 'release':
    case 'reject':
      return isRegistered(signer) && schemaAccepts(route, v);
    case 'admin':
      return signer === operator && schemaAccepts('admin', v);
  }
}

type Parsed = { kind: 'empty' } | { kind: 'invalid' } | { kind: 'ok'; value: unknown };

/** What the server's JSON parser makes of a body (orchestrator/server.ts: utf8, then JSON.parse). */
function parseLikeServer(body: Buffer): Parsed {
  if (body.length === 0) return { kind: 'empty' };
  try {
    return { kind: 'ok', value: JSON.parse(body.toString('utf8')) };
  } catch {
    return { kind: 'invalid' };
  }
}

type Container = Record<string, unknown> | unknown[];
const isContainer = (v: unknown): v is Container => Array.isArray(v) || (v !== null && typeof v === 'object' && !(v instanceof Raw) && !(v instanceof Pairs));

/** Paths to every value inside `root` (not the root itself). */
function paths(root: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (!isContainer(root)) return [];
  const out: (string | number)[][] = [];
  const entries: [string | number, unknown][] = Array.isArray(root) ? root.map((v, i) => [i, v]) : Object.entries(root);
  for (const [k, v] of entries) {
    out.push([...prefix, k]);
    out.push(...paths(v, [...prefix, k]));
  }
  return out;
}

function at(root: unknown, path: (string | number)[]): unknown {
  let v = root;
  for (const k of path) v = (v as Record<string | number, unknown>)[k];
  return v;
}

const EXTRA_KEYS = ['extra', '__proto__', 'constructor', 'prototype', 'toString', '', ' role', 'ROLE', 'role\u0000', 'stage ', '🦀', 'hotkey', 'lease_id', 'id'];

function setOwn(obj: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(obj, k, { value: v, enumerable: true, configurable: true, writable: true });
}

/** The route's valid body, broken one to three ways (or replaced outright). */
function mutatedBody(rng: Prng, route: Route): unknown {
  if (rng.chance(0.12)) return weird(rng, baseBody(route));
  let body: unknown = structuredClone(baseBody(route));
  for (let n = rng.int(1, 3); n > 0; n--) {
    const all = paths(body);
    const op = rng.int(0, 9);
    if (all.length > 0 && op <= 4) {
      // A field gets a value of the wrong type, size or shape.
      const p = rng.pick(all);
      const parent = at(body, p.slice(0, -1)) as Record<string | number, unknown>;
      parent[p[p.length - 1]] = weird(rng, parent[p[p.length - 1]]);
    } else if (all.length > 0 && op <= 6) {
      const p = rng.pick(all);
      const parent = at(body, p.slice(0, -1));
      if (Array.isArray(parent)) parent.splice(p[p.length - 1] as number, 1);
      else delete (parent as Record<string, unknown>)[p[p.length - 1] as string];
    } else if (op <= 8) {
      // An extra field somewhere (the schemas are strict).
      const objects = [[] as (string | number)[], ...all].filter((p) => {
        const v = at(body, p);
        return isContainer(v) && !Array.isArray(v);
      });
      if (objects.length === 0) continue;
      const target = at(body, rng.pick(objects)) as Record<string, unknown>;
      const k = rng.chance(0.1) ? longString(rng) : rng.pick(EXTRA_KEYS);
      setOwn(target, k, rng.chance(0.5) ? weird(rng) : 1);
    } else if (isContainer(body) && !Array.isArray(body)) {
      // The same key twice (JSON.parse keeps the last).
      const entries = Object.entries(body);
      if (entries.length === 0) continue;
      const [k, v] = rng.pick(entries);
      body = new Pairs([...entries, [k, rng.chance(0.5) ? weird(rng, v) : v]]);
    }
  }
  return body;
}

function invalidJson(rng: Prng, route: Route): Buffer {
  const text = toJson(baseBody(route));
  const pick = rng.int(0, 6);
  if (pick === 0 && text.length > 2) return Buffer.from(text.slice(0, rng.int(1, text.length - 1)));
  if (pick === 1) return rng.bytes(rng.int(1, 4096));
  if (pick === 2) return Buffer.concat([Buffer.from('{"role":"'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf, 0xed, 0xa0, 0x80]), Buffer.from('"')]);
  if (pick === 3) return Buffer.from(`\ufeff${text}`);
  return Buffer.from(
    rng.pick([
      "{'role':'miner'}",
      '{"a":1,}',
      '[1,]',
      '{"a":1}/*c*/',
      '// c\n{}',
      'undefined',
      'NaN',
      '{',
      '}',
      '[',
      '"',
      'nul',
      'tru',
      '{"a":1}}',
      '{"a":1}{"b":2}',
      '   ',
      '\t\r\n',
      '\u0000',
      'role=miner&hardware=x',
      '<?xml version="1.0"?><role>miner</role>',
      '{"a":"\\x41"}',
      '{"a":"\\u12"}',
      '{"a":"line\nbreak"}',
      '{"a":1e}',
      '{"a":-}',
      '{a:1}',
      ")]}'\n{}",
      '{"stage":1} trailing',
      '{"stage":01}',
      '--boundary\r\nContent-Disposition: form-data; name="role"\r\n\r\nminer\r\n--boundary--',
    ]),
  );
}

const CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
  'multipart/form-data; boundary=boundary',
  'application/jsonx',
  'json',
  '*/*',
  'APPLICATION/JSON',
  ';;;',
  'application/json, text/plain',
  'application/json; charset=latin1',
  'application/problem+json',
  'text/json',
  '',
];

const signersFor = (route: Route): Keypair[] => {
  const everyone = [operator, minerA, minerB, validator, ...strangers];
  return route === 'admin' ? [operator, operator, operator, minerA, validator, strangers[0]] : everyone;
};

function queryNoise(rng: Prng): string {
  if (!rng.chance(0.1)) return '';
  return `?${rng.pick(['x=1', 'a=1&a=2', '__proto__[role]=operator', `q=${encodeURIComponent(rng.pick(UNICODE))}`, '', '%zz=1', `long=${'a'.repeat(rng.int(100, 4000))}`])}`;
}

/** Validly signed requests to every POST route whose bodies are wrong. */
function signedBodyCase(rng: Prng, route: Route, excluded: Map<string, number>): Case {
  for (let attempt = 0; ; attempt++) {
    if (attempt > 200) throw new Error(`no malformed body found for ${route}`);
    const signer = rng.pick(signersFor(route));
    const path = PATH[route] + queryNoise(rng);
    const form = rng.int(0, 9);
    const body = form <= 5 ? Buffer.from(toJson(mutatedBody(rng, route))) : form <= 7 ? invalidJson(rng, route) : form === 8 ? Buffer.alloc(0) : Buffer.from(toJson(weird(rng)));
    // The operator's requests to /admin/runs keep to JSON (see the admin test); the rest
    // also come with other content types or none.
    const exactJson = (route === 'admin' && signer === operator) || rng.chance(0.75);
    const contentType: string | undefined = exactJson ? rng.pick([JSON_TYPE, JSON_TYPE, 'application/json; charset=utf-8']) : rng.chance(0.15) ? undefined : rng.pick(CONTENT_TYPES);
    const parsed = parseLikeServer(body);
    if (couldChangeState(route, signer, parsed)) {
      excluded.set(route, (excluded.get(route) ?? 0) + 1);
      continue;
    }
    const headers: Record<string, string> = sign(signer, 'POST', path, body);
    if (contentType !== undefined) headers['content-type'] = contentType;
    const c: Case = { group: 'signed-body', what: `POST ${route} by ${nameOf(signer)} (${contentType ?? 'no content-type'}, ${body.length} bytes)`, req: { method: 'POST', path, headers, body } };
    if (body.length > BODY_LIMIT) return { ...c, status: [413], mayReset: true };
    if (!exactJson) return c;
    if (parsed.kind === 'invalid') return { ...c, status: [400], codes: ['bad_request'] };
    // The route's access comes first: a caller who may not make the request learns nothing of its body.
    const refusal = accessRefusal(route, signer);
    if (refusal !== null) return { ...c, status: [403], codes: [refusal] };
    if (route === 'admin') return { ...c, status: [400], codes: ['bad_request'], bug: 'admin-invalid-run-500' };
    assert.ok(!schemaAccepts(route, parsed.kind === 'ok' ? parsed.value : undefined), `a valid ${route} body by ${nameOf(signer)} is left out as one that could change state`);
    return { ...c, status: [400], codes: ['bad_request'] };
  }
}

function nameOf(k: Keypair): string {
  if (k === operator) return 'operator';
  if (k === minerA) return 'miner A';
  if (k === minerB) return 'miner B';
  if (k === validator) return 'validator';
  const i = strangers.indexOf(k);
  return i >= 0 ? `stranger ${i + 1}` : 'someone';
}

const postJson = (group: Group, what: string, signer: Keypair, path: string, value: unknown, status: number[], codes: ErrorCode[], bug?: Bug): Case => {
  const body = Buffer.from(JSON.stringify(value));
  return { group, what, req: { method: 'POST', path, headers: { ...sign(signer, 'POST', path, body), 'content-type': JSON_TYPE }, body }, status, codes, bug };
};

/** Requests the schemas accept but the coordinator must refuse, without changing anything. */
function semanticCases(): Case[] {
  const out: Case[] = [];
  const spec = baseBody('admin') as Record<string, unknown>;
  for (let i = 0; i < 5; i++) {
    for (const stage of [2, 7, 2 ** 31, 2 ** 53 - 1, 1e300]) out.push(postJson('semantic', `move miner A to stage ${stage}`, minerA, PATH.move, { stage }, [400], ['bad_request']));
    out.push(postJson('semantic', 'move a validator', validator, PATH.move, {}, [403], ['forbidden']));
    out.push(postJson('semantic', 'lease as a validator', validator, PATH.lease, {}, [403], ['forbidden']));
    out.push(postJson('semantic', 'complete an unknown lease', minerA, PATH.complete, { lease_id: 'no-such-lease' }, [410], ['lease_expired']));
    out.push(postJson('semantic', "complete A's lease as B", minerB, PATH.complete, { lease_id: leaseA.id, output: { key: leaseA.output.key, bytes: 1, sha256: SHA } }, [403], ['forbidden']));
    out.push(postJson('semantic', 'complete without the upload', minerA, PATH.complete, { lease_id: leaseA.id, output: { key: leaseA.output.key, bytes: 1, sha256: SHA } }, [400], ['bad_request']));
    out.push(postJson('semantic', 'complete without an output', minerA, PATH.complete, { lease_id: leaseA.id, loss: 1 }, [400], ['bad_request']));
    out.push(postJson('semantic', 'complete to another key', minerA, PATH.complete, { lease_id: leaseA.id, output: { key: 'runs/run1/samples/r0-s1/0-forward-x.safetensors', bytes: 1, sha256: SHA } }, [403], ['forbidden']));
    out.push(postJson('semantic', 'release an unknown lease', minerA, PATH.release, { lease_id: 'no-such-lease' }, [404], ['not_found']));
    out.push(postJson('semantic', "release A's lease as B", minerB, PATH.release, { lease_id: leaseA.id }, [404], ['not_found']));
    out.push(postJson('semantic', 'release as a stranger', strangers[0], PATH.release, { lease_id: leaseA.id }, [403], ['not_registered']));
    out.push(postJson('semantic', 'register for an unknown run', strangers[1], PATH.register, { role: 'miner', run_id: 'no-such-run', hardware }, [404], ['not_found']));
    out.push(postJson('semantic', 'leave as a stranger', strangers[0], PATH.leave, {}, [403], ['not_registered']));
    out.push(postJson('semantic', 'reject an unknown lease', minerA, PATH.reject, { lease_id: 'no-such-lease', reason: 'bad input' }, [404], ['not_found']));
    out.push(postJson('semantic', "reject A's lease as B", minerB, PATH.reject, { lease_id: leaseA.id, reason: 'bad input' }, [404], ['not_found']));
    out.push(postJson('semantic', "reject A's lease as the validator", validator, PATH.reject, { lease_id: leaseA.id, reason: 'bad input' }, [403], ['forbidden']));
    out.push(postJson('semantic', "claim A's input changed, on a lease it does not hold", minerB, PATH.reject, { lease_id: leaseA.id, reason: 'not as accepted', key: leaseA.output.key, sha256: SHA }, [404], ['not_found']));
    out.push(postJson('semantic', 'report a refused blob as a stranger', strangers[0], '/v1/refusals', { key: leaseA.output.key, sha256: SHA, reason: 'not as accepted' }, [403], ['not_registered']));
    out.push(postJson('semantic', 'reject as a stranger', strangers[0], PATH.reject, { lease_id: leaseA.id, reason: 'bad input' }, [403], ['not_registered']));
    out.push(postJson('semantic', 'report a snapshot nobody asked for', minerA, PATH.applied, { round: 0, snapshot: { key: 'runs/run1/snapshots/stage-0/1.safetensors', bytes: 1, sha256: SHA } }, [403], ['forbidden']));
    out.push(postJson('semantic', 'report a snapshot of a round far ahead', minerB, PATH.applied, { round: 2 ** 31, snapshot: { key: leaseA.output.key, bytes: 1, sha256: SHA } }, [403], ['forbidden']));
    out.push(postJson('semantic', 'report a round applied as the validator', validator, PATH.applied, { round: 0 }, [403], ['forbidden']));
    out.push(postJson('semantic', 'report a round applied as a stranger', strangers[1], PATH.applied, { round: 0 }, [403], ['not_registered']));
    out.push(postJson('semantic', 'create a run that exists', operator, PATH.admin, { ...spec, id: 'run1' }, [409], ['conflict']));
    out.push(postJson('semantic', 'create a run as a miner', minerA, PATH.admin, spec, [403], ['forbidden']));
    out.push(postJson('semantic', 'create a run with an unknown preset', operator, PATH.admin, { ...spec, preset: 'gigantic' }, [400], ['bad_request'], 'admin-invalid-run-500'));
    out.push(postJson('semantic', 'create a run whose stages skip layers', operator, PATH.admin, { ...spec, stages: [[0, 1], [3, 3]] }, [400], ['bad_request'], 'admin-invalid-run-500'));
    out.push(postJson('semantic', 'create a run with a preset path', operator, PATH.admin, { ...spec, preset: '../../etc/passwd' }, [400], ['bad_request'], 'admin-invalid-run-500'));
    for (const p of ['/v1/runs/no-such-run', '/v1/runs/no-such-run/samples/r0-s0', '/v1/runs/run1/samples/no-such-sample', '/v1/runs/no-such-run/status']) {
      out.push({ group: 'semantic', what: `GET ${p}`, req: { method: 'GET', path: p, headers: sign(minerA, 'GET', p) }, status: [404], codes: ['not_found'] });
    }
    // Ids outside the one grammar (protocol.ts ID_PATTERN) are refused by the route's schema, not looked up.
    for (const run of ['-rf', '.hidden', '_x', 'a'.repeat(129)]) {
      const p = `/v1/runs/${run}/status`;
      out.push({ group: 'semantic', what: `GET ${p.slice(0, 60)}`, req: { method: 'GET', path: p, headers: sign(minerA, 'GET', p) }, status: [400, 414], codes: ['bad_request'] });
    }
    for (const id of ['.', '..', 'a/b', '-x', 'a\u0000b', 'a'.repeat(129)]) {
      out.push(postJson('semantic', `create a run with id ${JSON.stringify(id).slice(0, 30)}`, operator, PATH.admin, { ...spec, id }, [400], ['bad_request'], 'admin-invalid-run-500'));
    }
  }
  return out;
}

/** Bodies just over (and just under) the 1 MiB limit. */
function oversizeCases(rng: Prng): Case[] {
  const out: Case[] = [];
  const bodyOf = (bytes: number): Buffer => {
    const head = '{"role":"';
    const tail = '"}';
    return Buffer.from(head + 'a'.repeat(bytes - head.length - tail.length) + tail);
  };
  for (let i = 0; i < 40; i++) {
    const route = rng.pick(ROUTES);
    const body = bodyOf(BODY_LIMIT + rng.pick([1, 1, 2, 3, 17, 1000, 65_536, 400_000]));
    const signer = rng.pick([minerA, strangers[0], operator]);
    const headers: Record<string, string> = rng.chance(0.8) ? sign(signer, 'POST', PATH[route], body) : {};
    const ctype = rng.chance(0.8) ? JSON_TYPE : rng.pick(CONTENT_TYPES.filter((t) => t !== ''));
    headers['content-type'] = ctype;
    const framing = rng.chance(0.2) ? 'chunked' : 'length';
    out.push({ group: 'oversize', what: `POST ${route} with ${body.length} bytes (${ctype}, ${framing})`, req: { method: 'POST', path: PATH[route], headers, body, framing }, status: ctype === JSON_TYPE ? [413] : undefined, codes: ctype === JSON_TYPE ? ['payload_too_large'] : undefined, mayReset: true });
  }
  for (const bytes of [BODY_LIMIT, BODY_LIMIT - 1, BODY_LIMIT - 100]) {
    for (const route of ['register', 'complete', 'release', 'reject', 'applied'] as const) {
      const body = bodyOf(bytes);
      const refusal = accessRefusal(route, strangers[2]);
      out.push({ group: 'oversize', what: `POST ${route} with ${bytes} bytes (at the limit)`, req: { method: 'POST', path: PATH[route], headers: { ...sign(strangers[2], 'POST', PATH[route], body), 'content-type': JSON_TYPE }, body }, status: [refusal ? 403 : 400], codes: [refusal ?? 'bad_request'] });
    }
  }
  return out;
}

/** Whether fastify can decode the path (before the query): it answers FST_ERR_BAD_URL otherwise. */
function badPercent(path: string): boolean {
  try {
    decodeURIComponent(path.split('?')[0]);
    return false;
  } catch {
    return true;
  }
}

/**
 * Whether a path is another spelling than the canonical one (the front door refuses it with a
 * 400): an empty segment, a backslash, a segment that decodes to a dot segment, a separator or a
 * control character, or a route's literal part in other letter case.
 */
function notCanonical(path: string): boolean {
  const p = path.split('?')[0];
  if (p.includes('//') || p.includes('\\')) return true;
  const segments = p.split('/').slice(1);
  const decoded = segments.map((seg) => {
    try {
      return decodeURIComponent(seg);
    } catch {
      return seg;
    }
  });
  if (decoded.some((d) => d === '.' || d === '..' || /[/\\]/.test(d) || [...d].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f))) return true;
  // In the shapes fuzzed here the literals are v1, runs, samples and status.
  return segments.some((seg, i) => ['v1', 'runs', 'samples', 'status'].includes(seg.toLowerCase()) && seg !== seg.toLowerCase() && (i !== 2 && i !== 4));
}

/** A route parameter (decoded) over fastify's maxParamLength (100): it answers FST_ERR_MAX_PARAM_LENGTH. */
function longParam(path: string): boolean {
  const parts = path.split('?')[0].split('/');
  if (parts[1] !== 'v1' || parts[2] !== 'runs') return false;
  const long = (s: string | undefined): boolean => {
    try {
      return decodeURIComponent(s ?? '').length > 100;
    } catch {
      return false;
    }
  };
  return long(parts[3]) || (parts[4] === 'samples' && long(parts[5]));
}

const ODD_SEGMENTS: ((rng: Prng) => string)[] = [
  () => '%00',
  () => '..',
  () => '.',
  () => '%2e%2e',
  () => '%2E',
  () => '%2F',
  () => '%2f..%2f..%2fo.db',
  () => 'a%2Fb',
  () => '%20',
  () => '%09',
  () => 'run1%00',
  () => 'RUN1',
  () => 'run1%20',
  () => 'run1.',
  () => '-1',
  () => '0',
  () => '1e999',
  () => 'NaN',
  () => 'null',
  () => 'undefined',
  () => '__proto__',
  () => 'constructor',
  () => 'toString',
  () => '%27%3B%20drop%20table%20runs%3B--',
  () => "'",
  () => '%22',
  () => '*',
  () => '%2A',
  () => '%25',
  () => '%25zz',
  () => '~',
  () => '!$()@:;=,+',
  (rng) => encodeURIComponent(rng.pick(UNICODE)),
  () => encodeURIComponent(UNICODE.join('')),
  (rng) => 'a'.repeat(rng.int(90, 100)),
  (rng) => 'a'.repeat(rng.int(101, 6000)),
  () => '%41'.repeat(40),
  () => '%',
  () => '%z',
  () => '%zz',
  () => '%ff',
  () => '%c0%af',
  () => '%ed%a0%80',
  () => '%e2%82',
];

function oddGetCase(rng: Prng, excluded: Map<string, number>): Case {
  for (;;) {
    const odd = (): string => rng.pick(ODD_SEGMENTS)(rng);
    const shape = rng.int(0, 8);
    const path =
      shape <= 2
        ? `/v1/runs/${odd()}`
        : shape <= 4
          ? `/v1/runs/${rng.chance(0.5) ? 'run1' : odd()}/samples/${odd()}`
          : shape === 5
            ? `/v1/runs/${odd()}/samples/r0-s0`
            : shape === 6
              ? `/v1/runs/${odd()}${rng.pick(['/', '/samples', '/samples/', '/samples/x/y', '//', '/status/', '/status/x', '/STATUS'])}`
              : shape === 7
                ? `/v1/runs/${odd()}/status${queryNoise(rng)}`
                : `/v1/runs/${rng.pick(['', '/', '//'])}${queryNoise(rng)}`;
    const decode = (s: string | undefined): string | undefined => {
      try {
        return s === undefined ? undefined : decodeURIComponent(s);
      } catch {
        return undefined;
      }
    };
    const parts = path.split('?')[0].split('/');
    const exact = parts.length === 4 || (parts.length === 5 && parts[4] === 'status') || (parts.length === 6 && parts[4] === 'samples');
    const run = decode(parts[3]);
    const sample = decode(parts[5]);
    if (exact && run === 'run1' && (parts.length !== 6 || (sample !== undefined && existingSamples.has(sample)))) {
      excluded.set('GET', (excluded.get('GET') ?? 0) + 1);
      continue; // a real run or sample: 200
    }
    const signed = rng.chance(0.85);
    const headers: Record<string, string> = signed ? sign(rng.pick([minerA, strangers[0], operator, validator]), 'GET', path) : {};
    const c: Case = { group: 'odd-get', what: `GET ${path.slice(0, 120)}${signed ? '' : ' (unsigned)'}`, req: { method: 'GET', path, headers } };
    if (badPercent(path)) return { ...c, status: [400], codes: ['bad_request'], bug: 'bad-url-envelope' };
    if (longParam(path)) return { ...c, status: [400, 414], bug: 'long-param-envelope' };
    // The front door, before anything else: other spellings of a path are refused.
    if (notCanonical(path)) return { ...c, status: [400], codes: ['bad_request'] };
    // No route: a 404 whoever asks. A route: its access, then its parameters' grammar.
    // (A parameter may be empty at the end of the path: it is the route's, and no id.)
    if (!exact) return { ...c, status: [404], codes: ['not_found'] };
    if (!signed) return { ...c, status: [401], codes: ['unauthorized'] };
    if (!ID_PATTERN.test(run ?? '') || (parts.length === 6 && !ID_PATTERN.test(sample ?? ''))) return { ...c, status: [400], codes: ['bad_request'] };
    return { ...c, status: [404], codes: ['not_found'] };
  }
}

// -- authentication --

/** A concrete path for every route of the table, its parameters filled in (a real run, sample and miner). */
const PARAMS = { run: 'run1', sample: 'r0-s0', rounds: '0', hotkey: '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY' };
const routeTargets = (keep: (name: RouteName) => boolean): [string, string, string][] =>
  (Object.keys(API) as RouteName[]).filter(keep).map((name) => [API[name].method, routePath(API[name].path.replace('/*', '/fuzz/existing.bin'), PARAMS), API[name].path]);
/** Every route that takes a signature. */
const SIGNED_TARGETS = routeTargets((name) => API[name].access !== 'public' && API[name].access !== 'blob_url');

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const HEX = '0123456789abcdef';
const H = { hotkey: 'x-tah-hotkey', timestamp: 'x-tah-timestamp', nonce: 'x-tah-nonce', signature: 'x-tah-signature' } as const;

/** A request by a stranger whose authentication is wrong in one way; it must be a 401 whatever the body. */
function badAuthCase(rng: Prng): Case {
  const [method, path] = rng.pick(SIGNED_TARGETS);
  const body = method === 'GET' ? undefined : Buffer.from('{"fuzz":1}');
  const k = rng.pick(strangers);
  let headers: Record<string, string | string[]> = sign(k, method, path, body);
  const flip = (s: string, from: number): string => {
    const i = rng.int(from, s.length - 1);
    const c = s[i];
    const alphabet = /[0-9a-f]/.test(c) ? HEX : B58;
    let d = c;
    while (d === c) d = rng.pick([...alphabet]);
    return s.slice(0, i) + d + s.slice(i + 1);
  };
  const names = Object.values(H);
  const variant = rng.int(0, 21);
  let what: string;
  let codes: ErrorCode[] = ['unauthorized'];
  switch (variant) {
    case 0:
      headers = {};
      what = 'no signature headers';
      break;
    case 1: {
      const drop = rng.pick(names);
      delete headers[drop];
      what = `without ${drop}`;
      break;
    }
    case 2: {
      const keep = rng.pick(names);
      headers = { [keep]: headers[keep] };
      what = `only ${keep}`;
      break;
    }
    case 3: {
      const empty = rng.pick(names);
      headers[empty] = '';
      what = `empty ${empty}`;
      break;
    }
    case 4:
      headers[H.hotkey] = rng.pick([
        rng.string(48, B58),
        rng.string(rng.int(1, 39), B58),
        rng.string(rng.int(61, 300), B58),
        `0x${Buffer.from(k.publicKey).toString('hex')}`,
        encodeAddress(k.publicKey, 0),
        encodeAddress(k.publicKey, 2),
        'O0Il'.repeat(12),
        ' '.repeat(48),
        `${k.address}x`,
        `x${k.address}`,
        k.address.toLowerCase(),
      ]);
      what = `hotkey ${String(headers[H.hotkey]).slice(0, 20)}…`;
      break;
    case 5:
      headers[H.hotkey] = flip(k.address, 2);
      what = 'hotkey with a changed character';
      break;
    case 6:
      headers[H.hotkey] = rng.pick([minerA, minerB, operator, validator]).address;
      what = "someone else's hotkey on a stranger's signature";
      break;
    case 7:
      headers = sign(k, method, path, body, clock + rng.pick([60_001, 61_000, 3_600_000, 86_400_000 * 365, 1e12]));
      what = 'signed in the future';
      codes = ['stale_request'];
      break;
    case 8:
      headers = sign(k, method, path, body, rng.pick([clock - 60_001, clock - 86_400_000, 0, 1]));
      what = 'signed long ago';
      codes = ['stale_request'];
      break;
    case 9:
      headers = sign(k, method, path, body, clock + rng.pick([-1, 1]) * (60_000 + rng.int(1, 999)));
      what = 'stamped just outside the window';
      codes = ['stale_request'];
      break;
    case 10:
      headers[H.timestamp] = rng.pick(['-1', '1.5', '1e12', ' 1', '0123', 'NaN', '9'.repeat(16), '9'.repeat(400), '0x10', `${clock}.0`, `+${clock}`, `${clock}ms`, 'Infinity']);
      what = `timestamp ${String(headers[H.timestamp]).slice(0, 20)}`;
      break;
    case 11:
      headers[H.nonce] = rng.pick([rng.string(15, HEX), rng.string(65, HEX), rng.string(32, 'ghijklmnopqrstuvwxyz'), 'zz', '0x' + rng.string(32, HEX), rng.string(32, HEX) + ' x']);
      what = 'malformed nonce';
      break;
    case 12:
      headers[H.nonce] = rng.string(32, HEX);
      what = 'another nonce than the one signed';
      break;
    case 13: {
      const sig = String(headers[H.signature]);
      headers[H.signature] = rng.pick([sig.slice(2), sig.slice(0, -1), `${sig}0`, `0X${sig.slice(2)}`, 'xyz', Buffer.from(sig.slice(2), 'hex').toString('base64'), `0x${'g'.repeat(128)}`, '0x', sig.toUpperCase()]);
      what = 'malformed signature';
      break;
    }
    case 14:
      headers[H.signature] = flip(String(headers[H.signature]), 2);
      what = 'signature with a changed character';
      break;
    case 15:
      headers[H.signature] = `0x${rng.string(128, HEX)}`;
      what = 'random signature';
      break;
    case 16:
      headers = sign(k, method, path, Buffer.from('{"fuzz":2}'));
      what = 'signature over another body';
      break;
    case 17:
      headers = sign(k, method, `${path}?x=1`, body);
      what = 'signature over another path';
      break;
    case 18:
      headers = sign(k, method === 'GET' ? 'POST' : 'GET', path, body);
      what = 'signature over another method';
      break;
    case 19: {
      const twice = rng.pick(names);
      headers[twice] = [String(headers[twice]), String(headers[twice])];
      what = `${twice} sent twice`;
      break;
    }
    case 20:
      headers = { ...sign(minerA, method, path, body), [H.signature]: String(headers[H.signature]) };
      what = "miner A's headers with a stranger's signature";
      break;
    default:
      headers[H.hotkey] = String(headers[H.hotkey]).slice(0, 47);
      what = 'truncated hotkey';
  }
  if (body) headers['content-type'] = JSON_TYPE;
  return { group: 'bad-auth', what: `${method} ${path}: ${what}`, req: { method, path, headers, body }, status: [401], codes: variant >= 7 && variant <= 9 ? codes : ['unauthorized', 'stale_request'] };
}

/** A signed request refused for its body, then sent again byte for byte: the nonce is spent. */
function replayCase(rng: Prng): Case {
  const k = rng.pick(strangers);
  const route = rng.pick(['register', 'complete', 'release', 'reject', 'applied'] as const);
  const body = Buffer.from(toJson(mutatedBody(rng, route)));
  const parsed = parseLikeServer(body);
  // Only JSON reaches the signature check (and spends the nonce); the schema must refuse it.
  if (parsed.kind !== 'ok' || schemaAccepts(route, parsed.value) || body.length > BODY_LIMIT) return replayCase(rng);
  const req: Req = { method: 'POST', path: PATH[route], headers: { ...sign(k, 'POST', PATH[route], body), 'content-type': JSON_TYPE }, body };
  const again: Case = { group: 'replay', what: `POST ${route} replayed`, req, status: [401], codes: ['replayed_request'] };
  // Refused by the route's access or its schema, after the signature checked out: the nonce is spent either way.
  const refusal = accessRefusal(route, k);
  return { group: 'replay', what: `POST ${route} (to be replayed)`, req, status: [refusal ? 403 : 400], codes: [refusal ?? 'bad_request'], then: again };
}

// -- request targets: every other spelling of every route --

/** Spellings of `path` (a route's `template` filled in) a router might take for it but the front door refuses (400), each with its name. */
function respell(rng: Prng, path: string, template: string): [string, string] {
  const segs = path.split('/').slice(1);
  // Letter case is the route's in its literal segments only (a parameter in other case is another value).
  const literals = template
    .split('/')
    .slice(1)
    .map((seg, i) => (seg.startsWith(':') || seg === '*' ? -1 : i))
    .filter((i) => i >= 0);
  const at = rng.int(0, segs.length - 1);
  const with_ = (i: number, s: string): string => `/${segs.map((x, j) => (j === i ? s : x)).join('/')}`;
  const upper = (x: string): string => (x === x.toUpperCase() ? x.toLowerCase() : x.toUpperCase());
  const lit = literals.length > 0 ? rng.pick(literals) : 0;
  const variants: [string, string][] = [
    [`http://${rng.pick(['127.0.0.1', 'evil.example', 'localhost:1'])}${path}`, 'absolute form'],
    [`${rng.pick(['HTTP', 'https', 'ws'])}://x${path}`, 'absolute form, another scheme'],
    ['*', 'asterisk form'],
    [`${path}#${rng.pick(['', 'x', '/dashboard', '/../health'])}`, 'a fragment'],
    [`${with_(at, `${segs[at]}#`)}`, 'a fragment inside the path'],
    [`/${segs.slice(0, at).join('/')}${at > 0 ? '/' : ''}${rng.pick(['.', '%2e', '%2E'])}/${segs.slice(at).join('/')}`, 'a dot segment'],
    [`/${segs.slice(0, at + 1).join('/')}/${rng.pick(['..', '%2e%2e', '.%2E', '%2E.'])}/${segs.slice(at).join('/')}`, 'a dot-dot segment'],
    [`/${segs.slice(0, at).join('/')}${at > 0 ? '/' : ''}/${segs.slice(at).join('/')}`, 'a doubled slash'],
    [`/${path}`, 'a leading doubled slash'],
    [with_(0, upper(segs[0])), 'the prefix in other case'],
    ...(literals.length > 0 ? [[with_(lit, upper(segs[lit])), 'a segment in other case'] as [string, string]] : []),
    [with_(at, `${segs[at]}%2F`), 'an encoded slash'],
    [with_(at, `${segs[at]}%5C`), 'an encoded backslash'],
    [`${path}\\`, 'a trailing backslash'],
  ];
  const [target, what] = rng.pick(variants);
  return target === path ? [`${path}#`, 'a fragment'] : [target, what];
}

/** Every route of the table (API, blob URLs, metrics), respelled, signed by anyone or not at all: a 400 from the front door. */
function targetCase(rng: Prng): Case {
  // (The interface's routes are static files, whose names are any case: not respellings of a route.)
  const [method, path, template] = rng.pick(routeTargets((name) => name !== 'uiIndex' && name !== 'uiFiles'));
  const [target, what] = respell(rng, path, template);
  const body = method === 'POST' ? Buffer.from('{}') : undefined;
  const signer = rng.pick([operator, minerA, validator, strangers[0], null]);
  // Signed over the canonical path (a signature that would pass) or over the target as sent.
  const signed = target.startsWith('/') && rng.chance(0.5) ? target : path;
  const headers: Record<string, string> = signer ? sign(signer, method, signed, body) : {};
  if (body) headers['content-type'] = JSON_TYPE;
  return { group: 'target', what: `${method} ${target.slice(0, 100)} (${what}, ${signer ? nameOf(signer) : 'unsigned'})`, req: { method, path: target, headers, body }, status: [400], codes: ['bad_request'] };
}

// -- blob URLs --

function mangleBlob(rng: Prng): { method: string; path: string; body?: Buffer; what: string } {
  const which = rng.pick(['get', 'put', 'leasePut', 'expired'] as const);
  const url = blobs[which];
  const q = url.indexOf('?');
  let keyPath = url.slice(0, q);
  const params: [string, string][] = [...new URLSearchParams(url.slice(q + 1))];
  let method = which === 'get' || which === 'expired' ? 'GET' : 'PUT';
  let what: string;
  const param = (name: string): [string, string] | undefined => params.find(([n]) => n === name);
  const kind = rng.int(0, 14);
  switch (kind) {
    case 0: {
      const sig = param('sig')!;
      const i = rng.int(0, 63);
      sig[1] = sig[1].slice(0, i) + (sig[1][i] === 'a' ? 'b' : 'a') + sig[1].slice(i + 1);
      what = 'a changed signature';
      break;
    }
    case 1:
      param('sig')![1] = rng.pick([param('sig')![1].toUpperCase(), param('sig')![1].slice(0, rng.int(0, 63)), `${param('sig')![1]}a`, '', `%zz${param('sig')![1].slice(3)}`]);
      what = 'a malformed signature';
      break;
    case 2: {
      const i = rng.int(0, params.length - 1);
      what = `without ${params[i][0]}`;
      params.splice(i, 1);
      break;
    }
    case 3: {
      const p = rng.pick(params);
      params.push([p[0], rng.chance(0.5) ? p[1] : 'x']);
      what = `${p[0]} twice`;
      break;
    }
    case 4:
      params.splice(rng.int(0, params.length), 0, [rng.pick(['x', 'OP', 'Sig', 'op ', '', '__proto__', 'a'.repeat(300), 'range']), rng.pick(['1', '', 'get'])]);
      what = 'an unknown parameter';
      break;
    case 5: {
      const exp = param('exp')!;
      exp[1] = rng.pick([String(Number(exp[1]) + 1), String(Number(exp[1]) - 1), '0', '-1', '1e15', '9'.repeat(16), '', `${exp[1]}0`, ` ${exp[1]}`, `${exp[1]}.0`]);
      what = `exp=${exp[1]}`;
      break;
    }
    case 6: {
      const max = param('max');
      if (max) max[1] = rng.pick([String(Number(max[1]) + 1), '0', '-1', '', '1e3', '9'.repeat(16), '0x10']);
      else params.splice(2, 0, ['max', '1']);
      what = 'a changed max';
      break;
    }
    case 7:
      param('op')![1] = rng.pick([method === 'GET' ? 'put' : 'get', 'GET', 'PUT', 'delete', '', 'head']);
      what = `op=${param('op')![1]}`;
      break;
    case 8:
    case 9:
      keyPath = `/v1/blobs/${rng.pick([
        'runs/run1/samples/elsewhere.safetensors',
        'fuzz/existing.bin.x',
        'fuzz/../o.db',
        'fuzz/%2e%2e/o.db',
        '../o.db',
        '..%2fo.db',
        '..',
        '.',
        '',
        'fuzz//existing.bin',
        'fuzz/existing.bin/',
        '/fuzz/existing.bin',
        '~upload-0123.part',
        'a'.repeat(rng.int(200, 700)),
        encodeURIComponent('🦀'),
        'fuzz/existing%2Ebin',
        'fuzz%2Fexisting.bin',
        'a%00b',
        'a%20b',
        '%zz',
        'FUZZ/existing.bin',
      ])}`;
      what = 'another key';
      break;
    case 10:
      method = rng.pick(method === 'GET' ? ['PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'] : ['GET', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
      what = `${method} on a ${which} URL`;
      break;
    case 11:
      params.length = 0;
      what = 'no query';
      break;
    case 12:
      params.length = 0;
      params.push(...[...new URLSearchParams(url.slice(q + 1))].map(([n, v]): [string, string] => [n.toUpperCase(), v]));
      what = 'upper-case parameter names';
      break;
    default:
      return { method, path: `${keyPath}${rng.pick(['?', '??', '?&&&', '?op', '?=', '?sig=%zz', '?op=get&op=get', '#frag', '?op=get&exp=1&sig=' + '0'.repeat(64)])}`, what: 'a garbage query' };
  }
  const query = params.map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`).join('&');
  const path = `${keyPath}${rng.chance(0.5) && kind === 11 ? '' : '?'}${query}`;
  return { method, path, body: method === 'PUT' ? rng.bytes(rng.int(0, 8)) : undefined, what: `${which} URL with ${what}` };
}

function blobCase(rng: Prng, excluded: Map<string, number>): Case {
  for (;;) {
    const m = mangleBlob(rng);
    const grant = blobs.store.authorize(m.method, m.path);
    if (grant.ok && ['GET', 'HEAD', 'PUT'].includes(m.method)) {
      excluded.set('blob', (excluded.get('blob') ?? 0) + 1);
      continue; // still a valid URL
    }
    const c: Case = { group: 'blob', what: `${m.method} ${m.what}`, req: { method: m.method, path: m.path, headers: m.body ? { 'content-type': 'application/octet-stream' } : {}, body: m.body, framing: m.body ? 'length' : 'none' } };
    return badPercent(m.path) ? { ...c, bug: 'bad-url-envelope' } : c;
  }
}

const BAD_RANGES = ['bytes=5-2', 'bytes=64-', 'bytes=100-200', 'bytes=-0', 'bytes=', 'bytes=-', 'bytes=abc', 'bytes=0-1,2-3', 'items=0-1', 'bytes 0-1', 'bytes=-1-2', 'bytes=1e3-', 'bytes=0x10-', 'bytes=99999999999999999999-', 'bytes=--1', '='];

function blobRequestCases(rng: Prng): Case[] {
  const out: Case[] = [];
  for (const range of BAD_RANGES) {
    assert.equal(parseRange(range, 64), null, `${range} is unsatisfiable`);
    out.push({ group: 'blob', what: `GET with Range: ${range}`, req: { method: 'GET', path: blobs.get, headers: { range } }, status: [416], codes: ['bad_request'] });
  }
  // Over the limit of the lease's own URL (which its write gate takes): refused for the size, nothing stored.
  const max = leaseA.output.max_bytes;
  for (let i = 0; i < 12; i++) {
    const body = rng.bytes(max + rng.pick([1, 2, 100, 4096, 70_000]));
    const chunked = i % 3 === 0;
    out.push({ group: 'blob', what: `PUT ${body.length} bytes (${chunked ? 'chunked' : 'Content-Length'}) to a ${max}-byte URL`, req: { method: 'PUT', path: blobs.leasePut, headers: { 'content-type': 'application/octet-stream' }, body, framing: chunked ? 'chunked' : 'length' }, status: [413], codes: ['payload_too_large'], mayReset: true });
  }
  return out;
}

// -- routes and methods that do not exist, and what node's HTTP parser refuses --

const UNKNOWN_PATHS = [
  '/',
  '/v2/health',
  '/v1',
  '/v1/',
  '/v1/nope',
  '/v1/work',
  '/v1/admin',
  '/v1/admin/runs/x',
  '/v1/health/',
  '/v1/health/x',
  '//v1/health',
  '/v1//health',
  '/V1/HEALTH',
  '/v1/health%20',
  '/metrics/',
  '/favicon.ico',
  '/v1/participants',
  '/v1/participants/register/x',
  '/v1/leases/next/',
  '/v1/leases',
  '/v1/leases/reject/x',
  '/v1/rounds',
  '/v1/rounds/applied/',
  '/v1/participants/leave/x',
  '/v1/runs/run1/status/x',
  '/v1/./leases/next',
  '/v1/../v1/leases/next',
  '/v1/blobs',
  '/.env',
  '/v1/runs',
  '/admin/runs',
  '/*',
];
const KNOWN_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'HEAD', 'SEARCH', 'PROPFIND', 'LOCK', 'MKCOL', 'COPY', 'MOVE', 'PURGE', 'REPORT'];
/** Existing routes with a method they do not take. */
const WRONG_METHODS: [string, string][] = [
  ['GET', PATH.register],
  ['GET', PATH.lease],
  ['PUT', PATH.complete],
  ['DELETE', PATH.release],
  ['PATCH', PATH.admin],
  ['GET', PATH.admin],
  ['POST', '/v1/runs/run1'],
  ['DELETE', '/v1/runs/run1'],
  ['POST', '/v1/health'],
  ['PUT', '/metrics'],
  ['OPTIONS', PATH.register],
  ['POST', '/v1/ready'],
  ['GET', PATH.leave],
  ['GET', PATH.reject],
  ['PUT', PATH.applied],
  ['POST', STATUS_PATH],
  ['DELETE', STATUS_PATH],
];

function unknownRouteCase(rng: Prng): Case {
  const [method, path] = rng.chance(0.5) ? [rng.pick(KNOWN_METHODS), rng.pick(UNKNOWN_PATHS)] : rng.pick(WRONG_METHODS);
  const body = method !== 'GET' && method !== 'HEAD' && rng.chance(0.5) ? Buffer.from('{"role":"miner"}') : undefined;
  const signed = rng.chance(0.5);
  const headers: Record<string, string> = signed ? sign(rng.pick([minerA, operator, strangers[0]]), method, path, body) : {};
  if (body) headers['content-type'] = JSON_TYPE;
  return { group: 'unknown-route', what: `${method} ${path}${signed ? '' : ' (unsigned)'}`, req: { method, path, headers, body } };
}

function parserCases(rng: Prng): Case[] {
  const lines = (...l: string[]): Buffer => Buffer.from(l.join('\r\n'), 'latin1');
  const raws: [string, Buffer][] = [
    ['an unknown method', lines('FOO /v1/health HTTP/1.1', 'Host: x', 'Connection: close', '', '')],
    ['a lower-case method', lines('get /v1/health HTTP/1.1', 'Host: x', 'Connection: close', '', '')],
    ['garbage', Buffer.from('GARBAGE\r\n\r\n')],
    ['random bytes', rng.bytes(200)],
    ['a space in the path', lines('GET /v1/runs/a b HTTP/1.1', 'Host: x', 'Connection: close', '', '')],
    ['a control character in the path', lines('GET /v1/runs/a\u0001b HTTP/1.1', 'Host: x', 'Connection: close', '', '')],
    ['latin-1 bytes in the path', lines('GET /v1/runs/\u00e9\u00ff HTTP/1.1', 'Host: x', 'Connection: close', '', '')],
    ['HTTP/9.9', lines('GET /v1/health HTTP/9.9', 'Host: x', 'Connection: close', '', '')],
    ['a header without a colon', lines('GET /v1/health HTTP/1.1', 'Host: x', 'Bad Header', 'Connection: close', '', '')],
    ['a space in a header name', lines('GET /v1/health HTTP/1.1', 'Host: x', 'Bad Header: 1', 'Connection: close', '', '')],
    ['Content-Length and chunked', lines('POST /v1/participants/register HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: 2', 'Transfer-Encoding: chunked', 'Connection: close', '', '2', '{}', '0', '', '')],
    ['Content-Length -1', lines('POST /v1/participants/register HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: -1', 'Connection: close', '', '{}')],
    ['Content-Length abc', lines('POST /v1/participants/register HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: abc', 'Connection: close', '', '{}')],
    ['two Content-Lengths', lines('POST /v1/participants/register HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Content-Length: 2', 'Content-Length: 3', 'Connection: close', '', '{}')],
    ['a bad chunk size', lines('POST /v1/participants/register HTTP/1.1', 'Host: x', 'Content-Type: application/json', 'Transfer-Encoding: chunked', 'Connection: close', '', 'zz', '{}', '0', '', '')],
    ['a header line folded', lines('GET /v1/health HTTP/1.1', 'Host: x', 'X-A: 1', ' folded', 'Connection: close', '', '')],
    ['a NUL in a header value', lines('GET /v1/health HTTP/1.1', 'Host: x', 'X-A: a\u0000b', 'Connection: close', '', '')],
    ['CONNECT', lines('CONNECT 127.0.0.1:1 HTTP/1.1', 'Host: 127.0.0.1:1', '', '')],
  ];
  const out: Case[] = [];
  for (let i = 0; i < 2; i++) for (const [what, raw] of raws) out.push({ group: 'parser', what, raw, bug: 'parser-error-envelope' });
  for (let i = 0; i < 4; i++) {
    out.push({ group: 'parser', what: 'a header over the 16 KiB limit', req: { method: 'GET', path: '/v1/runs/run1', headers: { ...sign(minerA, 'GET', '/v1/runs/run1'), 'x-big': 'a'.repeat(rng.int(17_000, 70_000)) } }, bug: 'parser-error-envelope' });
    const method = rng.pick(['BREW', 'FOO', 'XGET']);
    out.push({ group: 'parser', what: `an unknown method: ${method}`, req: { method, path: '/v1/health', headers: {} }, bug: 'parser-error-envelope' });
  }
  return out;
}

function buildCases(rng: Prng, excluded: Map<string, number>): Case[] {
  const cases: Case[] = [];
  for (let i = 0; i < 2000; i++) cases.push(signedBodyCase(rng, ROUTES[i % ROUTES.length], excluded));
  cases.push(...semanticCases());
  cases.push(...oversizeCases(rng));
  for (let i = 0; i < 260; i++) cases.push(oddGetCase(rng, excluded));
  for (let i = 0; i < 420; i++) cases.push(badAuthCase(rng));
  for (let i = 0; i < 30; i++) cases.push(replayCase(rng));
  for (let i = 0; i < 260; i++) cases.push(blobCase(rng, excluded));
  cases.push(...blobRequestCases(rng));
  for (let i = 0; i < 160; i++) cases.push(unknownRouteCase(rng));
  for (let i = 0; i < 400; i++) cases.push(targetCase(rng));
  cases.push(...parserCases(rng));
  // Shuffle, so every kind of request is in flight alongside every other.
  for (let i = cases.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [cases[i], cases[j]] = [cases[j], cases[i]];
  }
  return cases;
}

// ---- judging ----

interface Verdict {
  c: Case;
  status: number | 'reset';
  /** Why the answer is not a clear 4xx (undefined: it is). */
  problem?: string;
  messageLength: number;
  message?: string;
}

/** The body fastify writes itself (bad URLs, long parameters, parser errors), outside the envelope. */
const isFastifyDefault = (json: unknown): boolean => typeof json === 'object' && json !== null && typeof (json as { error?: unknown }).error === 'string' && typeof (json as { statusCode?: unknown }).statusCode === 'number';

function judge(c: Case, o: HostileOutcome): Verdict {
  if (o.kind === 'reset') return { c, status: 'reset', problem: c.mayReset && !o.error.startsWith('not sent') ? undefined : `no answer (${o.error})`, messageLength: 0 };
  const r = o.response;
  const v: Verdict = { c, status: r.status, messageLength: 0 };
  const text = r.body.subarray(0, 160).toString('utf8');
  if (r.status < 400 || r.status > 499) return { ...v, problem: `status ${r.status}: ${text}` };
  if (c.status && !c.status.includes(r.status)) return { ...v, problem: `status ${r.status}, expected ${c.status.join(' or ')}: ${text}` };
  if (c.req?.method === 'HEAD') return r.body.length === 0 ? v : { ...v, problem: 'a HEAD answer with a body' };
  const env = ErrorBodySchema.safeParse(r.json);
  if (!env.success) return { ...v, problem: `not the error envelope: ${text}` };
  const { code, message } = env.data.error;
  if (message.trim() === '') return { ...v, problem: `empty message (code ${code})` };
  if (c.codes && !c.codes.includes(code)) return { ...v, problem: `code ${code}, expected ${c.codes.join(' or ')}: ${message.slice(0, 120)}` };
  return { ...v, messageLength: message.length, message };
}

/** Whether a failed verdict is the known bug its case is marked with (and not something else). */
function isKnownBug(v: Verdict, o: HostileOutcome): boolean {
  if (!v.c.bug || !v.problem) return false;
  if (o.kind === 'reset') return v.c.bug === 'parser-error-envelope' && v.c.what === 'CONNECT';
  const r = o.response;
  switch (v.c.bug) {
    case 'admin-invalid-run-500':
      return r.status === 500 && (r.json as { error?: { code?: string } } | undefined)?.error?.code === 'internal';
    case 'bad-url-envelope':
      return r.status === 400 && (r.json as { code?: string } | undefined)?.code === 'FST_ERR_BAD_URL';
    case 'long-param-envelope':
      return r.status === 414 && (r.json as { code?: string } | undefined)?.code === 'FST_ERR_MAX_PARAM_LENGTH';
    case 'parser-error-envelope':
      return r.status >= 400 && r.status < 500 && isFastifyDefault(r.json);
  }
}

// ---- the run ----

interface FuzzResult {
  requests: number;
  verdicts: Verdict[];
  bugHits: Map<Bug, Verdict[]>;
  problems: Verdict[];
  ms: number;
}
let result: FuzzResult | undefined;
let excludedCounts = new Map<string, number>();

/** What each class of request once got wrong: every one of them must now answer in the envelope. */
const CLASSES: Record<Bug, string> = {
  'admin-invalid-run-500': 'an invalid run spec answered 500 instead of 400',
  'bad-url-envelope': "bad percent-encoding got fastify's own 400 body",
  'long-param-envelope': "an over-long route parameter got fastify's own 414 body",
  'parser-error-envelope': "requests node's HTTP parser refuses got fastify's default body, and CONNECT no answer",
};

async function fuzz(): Promise<FuzzResult> {
  const rng = new Prng(SEED);
  const excluded = new Map<string, number>();
  const cases = buildCases(rng, excluded);
  excludedCounts = excluded;
  const verdicts: Verdict[] = [];
  const bugHits = new Map<Bug, Verdict[]>();
  const problems: Verdict[] = [];
  const send = (c: Case): Promise<HostileOutcome> => (c.raw ? sendRaw(port, c.raw) : sendHostile({ port, ...c.req! }));
  const started = performance.now();
  await runPool(
    cases.map((first) => async () => {
      for (let c: Case | undefined = first; c; c = c.then) {
        const o = await send(c);
        const v = judge(c, o);
        verdicts.push(v);
        if (isKnownBug(v, o)) bugHits.set(c.bug!, [...(bugHits.get(c.bug!) ?? []), v]);
        else if (v.problem) problems.push(v);
      }
    }),
    CONCURRENCY,
  );
  return { requests: verdicts.length, verdicts, bugHits, problems, ms: performance.now() - started };
}

const describe = (vs: Verdict[], n = Number(process.env.TAH_FUZZ_SHOW ?? 12)): string =>
  vs
    .slice(0, n)
    .map((v) => `  [${v.c.group}] ${v.c.what}: ${v.problem}`)
    .join('\n') + (vs.length > n ? `\n  … and ${vs.length - n} more` : '');

test(`at least ${MIN_REQUESTS} malformed, oversized or type-confused requests each get a 4xx with a clear error`, async (t) => {
  t.diagnostic(`seed ${SEED} (TAH_FUZZ_SEED=${SEED} repeats this run)`);
  result = await fuzz();
  const { verdicts, bugHits, problems, ms, requests } = result;
  const byStatus = new Map<string, number>();
  const byGroup = new Map<string, Map<string, number>>();
  for (const v of verdicts) {
    const s = String(v.status);
    byStatus.set(s, (byStatus.get(s) ?? 0) + 1);
    const g = byGroup.get(v.c.group) ?? new Map<string, number>();
    g.set(s, (g.get(s) ?? 0) + 1);
    byGroup.set(v.c.group, g);
  }
  const fmt = (m: Map<string, number>): string => [...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}: ${n}`).join(', ');
  t.diagnostic(`${requests} requests in ${(ms / 1000).toFixed(1)} s, ${CONCURRENCY} in flight`);
  t.diagnostic(`by status: ${fmt(byStatus)}`);
  for (const [g, m] of [...byGroup].sort(([a], [b]) => a.localeCompare(b))) t.diagnostic(`  ${g}: ${fmt(m)}`);
  t.diagnostic(`left out as valid by accident (they would succeed): ${fmt(excludedCounts) || 'none'}`);
  const longest = verdicts.reduce((a, b) => (b.messageLength > a.messageLength ? b : a));
  t.diagnostic(`longest error message: ${longest.messageLength} characters, for ${longest.c.what.slice(0, 100)}: ${longest.message?.slice(0, 100)}…`);
  for (const [bug, vs] of bugHits) t.diagnostic(`class ${bug}: ${vs.length} failing requests (see its test)`);

  assert.ok(requests >= MIN_REQUESTS, `only ${requests} requests`);
  assert.equal(problems.length, 0, `${problems.length} requests did not get a clear 4xx:\n${describe(problems)}`);
});

test('after the fuzzing the server still answers /v1/health and signed requests', async () => {
  const health = await fetch(`${orch.url}/v1/health`);
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as { status: string }).status, 'ok');
  const run = await new OrchestratorClient({ baseUrl: orch.url, keypair: strangers[0], now, attempts: 1 }).run('run1');
  assert.equal(run.id, 'run1');
  assert.deepEqual(run.miners_per_stage, [1, 1]);
});

test('the fuzzing changed no table but the nonce record: runs, participants, samples, work_items, events, kv, blobs and the rest are byte-for-byte the same', async (t) => {
  const after = await snapshotDatabase(orch.database);
  t.diagnostic(`compared: ${[...tablesBefore].map(([name, rows]) => `${name} (${name === 'sqlite_master' ? 'schema' : `${(JSON.parse(rows) as unknown[]).length} rows`})`).join(', ')}`);
  for (const table of ['runs', 'participants', 'samples', 'work_items', 'events', 'kv', 'rounds', 'stage_rounds', 'snapshots', 'blobs']) assert.ok(tablesBefore.has(table), `table ${table} was snapshotted`);
  assert.deepEqual([...after.keys()].sort(), [...tablesBefore.keys()].sort(), 'the same tables');
  // Every signature the server accepted spent its nonce (that is the replay protection); nothing else may change.
  for (const [table, rows] of tablesBefore) if (table !== 'request_nonces') assert.equal(after.get(table), rows, `table ${table} changed`);
  const nonces = JSON.parse(after.get('request_nonces')!) as unknown[];
  const before = JSON.parse(tablesBefore.get('request_nonces')!) as unknown[];
  assert.deepEqual(nonces.slice(0, before.length), before, 'the nonces recorded before are kept');
  t.diagnostic(`${nonces.length - before.length} nonces recorded by the fuzzing`);
});

test('the fuzzing left the blob directory as it was (no blob written, no upload left behind, no file handle open)', async () => {
  const blobDir = join(dir, 'blobs');
  // An upload cut off by a reset is cleaned up as the server sees its connection close: poll a
  // little (bounded) for that, then compare.
  const settled = async (): Promise<boolean> => (await handlesInto(blobDir)).length === 0 && isDeepStrictEqual(await snapshotDir(blobDir), blobDirBefore);
  for (const deadline = Date.now() + 5000; !(await settled()) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(await snapshotDir(blobDir), blobDirBefore);
  assert.deepEqual(await handlesInto(blobDir), [], 'file handles into the blob store left open');
});

const MESSAGE_MAX = 1000;

test(`error messages stay short (at most ${MESSAGE_MAX} characters) however long the input`, () => {
  const long = (result?.verdicts ?? []).filter((v) => v.messageLength > MESSAGE_MAX);
  assert.equal(long.length, 0, `${long.length} messages longer than ${MESSAGE_MAX} characters, e.g.\n${long.slice(0, 5).map((v) => `  [${v.c.group}] ${v.c.what.slice(0, 80)}: ${v.messageLength} characters: ${v.message?.slice(0, 100)}…`).join('\n')}`);
});

for (const bug of Object.keys(CLASSES) as Bug[]) {
  test(`request class ${bug} (${CLASSES[bug]}): each gets a clear 4xx`, () => {
    const hits = result?.bugHits.get(bug) ?? [];
    assert.equal(hits.length, 0, `${hits.length} requests:\n${describe(hits, 5)}`);
  });
}

let rateLimitMessage = '';
const forgedStatuses: number[] = [];

test('the rate limit answers 429 with the error JSON', async () => {
  const rdir = await mkdtemp(join(tmpdir(), 'tah-fuzz-rl-'));
  const limited = await startOrchestrator({ db: `sqlite:${join(rdir, 'o.db')}`, storage: `local:${join(rdir, 'blobs')}`, operator: operator.address, now, reapIntervalMs: 3_600_000, rateLimitPerMinute: 5 });
  try {
    const p = Number(new URL(limited.url).port);
    const lease = async (k: Keypair): Promise<HostileOutcome> => {
      const body = Buffer.from('{}');
      return sendHostile({ port: p, method: 'POST', path: PATH.lease, headers: { ...sign(k, 'POST', PATH.lease, body), 'content-type': JSON_TYPE }, body });
    };
    const statuses: number[] = [];
    let last: HostileOutcome | undefined;
    for (let i = 0; i < 7; i++) {
      last = await lease(strangers[0]);
      assert.equal(last.kind, 'response');
      statuses.push(last.kind === 'response' ? last.response.status : 0);
    }
    assert.deepEqual(statuses, [403, 403, 403, 403, 403, 429, 429], 'five a minute per hotkey, then 429');
    assert.ok(last?.kind === 'response');
    const env = ErrorBodySchema.parse(last.response.json);
    assert.equal(env.error.code, 'rate_limited');
    assert.ok(env.error.message.length > 0);
    assert.ok(Number(last.response.headers['retry-after']) > 0, 'a retry-after header');
    rateLimitMessage = env.error.message;
    // The limit is per hotkey: another key still gets through.
    const other = await lease(strangers[1]);
    assert.ok(other.kind === 'response' && other.response.status === 403);
    // Unsigned requests to the unsigned routes are limited per address.
    const health: number[] = [];
    for (let i = 0; i < 6; i++) health.push((await fetch(`${limited.url}/v1/health`)).status);
    assert.deepEqual(health, [200, 200, 200, 200, 200, 429]);
    // Requests refused by the signature check, from one address, past the limit.
    for (let i = 0; i < 7; i++) {
      const h = sign(strangers[2], 'POST', PATH.lease);
      h[H.signature] = `0x${'ab'.repeat(64)}`;
      const o = await sendHostile({ port: p, method: 'POST', path: PATH.lease, headers: h });
      forgedStatuses.push(o.kind === 'response' ? o.response.status : 0);
    }
  } finally {
    await limited.close();
    await rm(rdir, { recursive: true, force: true });
  }
});

test('the 429 says what the limit is and when to retry', () => {
  assert.match(rateLimitMessage, /at most 5 a minute/);
});

test('requests refused by the signature check count against the per-address limit', () => {
  assert.ok(forgedStatuses.length === 7 && forgedStatuses.includes(429), `statuses: ${forgedStatuses.join(' ')}`);
});
