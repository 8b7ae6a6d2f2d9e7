// Kill the orchestrator (SIGKILL) in the middle of a run and start it again on the same
// database: registrations, leases, pathways and losses are all still there, and clients that
// were talking to it carry on by themselves.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { OrchestratorClient } from '../../orchestrator-client/client.ts';
import type { Hardware, Lease, Uploaded } from '../../orchestrator-client/protocol.ts';
import { keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { uploadBlob } from '../../orchestrator-client/transfer.ts';
import { encodeBlob } from '../../worker/miner/blobs.ts';
import { startOrchestratorChild } from '../helpers/orchestrator-child.ts';

const hardware: Hardware = { device: 'cpu', cores: 2, memory_bytes: 2 ** 33, tokens_per_s: 100 };
const children: ChildProcess[] = [];
let dir = '';
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The next task for `c`, which must be a sample's work item. */
async function work(c: OrchestratorClient): Promise<Lease> {
  const task = (await c.lease()).lease;
  assert.equal(task?.kind, 'work', `expected a work item, got ${JSON.stringify(task).slice(0, 300)}`);
  return task as Lease;
}

/** Uploads a well-formed blob of the tiny preset (seq_len 64, d_model 64, one row) to the lease's output; returns what the completion reports. */
async function upload(lease: Lease): Promise<Uploaded> {
  const kind = lease.output.kind;
  assert.ok(kind === 'activation' || kind === 'gradient', `lease ${lease.id} has no output`);
  const blob = encodeBlob(kind, { rows: 1, seqLen: 64, dModel: 64, length: 0 }, { [kind]: new Float32Array(64 * 64) });
  return uploadBlob(lease.output, blob);
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}


test('SIGKILL mid-run, restart on the same database: nothing is lost and clients reconnect', async () => {
  await ready();
  dir = await mkdtemp(join(tmpdir(), 'tah-restart-'));
  const port = await freePort();
  const operator = keypairFromSeed(new Uint8Array(32).fill(1));
  const args = ['--port', String(port), '--db', `sqlite:${join(dir, 'o.db')}`, '--storage', `local:${join(dir, 'blobs')}`, '--operator', operator.address];
  const first = await startOrchestratorChild(args, children);
  const client = (seed: number) => new OrchestratorClient({ baseUrl: first.url, keypair: keypairFromSeed(new Uint8Array(32).fill(seed)), attempts: 30, baseDelayMs: 50, maxDelayMs: 500 });
  const [op, a, b] = [client(1), client(2), client(3)];
  await op.createRun({ id: 'run', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 4 });
  assert.equal((await a.register({ role: 'miner', hardware })).stage, 0);
  assert.equal((await b.register({ role: 'miner', hardware })).stage, 1);

  // Sample 1 goes all the way to the last stage and reports its loss; sample 2 is left leased.
  const f0 = await work(a);
  await a.complete({ lease_id: f0.id, output: await upload(f0) });
  const f1 = await work(b);
  await b.complete({ lease_id: f1.id, output: await upload(f1), loss: 4.5 });
  const held = await work(a);
  assert.ok(held.direction === 'backward' && held.sample_id === f0.sample_id);

  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  // A request sent while the orchestrator is down waits and retries by itself.
  const pending = a.heartbeat();
  const second = await startOrchestratorChild(args, children);
  assert.equal(second.url, first.url);
  const beat = await pending;
  assert.equal(beat.stage, 0, 'the registration survived');
  assert.equal(beat.leases_held, 1, 'the lease survived');

  assert.deepEqual(await a.complete({ lease_id: held.id }), { status: 'accepted' }, 'a lease taken before the crash completes after it');
  const path = await a.pathway('run', f0.sample_id);
  assert.equal(path.loss, 4.5);
  assert.equal(path.done, true);
  assert.deepEqual(
    path.stages.map((s) => [s.forward_miner, s.backward_miner]),
    [
      [a.hotkey, a.hotkey],
      [b.hotkey, b.hotkey],
    ],
  );
  const run = await op.run('run');
  assert.deepEqual(run.miners_per_stage, [1, 1]);
  assert.equal(run.status, 'active');
  assert.equal(run.rounds_done, 0);
  // The round survived too: the rest of round 0's samples are still there to lease.
  const next = await work(a);
  assert.equal(next.round, 0);
  assert.equal(next.direction, 'forward');
  assert.notEqual(next.sample_id, f0.sample_id);
  second.child.kill('SIGTERM');
  await new Promise((r) => second.child.once('exit', r));
});
