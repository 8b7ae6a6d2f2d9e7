// Who may join a run (open, allowlist, or a subnet's metagraph) and what a full run answers.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { OrchestratorClient, OrchestratorError } from '../../orchestrator-client/client.ts';
import type { Hardware } from '../../orchestrator-client/protocol.ts';
import { keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { type Orchestrator, startOrchestrator } from '../../orchestrator/service.ts';

const hardware = (tokens_per_s: number): Hardware => ({ device: 'cpu', cores: 2, memory_bytes: 2 ** 33, tokens_per_s });
let dir = '';
let orch: Orchestrator;
const registered = new Set<string>();
const client = (seed: number) => new OrchestratorClient({ baseUrl: orch.url, keypair: keypairFromSeed(new Uint8Array(32).fill(seed)), attempts: 1 });

before(async () => {
  await ready();
  dir = await mkdtemp(join(tmpdir(), 'tah-admission-'));
  orch = await startOrchestrator({
    db: 'sqlite::memory:',
    storage: `local:${join(dir, 'blobs')}`,
    operator: keypairFromSeed(new Uint8Array(32).fill(1)).address,
    // A stand-in for the chain: the seam a Bittensor-backed implementation fills.
    metagraph: { isRegistered: async (netuid, hotkey) => netuid === 9 && registered.has(hotkey) },
  });
});
after(async () => {
  await orch.close();
  await rm(dir, { recursive: true, force: true });
});

const refused = (code: string, pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof OrchestratorError);
  assert.equal(e.code, code);
  assert.match(e.message, pattern);
  return true;
};

test('an allowlist run admits only its hotkeys', async () => {
  const allowed = client(2);
  await client(1).createRun({ id: 'closed', preset: 'tiny', stages: [[0, 3]], samples_per_round: 1, admission: { mode: 'allowlist', hotkeys: [allowed.hotkey] } });
  assert.equal((await allowed.register({ role: 'miner', run_id: 'closed', hardware: hardware(10) })).stage, 0);
  await assert.rejects(client(3).register({ role: 'miner', run_id: 'closed', hardware: hardware(10) }), refused('forbidden', /not on run closed's allowlist/));
});

test('a metagraph run admits the hotkeys registered on its subnet', async () => {
  await client(1).createRun({ id: 'subnet', preset: 'tiny', stages: [[0, 3]], samples_per_round: 1, admission: { mode: 'metagraph', netuid: 9 } });
  const m = client(4);
  await assert.rejects(m.register({ role: 'miner', run_id: 'subnet', hardware: hardware(10) }), refused('forbidden', /not registered on subnet 9/));
  registered.add(m.hotkey);
  assert.equal((await m.register({ role: 'miner', run_id: 'subnet', hardware: hardware(10) })).run_id, 'subnet');
});

test('stages fill by throughput up to their limit; a full run says when to retry; moves respect limits', async () => {
  await client(1).createRun({ id: 'small', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 1, max_miners_per_stage: 2 });
  const stages = [];
  for (const [seed, tps] of [[10, 500], [11, 100], [12, 100], [13, 100]]) stages.push((await client(seed).register({ role: 'miner', run_id: 'small', hardware: hardware(tps) })).stage);
  assert.deepEqual(stages, [0, 1, 1, 0], 'the slower stage gets the next miner until it is full');
  await assert.rejects(client(14).register({ role: 'miner', run_id: 'small', hardware: hardware(1) }), (e: unknown) => {
    assert.ok(e instanceof OrchestratorError && e.code === 'run_full' && e.status === 503);
    assert.equal(e.retryAfterMs, 60_000);
    return true;
  });
  await assert.rejects(client(10).move(1), refused('run_full', /stage 1 is full/));
  await assert.rejects(client(10).move(7), refused('bad_request', /has no stage 7/));
  const run = await client(10).run('small');
  assert.deepEqual(run.miners_per_stage, [2, 2]);
});

test('health, readiness and Prometheus metrics answer without a signature', async () => {
  const health = (await (await fetch(`${orch.url}/v1/health`)).json()) as { status: string };
  assert.equal(health.status, 'ok');
  const readyRes = await fetch(`${orch.url}/v1/ready`);
  assert.equal(readyRes.status, 200, 'the database is reachable');
  const metrics = await (await fetch(`${orch.url}/metrics`)).text();
  assert.match(metrics, /tah_http_requests_total\{route="\/v1\/participants\/register",status="200"\} \d+/);
  assert.match(metrics, /tah_http_request_seconds_bucket/);
});
