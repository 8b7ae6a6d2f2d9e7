// The hardware check: the minimums as a table, and the probe on this very machine.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type HardwareFacts, type RunCommand, checkHardware, judgeHardware, probeHardware } from '../../../electron/core/hardware.ts';

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
