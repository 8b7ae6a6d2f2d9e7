import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { binaryDir, cudaPlatform, hasNvidiaDriver, onnxruntimeNodeDir } from '../../../worker/engine/cuda.ts';

test("NVIDIA's driver is recognised by the files it creates", () => {
  assert.equal(hasNvidiaDriver(() => false), false);
  for (const file of ['/proc/driver/nvidia/version', '/dev/nvidiactl', '/usr/lib/wsl/lib/libcuda.so.1']) assert.equal(hasNvidiaDriver((p) => p === file), true, file);
});

test('CUDA is offered on Linux x64 only', () => {
  assert.equal(cudaPlatform('linux', 'x64'), true);
  for (const [platform, arch] of [['linux', 'arm64'], ['darwin', 'arm64'], ['win32', 'x64']]) assert.equal(cudaPlatform(platform, arch), false, `${platform} ${arch}`);
});

test("the binary folder is the installed package's, where the CPU runtime ships", () => {
  const dir = binaryDir(onnxruntimeNodeDir(), process.platform, process.arch);
  assert.ok(existsSync(join(dir, 'onnxruntime_binding.node')), dir);
});
