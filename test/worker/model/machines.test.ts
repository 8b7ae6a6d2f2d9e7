// The published minimum machines and the share of each a training stage may use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APPLE_UNIFIED_SHARE, CPU_RAM_SHARE, CUDA_CONTEXT_BYTES, GiB, MINIMUM_MACHINES, checkFit, fittingMachines, usableGpuMemory, usableMemory } from '../../../worker/model/machines.ts';

const need = (train: number, host: number, device: number) => ({ train_bytes: train * GiB, cuda_host_bytes: host * GiB, cuda_device_bytes: device * GiB });
const machine = (id: string) => MINIMUM_MACHINES.find((m) => m.id === id)!.memory;

test('what a stage may use of each minimum machine', () => {
  assert.deepEqual(
    MINIMUM_MACHINES.map((m) => m.label),
    ['8 GB Apple Silicon', '16 GB VRAM NVIDIA GPU', '16 GB RAM CPU'],
  );
  assert.equal(usableMemory(machine('apple-8gb')), Math.floor(8 * GiB * APPLE_UNIFIED_SHARE));
  assert.ok(Math.abs(usableMemory(machine('apple-8gb')) / GiB - 5.6) < 1e-6);
  assert.equal(usableMemory(machine('cpu-16gb')), 16 * GiB * CPU_RAM_SHARE);
  assert.equal(usableGpuMemory(machine('cuda-16gb')), 16 * GiB - CUDA_CONTEXT_BYTES);
  assert.equal(usableGpuMemory(machine('cpu-16gb')), null);
});

test('a stage fits where its need is within what may be used; CUDA needs both memories', () => {
  assert.deepEqual(fittingMachines(need(5.5, 4, 3)), ['apple-8gb', 'cuda-16gb', 'cpu-16gb']);
  assert.deepEqual(fittingMachines(need(5.7, 4, 3)), ['cuda-16gb', 'cpu-16gb']);
  assert.deepEqual(fittingMachines(need(12.1, 11, 14)), ['cuda-16gb'], 'the GPU holds the step, main memory the state');
  assert.deepEqual(fittingMachines(need(13, 12.5, 8)), [], 'the state alone is more than 12 GB of RAM');
  assert.deepEqual(fittingMachines(need(10, 5, 15.5)), ['cpu-16gb'], 'the step is more than 15 GB of GPU memory');
  const gpuShort = checkFit(need(10, 5, 15.5), machine('cuda-16gb'));
  assert.deepEqual([gpuShort.ok, gpuShort.where, gpuShort.needBytes], [false, 'GPU memory', 15.5 * GiB]);
  // A CUDA machine whose GPU memory is unknown is judged as a CPU machine.
  assert.deepEqual(checkFit(need(10, 5, 3), { device: 'cuda', memoryBytes: 12 * GiB }), { ok: false, where: 'memory', needBytes: 10 * GiB, usableBytes: 9 * GiB });
});
