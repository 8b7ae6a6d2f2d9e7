import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../../worker/engine/graph.ts';
import { CompiledGraph, type DeviceWorld, chooseDevice, parseDevice, probeDevices } from '../../../worker/engine/session.ts';

const world = (platform: NodeJS.Platform, arch: string, ...providers: ('cuda' | 'coreml' | 'webgpu')[]): DeviceWorld => ({
  platform,
  arch,
  providers: new Set(['cpu', ...providers]),
  nvidiaGpu: false,
});
const withNvidia = (w: DeviceWorld): DeviceWorld => ({ ...w, nvidiaGpu: true });

test('device choice: auto takes CUDA where installed, else CPU with a reason', () => {
  assert.equal(chooseDevice('auto', world('linux', 'x64', 'cuda', 'webgpu')).provider, 'cuda');
  const cpu = chooseDevice('auto', world('linux', 'x64', 'webgpu'));
  assert.equal(cpu.provider, 'cpu');
  assert.match(cpu.note!, /using CPU \(found webgpu/);
  assert.match(chooseDevice('auto', world('linux', 'arm64')).note!, /no CUDA provider installed/);
  assert.equal(chooseDevice('coreml', world('darwin', 'arm64', 'coreml')).provider, 'coreml');
});

test('device choice: an explicit device this machine lacks is an error that says why', () => {
  assert.throws(() => chooseDevice('cuda', world('darwin', 'arm64', 'coreml')), /device cuda is not available: onnxruntime-node offers CUDA on Linux x64 only, this is darwin arm64/);
  assert.throws(() => chooseDevice('cuda', world('linux', 'x64')), /its provider library is not installed \(run npx tah setup cuda; it needs CUDA 12 and cuDNN 9\)/);
  assert.throws(() => chooseDevice('cuda', withNvidia(world('linux', 'x64'))), /not installed \(run npx tah setup cuda/);
  assert.throws(() => chooseDevice('coreml', world('linux', 'x64')), /CoreML on macOS only/);
  assert.throws(() => parseDevice('tpu'), /unknown device 'tpu' \(choose one of auto, cpu, cuda, coreml, webgpu\)/);
});

test('device choice: auto on an NVIDIA GPU without the CUDA provider uses CPU and says to run tah setup cuda', () => {
  const cpu = chooseDevice('auto', withNvidia(world('linux', 'x64', 'webgpu')));
  assert.equal(cpu.provider, 'cpu');
  assert.equal(cpu.note, "device auto: using CPU (NVIDIA GPU found, but not ONNX Runtime's CUDA provider: run npx tah setup cuda)");
  // With the provider installed the GPU is used; without a GPU nothing suggests the setup.
  assert.equal(chooseDevice('auto', withNvidia(world('linux', 'x64', 'cuda'))).provider, 'cuda');
  assert.doesNotMatch(chooseDevice('auto', world('linux', 'x64')).note!, /setup cuda/);
  // Where onnxruntime-node has no CUDA provider at all, an NVIDIA GPU changes nothing.
  assert.doesNotMatch(chooseDevice('auto', withNvidia(world('linux', 'arm64'))).note!, /setup cuda/);
});

test('this machine always offers CPU', () => {
  assert.ok(probeDevices().providers.has('cpu'));
});

test('a session writes into caller-owned output buffers and checks feed sizes', async () => {
  const g = new Graph('float32');
  const a = g.input('a', 'float32', [2, 3]);
  const b = g.input('b', 'float32', [3, 2]);
  g.output('c', g.matmul(a, b));
  const s = await CompiledGraph.create(g, { threads: 1 });
  const c = new Float32Array(4);
  await s.run({ a: Float32Array.from([1, 2, 3, 4, 5, 6]), b: Float32Array.from([1, 0, 0, 1, 1, 1]) }, { c });
  assert.deepEqual([...c], [4, 5, 10, 11]);
  await assert.rejects(s.run({ a: new Float32Array(5), b: new Float32Array(6) }), /shape mismatch for a: expected \[2, 3\] \(6 values\), got 5 values/);
  await s.dispose();
});
