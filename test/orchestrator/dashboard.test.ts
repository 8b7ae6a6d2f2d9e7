// The public dashboard: GET /v1/dashboard and /v1/runs/:run/dashboard answer anyone (a browser
// sends no signature), and the orchestrator serves the built renderer read-only at / with a CSP.
// Real orchestrator over HTTP on loopback; the "built renderer" is a folder of real files.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { OrchestratorClient } from '../../orchestrator-client/client.ts';
import { DashboardSchema, type Hardware } from '../../orchestrator-client/protocol.ts';
import { keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { type Orchestrator, startOrchestrator } from '../../orchestrator/service.ts';
import { rawRequest } from '../helpers/raw-http.ts';

let dir = '';
let orch: Orchestrator;
let port = 0;
const operator = async () => keypairFromSeed(new Uint8Array(32).fill(9));
const hardware: Hardware = { device: 'cpu', cores: 2, memory_bytes: 8 * 2 ** 30, tokens_per_s: 1000 };
const INDEX = '<!doctype html><title>dashboard</title><script type="module" src="/assets/app.js"></script>';

before(async () => {
  await ready();
  dir = await mkdtemp(join(tmpdir(), 'tah-dashboard-'));
  const ui = join(dir, 'ui');
  await mkdir(join(ui, 'assets'), { recursive: true });
  await writeFile(join(ui, 'index.html'), INDEX);
  await writeFile(join(ui, 'assets', 'app.js'), 'export {};\n');
  await writeFile(join(dir, 'secret.txt'), 'not for the web');
  const op = await operator();
  orch = await startOrchestrator({ db: `sqlite:${join(dir, 'o.db')}`, storage: `local:${join(dir, 'blobs')}`, operator: op.address, reapIntervalMs: 3_600_000, uiDir: ui });
  port = Number(new URL(orch.url).port);
  const client = new OrchestratorClient({ baseUrl: orch.url, keypair: op, attempts: 1 });
  await client.createRun({ id: 'older', preset: 'tiny', stages: [[0, 3]], samples_per_round: 2 });
  await client.createRun({ id: 'pub', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 8 });
});
after(async () => {
  await orch.close();
  await rm(dir, { recursive: true, force: true });
});

test('anyone may read a run at a glance, without a signature; the stages, their layers and miners are the run\'s', async () => {
  const miner = new OrchestratorClient({ baseUrl: orch.url, keypair: keypairFromSeed(new Uint8Array(32).fill(3)), attempts: 1 });
  const assigned = await miner.register({ role: 'miner', hardware });

  const res = await fetch(`${orch.url}/v1/runs/pub/dashboard`);
  assert.equal(res.status, 200);
  const d = DashboardSchema.parse(await res.json());
  assert.equal(d.run_id, 'pub');
  assert.equal(d.preset, 'tiny');
  assert.equal(d.status, 'active');
  assert.deepEqual(
    d.stages.map((s) => s.layers),
    [
      [0, 1],
      [2, 3],
    ],
  );
  assert.equal(d.layers, 4);
  assert.deepEqual(
    d.stages.map((s) => s.miners),
    [0, 1].map((s) => (s === assigned.stage ? 1 : 0)),
  );
  const run = await miner.run('pub');
  assert.deepEqual(
    d.stages.map((s) => s.miners),
    run.miners_per_stage,
  );
  assert.ok(d.stages.every((s) => s.params > 0 && s.tokens_per_s === 0 && s.merges === 0));
  assert.deepEqual(d.verdicts, { passed: 0, failed: 0, pending: 0 });
  assert.deepEqual(d.top, []);
  assert.equal(d.rounds_done, 0);

  // Without a run: the newest active one.
  const newest = DashboardSchema.parse(await (await fetch(`${orch.url}/v1/dashboard`)).json());
  assert.equal(newest.run_id, 'pub');
});

test('an unknown run is a JSON 404; other API calls still need a signature', async () => {
  const res = await fetch(`${orch.url}/v1/runs/nope/dashboard`);
  assert.equal(res.status, 404);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'not_found');
  const status = await fetch(`${orch.url}/v1/runs/pub/status`);
  assert.equal(status.status, 401);
  // Access is a route's: a path that is no route is a plain 404 (the API is public knowledge).
  const unknown = await fetch(`${orch.url}/v1/no-such-endpoint`);
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'not_found');
});

test('the built renderer is served read-only at / with a CSP; routes fall back to index.html; nothing outside is reachable', async () => {
  for (const path of ['/', '/runs/pub', '/runs/demo.v2', '/network']) {
    const r = await rawRequest({ port, method: 'GET', path });
    assert.equal(r.status, 200, path);
    assert.equal(r.body.toString(), INDEX);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.match(String(r.headers['content-security-policy']), /connect-src 'self'/);
    assert.match(String(r.headers['content-security-policy']), /script-src 'self';/);
  }
  const js = await rawRequest({ port, method: 'GET', path: '/assets/app.js' });
  assert.equal(js.status, 200);
  assert.match(String(js.headers['content-type']), /^text\/javascript/);
  for (const path of ['/assets/missing.js', '/assets/gone', '/missing.png']) assert.equal((await rawRequest({ port, method: 'GET', path })).status, 404, path);
  for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/%00', '/%E0%A4%A']) {
    const r = await rawRequest({ port, method: 'GET', path });
    assert.ok([400, 403, 404].includes(r.status), `${path}: ${r.status}`);
    assert.ok(!r.body.toString().includes('not for the web'), path);
  }
  const post = await rawRequest({ port, method: 'POST', path: '/', headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') });
  assert.equal(post.status, 404, 'the page is read-only');
});
