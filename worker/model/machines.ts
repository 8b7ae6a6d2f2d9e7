// The published minimum machines and how much of a machine's memory one training stage may use.
// One table for `tah plan`, the orchestrator's stage assignment and the app's hardware check
// (docs/ENGINE.md, "Memory and stage plans"). Pure: no engine, no ONNX Runtime, so the app's
// main process and the orchestrator can read it cheaply.

export const GiB = 2 ** 30;
export const MiB = 2 ** 20;

/**
 * Share of an Apple Silicon Mac's unified memory a training stage may use. macOS, the window
 * server and the apps someone keeps open hold about 2.5 GB of an 8 GB Mac; the GPU, when used,
 * draws on the same memory. 70 % of 8 GiB is 5.6 GiB.
 */
export const APPLE_UNIFIED_SHARE = 0.7;

/** Share of a PC's memory (RAM) a training stage may use: the OS, the desktop and a browser keep the rest. 75 % of 16 GiB is 12 GiB. */
export const CPU_RAM_SHARE = 0.75;

/**
 * What the CUDA context, cuDNN/cuBLAS workspaces and ONNX Runtime's CUDA arena bookkeeping take
 * of a GPU's memory before the first tensor: 0.5–1 GiB depending on driver and card; the upper end.
 */
export const CUDA_CONTEXT_BYTES = 1 * GiB;

/** A device as a miner reports it (orchestrator-client/protocol.ts HardwareSchema). */
export type DeviceKind = 'cpu' | 'cuda' | 'coreml' | 'webgpu';

/** A machine's memory, as reported or as published. */
export interface MachineMemory {
  /** coreml stands for Apple Silicon (unified memory); cuda for an NVIDIA GPU. */
  device: DeviceKind;
  /** Main memory (RAM, or the unified memory of Apple Silicon). */
  memoryBytes: number;
  /** The GPU's own memory (cuda only); unknown: the stage is judged as if it ran on the CPU. */
  acceleratorBytes?: number;
}

/**
 * What training one stage needs (worker/model/memory.ts computes it). On the CPU and on Apple
 * Silicon everything lies in main memory (`train_bytes`); with CUDA the optimizer state stays in
 * main memory and the step's tensors are on the GPU.
 */
export interface StageNeed {
  train_bytes: number;
  cuda_host_bytes: number;
  cuda_device_bytes: number;
}

/** The published minimum machines (electron/core/hardware.ts judges a computer against them). */
export const MINIMUM_MACHINES = [
  { id: 'apple-8gb', label: '8 GB Apple Silicon', memory: { device: 'coreml', memoryBytes: 8 * GiB } },
  { id: 'cuda-16gb', label: '16 GB VRAM NVIDIA GPU', memory: { device: 'cuda', memoryBytes: 16 * GiB, acceleratorBytes: 16 * GiB } },
  { id: 'cpu-16gb', label: '16 GB RAM CPU', memory: { device: 'cpu', memoryBytes: 16 * GiB } },
] as const satisfies readonly { id: string; label: string; memory: MachineMemory }[];

export type MachineId = (typeof MINIMUM_MACHINES)[number]['id'];

/** What one check found: the need that decided it, against the memory training may use. */
export interface FitCheck {
  ok: boolean;
  /** 'memory' (main or unified memory) or 'GPU memory': where the tighter limit is. */
  where: 'memory' | 'GPU memory';
  needBytes: number;
  usableBytes: number;
}

const usesGpu = (m: MachineMemory): m is MachineMemory & { acceleratorBytes: number } => m.device === 'cuda' && m.acceleratorBytes !== undefined && m.acceleratorBytes > 0;

/** How much of the machine's main memory a stage may use. */
export const usableMemory = (m: MachineMemory): number => Math.floor(m.memoryBytes * (m.device === 'coreml' ? APPLE_UNIFIED_SHARE : CPU_RAM_SHARE));

/** How much of the GPU's memory a stage may use (cuda with a known size), else null. */
export const usableGpuMemory = (m: MachineMemory): number | null => (usesGpu(m) ? Math.max(0, m.acceleratorBytes - CUDA_CONTEXT_BYTES) : null);

/**
 * Whether a stage fits a machine. A CUDA machine must hold the step's tensors in GPU memory and
 * the optimizer state in main memory; a CUDA machine whose GPU memory is unknown is judged as a
 * CPU machine (it may fall back to one).
 */
export function checkFit(need: StageNeed, m: MachineMemory): FitCheck {
  const host = usableMemory(m);
  const gpu = usableGpuMemory(m);
  if (gpu === null) return { ok: need.train_bytes <= host, where: 'memory', needBytes: need.train_bytes, usableBytes: host };
  if (need.cuda_device_bytes > gpu) return { ok: false, where: 'GPU memory', needBytes: need.cuda_device_bytes, usableBytes: gpu };
  return { ok: need.cuda_host_bytes <= host, where: 'memory', needBytes: need.cuda_host_bytes, usableBytes: host };
}

/** The ids of the minimum machines that can hold the stage. */
export const fittingMachines = (need: StageNeed): MachineId[] => MINIMUM_MACHINES.filter((m) => checkFit(need, m.memory).ok).map((m) => m.id);

/** "5.6 GB": GiB with one decimal, as macOS and Windows label sizes. */
export const gb = (bytes: number): string => `${(bytes / GiB).toFixed(1)} GB`;
