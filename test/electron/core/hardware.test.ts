// The hardware check: the minimums as a table, and the probe on this very machine.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DEFAULT_MODEL, type HardwareFacts, type ModelStages, type RunCommand, checkHardware, judgeHardware, modelStages, probeHardware } from '../../../electron/core/hardware.ts';
import { loadPreset } from '../../../worker/model/config.ts';
import { usableMemory } from '../../../worker/model/machines.ts';
import { Planner } from '../../../worker/model/plan.ts';

const root = await mkdtemp(join(tmpdir(), 'tah-hardware-'));
after(() => rm(root, { recursive: true, force: true }));

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const mac = (memoryBytes: number): HardwareFacts => ({
  platform: 'darwin',
  arch: 'arm64',
  cpuModel: 'Apple M1',
  cores: 8,
  memoryBytes,
  freeDiskBytes: 200 * GiB,
  gpus: [{ name: 'Apple M1', memoryBytes: null, vendor: 'apple' }],
});
const linux = (memoryBytes: number, gpus: HardwareFacts['gpus'] = []): HardwareFacts => ({
  platform: 'linux',
  arch: 'x64',
  cpuModel: 'AMD Ryzen 9 7950X',
  cores: 32,
  memoryBytes,
  freeDiskBytes: 500 * GiB,
  gpus,
});
const nvidia = (name: string, mib: number | null) => ({ name, memoryBytes: mib === null ? null : mib * MiB, vendor: 'nvidia' });

const table: { what: string; facts: HardwareFacts; verdict: 'ok' | 'cpu-only' | 'insufficient'; reason?: RegExp }[] = [
  { what: '8 GB Mac (exactly 8 GiB)', facts: mac(8 * GiB), verdict: 'ok', reason: /^8 GB of memory: enough\.$/ },
  { what: '4 GB Mac', facts: mac(4 * GiB), verdict: 'insufficient', reason: /^Only 4 GB of memory; at least 8 GB are needed\.$/ },
  { what: '16 GB Mac', facts: mac(16 * GiB), verdict: 'ok', reason: /Apple Silicon \(Apple M1\)/ },
  { what: 'Linux 32 GB + 24 GB NVIDIA', facts: linux(32 * GiB, [nvidia('NVIDIA GeForce RTX 4090', 24564)]), verdict: 'ok', reason: /^The NVIDIA GeForce RTX 4090 with 24 GB: the GPU does the training\.$/ },
  { what: 'Linux 32 GB, a 16 GB card (reports 16376 MiB)', facts: linux(32 * GiB, [nvidia('NVIDIA RTX A4000', 16376)]), verdict: 'ok' },
  { what: 'Linux 32 GB, no GPU', facts: linux(32 * GiB), verdict: 'cpu-only', reason: /^No NVIDIA GPU with 16 GB: training runs on the CPU, slower\.$/ },
  { what: 'Linux 8 GB + 8 GB GPU', facts: linux(8 * GiB, [nvidia('NVIDIA GeForce RTX 3070', 8192)]), verdict: 'cpu-only', reason: /RTX 3070 has 8 GB of graphics memory; 16 GB are needed/ },
  { what: 'Linux 8 GB laptop reporting 7.6 GiB (firmware share)', facts: linux(7.6 * GiB), verdict: 'cpu-only', reason: /^7\.6 GB of memory: enough to train on the CPU\.$/ },
  { what: 'Linux 6 GB', facts: linux(6 * GiB), verdict: 'insufficient', reason: /^Only 6 GB of memory/ },
  { what: 'Linux 12 GB + 24 GB GPU: GPU needs 16 GB of memory', facts: linux(12 * GiB, [nvidia('NVIDIA GeForce RTX 3090', 24576)]), verdict: 'cpu-only', reason: /also needs 16 GB of memory/ },
  { what: 'Linux 32 GB, GPU of unknown size', facts: linux(32 * GiB, [nvidia('NVIDIA Tesla', null)]), verdict: 'cpu-only', reason: /Could not tell how much memory the NVIDIA Tesla has/ },
  { what: 'the best of two NVIDIA GPUs counts', facts: linux(64 * GiB, [nvidia('small', 8192), nvidia('big', 49140)]), verdict: 'ok', reason: /^The big with 48 GB/ },
  { what: 'an AMD GPU does not count', facts: linux(32 * GiB, [{ name: 'Radeon', memoryBytes: 24 * GiB, vendor: 'amd' }]), verdict: 'cpu-only', reason: /No NVIDIA GPU/ },
  { what: 'Intel Mac', facts: { ...mac(16 * GiB), arch: 'x64', cpuModel: 'Intel Core i7', gpus: [] }, verdict: 'cpu-only', reason: /Intel processor: training runs on the CPU, slower/ },
  { what: 'low disk', facts: { ...linux(32 * GiB, [nvidia('NVIDIA GeForce RTX 4090', 24564)]), freeDiskBytes: 4.25 * GiB }, verdict: 'insufficient', reason: /^Only 4\.2 GB free disk space; 10 GB are needed\.$/ },
  { what: 'just under 10 GB of disk is shown rounded down', facts: { ...mac(8 * GiB), freeDiskBytes: 10 * GiB - 1 }, verdict: 'insufficient', reason: /^Only 9\.9 GB free disk space/ },
  { what: 'unknown disk space does not fail the check', facts: { ...mac(8 * GiB), freeDiskBytes: null }, verdict: 'ok', reason: /Could not tell how much disk space is free/ },
];

