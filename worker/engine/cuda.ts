// Where ONNX Runtime's CUDA provider lives and whether this machine could use it. onnxruntime-node
// bundles its CPU (and WebGPU) provider; the CUDA provider libraries are too large for the npm
// registry and come from NuGet through the package's own installer, which `npm ci` does not run
// (package.json's allowScripts) so that installing needs nothing but the registry.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The command that installs the CUDA provider (cli/commands/setup.ts). */
export const SETUP_CUDA = 'npx tah setup cuda';

/** The library whose presence means the CUDA provider is installed. */
export const CUDA_PROVIDER_LIB = 'libonnxruntime_providers_cuda.so';

/** onnxruntime-node offers a CUDA provider for this platform only. */
export const cudaPlatform = (platform: string, arch: string): boolean => platform === 'linux' && arch === 'x64';

export const cudaPlatformProblem = (platform: string, arch: string): string => `onnxruntime-node offers CUDA on Linux x64 only, this is ${platform} ${arch}`;

/** onnxruntime-node's package folder (its main module is dist/index.js). */
export function onnxruntimeNodeDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..');
}

/** The folder of the package's native binaries for a platform: the CPU runtime, and the CUDA provider once installed. */
export const binaryDir = (packageDir: string, platform: string, arch: string): string => join(packageDir, 'bin', 'napi-v6', platform, arch);

/**
 * Whether NVIDIA's driver is loaded, from files it creates (no nvidia-smi to spawn): its /proc
 * entry and control device on Linux, and under WSL 2 the driver library Windows maps in.
 */
export function hasNvidiaDriver(exists: (path: string) => boolean = existsSync): boolean {
  return ['/proc/driver/nvidia/version', '/dev/nvidiactl', '/usr/lib/wsl/lib/libcuda.so.1'].some((p) => exists(p));
}
