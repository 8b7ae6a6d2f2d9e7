// The version endpoints at their boundary: who may call them and what they refuse. The real
// orchestrator over HTTP on loopback with real signatures, SQLite and the local blob store.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { z } from 'zod';
import { OrchestratorClient, OrchestratorError } from '../../orchestrator-client/client.ts';
import { keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { type Orchestrator, startOrchestrator } from '../../orchestrator/service.ts';

let dir = '';
let orch: Orchestrator;
let operator: OrchestratorClient;
let stranger: OrchestratorClient;

before(async () => {
  await ready();
  dir = await mkdtemp(join(tmpdir(), 'tah-versions-'));
  const op = keypairFromSeed(new Uint8Array(32).fill(1));
  orch = await startOrchestrator({ db: `sqlite:${join(dir, 'o.db')}`, storage: `local:${join(dir, 'blobs')}`, operator: op.address, reapIntervalMs: 3_600_000 });
  operator = new OrchestratorClient({ baseUrl: orch.url, keypair: op, attempts: 1 });
  stranger = new OrchestratorClient({ baseUrl: orch.url, keypair: keypairFromSeed(new Uint8Array(32).fill(2)), attempts: 1 });
  await operator.createRun({ id: 'run1', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 2 });
});

after(async () => {
  await orch?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const refused = (status: number, code: string, message?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof OrchestratorError, String(e));
  assert.equal(e.status, status, e.message);
  assert.equal(e.code, code);
  if (message) assert.match(e.message, message);
  return true;
};

test('a new run has no versions; anyone signed may list them', async () => {
  assert.deepEqual(await stranger.versions('run1'), { run_id: 'run1', rounds_done: 0, versions: [] });
  await assert.rejects(stranger.versions('nope'), refused(404, 'not_found'));
});

test('only the operator may fetch a stored version or roll back', async () => {
  await assert.rejects(stranger.storedVersion('run1', 0), refused(403, 'forbidden', /operator/));
  await assert.rejects(stranger.rollback('run1', { to: 0 }), refused(403, 'forbidden', /operator/));
});

test('a version that is not stored, a version past the run, or a malformed request is refused, and nothing changes', async () => {
  await assert.rejects(operator.storedVersion('run1', 3), refused(404, 'not_found', /no stored state of stage 0, 1 after 3 rounds/));
  await assert.rejects(operator.rollback('run1', { to: 3 }), refused(404, 'not_found'));
  await assert.rejects(operator.request('GET', '/admin/runs/run1/versions/abc', z.unknown()), refused(400, 'bad_request', /a version is a number of rounds/));
  for (const body of [{ to: -1 }, { to: 1.5 }, { to: '2' }, {}, { to: 0, extra: 1 }, { to: 0, reason: '' }]) {
    await assert.rejects(operator.request('POST', '/admin/runs/run1/rollback', z.unknown(), body), refused(400, 'bad_request'));
  }
  const events = await orch.database.db.selectFrom('events').select('kind').where('kind', '=', 'rollback').execute();
  assert.deepEqual(events, []);
});

test('rolling a fresh run back to its initial state (version 0) is allowed: round 0 is queued again', async () => {
  assert.deepEqual(await operator.rollback('run1', { to: 0, reason: 'a fresh start' }), { run_id: 'run1', rounds: 0, discarded: 0 });
  const rounds = await orch.database.db.selectFrom('rounds').select(['round', 'status']).where('run_id', '=', 'run1').execute();
  assert.deepEqual(rounds, [{ round: 0, status: 'compute' }]);
  const items = await orch.database.db.selectFrom('work_items').select('id').where('run_id', '=', 'run1').execute();
  assert.equal(items.length, 2, 'the round\'s two samples are queued once');
});