for (const row of table) {
  test(`judgeHardware: ${row.what} → ${row.verdict}`, () => {
    const r = judgeHardware(row.facts);
    assert.equal(r.verdict, row.verdict, r.reasons.join(' | '));
    if (row.reason) assert.ok(r.reasons.some((s) => row.reason!.test(s)), `${row.reason} in ${JSON.stringify(r.reasons)}`);
    for (const s of r.reasons) assert.match(s, /^[A-Z0-9].*\.$/, 'reasons are sentences');
    const { verdict: _v, reasons: _r, ...facts } = r;
    assert.deepEqual(facts, row.facts, 'the facts are passed through');
  });
}

test('probeHardware on this machine gives sane facts', async () => {
  const f = await probeHardware({ dataDir: join(root, 'not', 'made', 'yet') });
  assert.equal(f.platform, os.platform());
  assert.equal(f.arch, os.arch());
  assert.ok(Number.isInteger(f.cores) && f.cores >= 1, `cores ${f.cores}`);
  assert.ok(f.memoryBytes > 0);
  assert.equal(typeof f.freeDiskBytes, 'number', 'measured on the nearest folder that exists');
  assert.ok(f.freeDiskBytes! >= 0);
  assert.ok(f.cpuModel.length > 0);
  for (const g of f.gpus) assert.ok(g.name.length > 0 && ['nvidia', 'apple'].includes(g.vendor), JSON.stringify(g));
});

test('probeHardware reads nvidia-smi through `run`, and a failing one means no GPU', async () => {
  if (os.platform() === 'darwin') return; // Macs never ask nvidia-smi
  const calls: string[][] = [];
  const smi: RunCommand = async (cmd, args) => {
    calls.push([cmd, ...args]);
    return 'NVIDIA GeForce RTX 4090, 24564\nNVIDIA H100 80GB HBM3, 81559\nWeird, Name, [N/A]\n\n';
  };
  const f = await probeHardware({ dataDir: root, run: smi });
  assert.deepEqual(calls, [['nvidia-smi', '--query-gpu=name,memory.total', '--format=csv,noheader,nounits']]);
  assert.deepEqual(f.gpus, [
    { name: 'NVIDIA GeForce RTX 4090', memoryBytes: 24564 * MiB, vendor: 'nvidia' },
    { name: 'NVIDIA H100 80GB HBM3', memoryBytes: 81559 * MiB, vendor: 'nvidia' },
    { name: 'Weird, Name', memoryBytes: null, vendor: 'nvidia' },
  ]);

  const broken = await probeHardware({
    dataDir: root,
    run: async () => {
      throw Object.assign(new Error('spawn nvidia-smi ENOENT'), { code: 'ENOENT' });
    },
  });
  assert.deepEqual(broken.gpus, []);
  assert.equal(typeof broken.freeDiskBytes, 'number');
});

test('checkHardware judges what it probes', async () => {
  const r = await checkHardware({ dataDir: root, run: async () => '' });
  assert.ok(['ok', 'cpu-only', 'insufficient'].includes(r.verdict));
  assert.ok(r.reasons.length >= 3);
  if (os.platform() !== 'darwin') assert.deepEqual(r.gpus, []);
});

