// The orchestrator gives a miner only a stage its reported memory can hold, and refuses, naming
// the smallest stage's need and the miner's memory, a miner that holds none; over the real HTTP
// server. The sizes come from the same memory model (worker/model/memory.ts), so the test holds
// when the model is calibrated.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { OrchestratorClient, OrchestratorError } from '../../orchestrator-client/client.ts';
import type { Hardware } from '../../orchestrator-client/protocol.ts';
import { keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { runStageNeeds } from '../../orchestrator/assignment.ts';
import { type Orchestrator, startOrchestrator } from '../../orchestrator/service.ts';
import { CPU_RAM_SHARE, CUDA_CONTEXT_BYTES, GiB, gb } from '../../worker/model/machines.ts';

let dir = '';
let orch: Orchestrator;
const client = (seed: number) => new OrchestratorClient({ baseUrl: orch.url, keypair: keypairFromSeed(new Uint8Array(32).fill(seed)), attempts: 1 });
const cpu = (memory_bytes: number): Hardware => ({ device: 'cpu', cores: 8, memory_bytes, tokens_per_s: 100 });
/** A CPU machine on which training may use exactly `usable` bytes. */
const cpuFor = (usable: number): Hardware => cpu(Math.ceil(usable / CPU_RAM_SHARE) + 4);

// IOTA's 1.5B layout in IOTA's split: every stage needs about 10–12 GB.
const IOTA = { id: 'iota', preset: 'iota-1.5b', stages: [[0, 3], [4, 11], [12, 15]] as [number, number][], samples_per_round: 4, rows_per_sample: 1 };
const needs = runStageNeeds(IOTA);
const trainBytes = needs.map((n) => n.train_bytes);

before(async () => {
  await ready();
  dir = await mkdtemp(join(tmpdir(), 'tah-stage-memory-'));
  orch = await startOrchestrator({ db: 'sqlite::memory:', storage: `local:${join(dir, 'blobs')}`, operator: keypairFromSeed(new Uint8Array(32).fill(1)).address });
  await client(1).createRun(IOTA);
  await client(1).createRun({ id: 'tiny', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 1 });
});
after(async () => {
  await orch.close();
  await rm(dir, { recursive: true, force: true });
});

const forbidden = (pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof OrchestratorError, String(e));
  assert.equal(e.code, 'forbidden');
  assert.equal(e.status, 403);
  assert.match(e.message, pattern);
  return true;
};

test('a miner that can hold no stage is refused with the smallest stage\'s need and its own memory', async () => {
  const smallest = Math.min(...trainBytes);
  const stage = trainBytes.indexOf(smallest);
  const m = client(2);
  await assert.rejects(
    m.register({ role: 'miner', run_id: 'iota', hardware: cpu(8 * GiB) }),
    forbidden(new RegExp(`no stage of run iota fits this miner: the smallest, stage ${stage} \\(layers \\d+-\\d+\\), needs ${gb(smallest)} to train, and this miner reports 8\\.0 GB of memory \\(cpu\\), of which training may use 6\\.0 GB`)),
  );
  // Just too little for it: still refused; just enough: admitted.
  await assert.rejects(m.register({ role: 'miner', run_id: 'iota', hardware: cpuFor(smallest - 2 ** 20) }), forbidden(/no stage of run iota fits/));
  assert.equal((await m.register({ role: 'miner', run_id: 'iota', hardware: cpuFor(smallest) })).stage, stage);
});

test('a miner is given only the stages it holds, even when another stage needs miners more', async () => {
  const order = [...trainBytes.keys()].sort((a, b) => trainBytes[a] - trainBytes[b]);
  const [small, , large] = order;
  // Holds every stage but the largest: the empty stages it can hold come first.
  const seats: number[] = [];
  for (const seed of [3, 4, 5]) seats.push((await client(seed).register({ role: 'miner', run_id: 'iota', hardware: cpuFor(trainBytes[order[1]]) })).stage!);
  assert.ok(!seats.includes(large), `seats ${seats} avoid stage ${large} (${gb(trainBytes[large])})`);
  // Asking for the stage it cannot hold is refused with that stage's need.
  await assert.rejects(client(3).move(large), forbidden(new RegExp(`stage ${large} of run iota \\(layers \\d+-\\d+\\) needs ${gb(trainBytes[large])} to train`)));
  assert.equal((await client(3).move(small)).stage, small, 'a stage it holds is fine');
  // A machine that holds everything still goes where the pipeline is thinnest: the empty stage.
  assert.equal((await client(6).register({ role: 'miner', run_id: 'iota', hardware: cpuFor(Math.max(...trainBytes)) })).stage, large);
});

test('a restarted miner that now reports less memory loses the stage it can no longer hold', async () => {
  const big = Math.max(...trainBytes);
  const large = trainBytes.indexOf(big);
  const m = client(7);
  await m.register({ role: 'miner', run_id: 'iota', hardware: cpuFor(big) });
  assert.equal((await m.move(large)).stage, large);
  const again = await m.register({ role: 'miner', run_id: 'iota', hardware: cpuFor(Math.min(...trainBytes)) });
  assert.notEqual(again.stage, large);
});

test('CUDA: the GPU must hold the step and main memory the optimizer state', async () => {
  const gpu = (memoryGiB: number, vramGiB: number): Hardware => ({ device: 'cuda', cores: 8, memory_bytes: memoryGiB * GiB, accelerator_memory_bytes: vramGiB * GiB, tokens_per_s: 100 });
  // 24 GB of VRAM, but 8 GB of RAM cannot hold 16 bytes a parameter of any stage.
  await assert.rejects(client(8).register({ role: 'miner', run_id: 'iota', hardware: gpu(8, 24) }), forbidden(/reports 8\.0 GB of memory \(cuda\), of which training may use 6\.0 GB/));
  // 32 GB of RAM, a 4 GB card: the GPU memory is what is short.
  await assert.rejects(client(8).register({ role: 'miner', run_id: 'iota', hardware: gpu(32, 4) }), forbidden(new RegExp(`reports 4\\.0 GB of GPU memory \\(cuda\\), of which training may use ${gb(4 * GiB - CUDA_CONTEXT_BYTES)}`)));
  assert.notEqual((await client(8).register({ role: 'miner', run_id: 'iota', hardware: gpu(16, 16) })).stage, null, 'the published 16 GB minimum holds a stage of the 3-stage split');
});

test('small models take small machines: a 1 GB miner trains tiny', async () => {
  assert.equal((await client(9).register({ role: 'miner', run_id: 'tiny', hardware: cpu(GiB) })).stage, 0);
  await assert.rejects(client(10).register({ role: 'miner', run_id: 'tiny', hardware: cpu(2 ** 20) }), forbidden(/no stage of run tiny fits this miner/));
  // Validators hold no stage of their own: no memory check.
  assert.equal((await client(11).register({ role: 'validator', run_id: 'tiny', hardware: cpu(2 ** 20) })).role, 'validator');
});