/** A model of stages needing these many GiB each (on the CPU and Apple Silicon; with CUDA: host, GPU). */
const stagesOf = (...gib: [number, number?, number?][]): ModelStages => ({
  name: 'test',
  stages: gib.map(([train, host = train, gpu = train], i) => ({ layers: [i, i], train_bytes: train * GiB, cuda_host_bytes: host * GiB, cuda_device_bytes: gpu * GiB })),
});

test('judgeHardware with a model: which of its stages this computer holds, from the same machine table', () => {
  // 8 GB Mac: training may use 70 % of it, 5.6 GB.
  const all = judgeHardware(mac(8 * GiB), stagesOf([2], [5.5]));
  assert.equal(all.verdict, 'ok');
  assert.ok(all.reasons.includes('Every stage of the test model (2 stages) fits: the largest needs 5.5 GB, and training may use 5.6 GB of the memory here.'), all.reasons.join(' | '));
  const some = judgeHardware(mac(8 * GiB), stagesOf([2], [7], [4]));
  assert.equal(some.verdict, 'ok', 'a stage it holds is enough to take part');
  assert.ok(some.reasons.includes('Of the test model (3 stages), stages 0 and 2 fit here; stage 1 (layers 1–1) needs 7.0 GB, and training may use 5.6 GB of the memory here.'), some.reasons.join(' | '));
  const none = judgeHardware(mac(8 * GiB), stagesOf([9], [7]));
  assert.equal(none.verdict, 'insufficient');
  assert.ok(none.reasons.includes('No stage of the test model (2 stages) fits: the smallest, layers 1–1, needs 7.0 GB, and training may use 5.6 GB of the memory here.'), none.reasons.join(' | '));
  // A PC with a 24 GB card trains on it: the GPU's memory holds the step, main memory the state.
  const pc = linux(32 * GiB, [nvidia('NVIDIA GeForce RTX 4090', 24564)]);
  assert.equal(judgeHardware(pc, stagesOf([40, 20, 22])).verdict, 'ok');
  const gpuShort = judgeHardware(pc, stagesOf([40, 20, 30]));
  assert.equal(gpuShort.verdict, 'insufficient');
  assert.ok(gpuShort.reasons.some((r) => /needs 30\.0 GB, and training may use 23\.0 GB of the GPU's memory here\.$/.test(r)), gpuShort.reasons.join(' | '));
  // Without a usable GPU it is judged on its CPU's memory (75 %).
  assert.ok(judgeHardware(linux(16 * GiB), stagesOf([12.5])).reasons.some((r) => /training may use 12\.0 GB of the memory here/.test(r)));
  for (const r of [...all.reasons, ...some.reasons, ...none.reasons, ...gpuShort.reasons]) assert.match(r, /^[A-Z0-9].*\.$/, 'reasons are sentences');
});

test('modelStages: the default model is the demo swarm\'s, split as tah plan splits it; a run\'s own split is kept', async () => {
  const d = await modelStages();
  assert.equal(d.name, DEFAULT_MODEL.preset);
  const planner = new Planner(loadPreset('demo'));
  assert.deepEqual(d.stages.map((s) => s.layers), planner.split(3));
  assert.deepEqual(d.stages.map((s) => s.train_bytes), planner.plan(planner.split(3)).map((s) => s.train_bytes));
  const iota = await modelStages({ preset: 'iota-1.5b', stages: [[0, 3], [4, 11], [12, 15]] });
  assert.deepEqual(iota.stages.map((s) => s.layers), [[0, 3], [4, 11], [12, 15]]);
  // IOTA's 3 stages do not fit an 8 GB Mac (docs/ENGINE.md): the check says so.
  assert.ok(Math.min(...iota.stages.map((s) => s.train_bytes)) > usableMemory({ device: 'coreml', memoryBytes: 8 * GiB }));
  const r = judgeHardware(mac(8 * GiB), iota);
  assert.equal(r.verdict, 'insufficient');
  assert.ok(r.reasons.some((x) => /^No stage of the iota-1\.5b model \(3 stages\) fits: the smallest, layers \d+–\d+, needs \d+\.\d GB, and training may use 5\.6 GB of the memory here\.$/.test(x)), r.reasons.join(' | '));
});

test('checkHardware says whether this computer holds a stage of the default model', async () => {
  const r = await checkHardware({ dataDir: root, run: async () => '' });
  assert.ok(r.reasons.some((x) => /\bthe demo model \(3 stages\)/.test(x)), r.reasons.join(' | '));
});
