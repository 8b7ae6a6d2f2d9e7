// The hardware check shown during onboarding: what this computer has (probeHardware) and whether
// that meets the published minimums (judgeHardware, a pure function so the table is testable),
// including whether it can hold a stage of the model it would train: the same memory model and
// machine table as `tah plan` and the orchestrator's assignment (worker/model/machines.ts).
import { execFile } from 'node:child_process';
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { type MachineMemory, MINIMUM_MACHINES, type StageNeed, checkFit, gb as sizeGb } from '../../worker/model/machines.ts';
import type { HardwareReport } from '../ipc-contract.ts';

/** What the probe finds: the report without the verdict. */
export type HardwareFacts = Omit<HardwareReport, 'verdict' | 'reasons'>;

/** Runs a program and returns its standard output; rejects when it is missing or fails. */
export type RunCommand = (cmd: string, args: string[]) => Promise<string>;

export interface ProbeOptions {
  /** Where models and checkpoints go; need not exist yet (its nearest existing parent is measured). */
  dataDir: string;
  run?: RunCommand;
}

/** The model whose stages the check tries this computer against: the run's, when it is known. */
export interface ModelToCheck {
  preset: string;
  /** The run's stage split, or a number of stages to split into as `tah plan` does. */
  stages: [number, number][] | number;
  /** Sequences per step (a run's rows_per_sample); default: the preset's batch_size. */
  batch?: number;
}

/** What the app trains when no run says otherwise: the demo swarm's model and stage count (`tah swarm`). */
export const DEFAULT_MODEL: ModelToCheck = { preset: 'demo', stages: 3 };

/** The stages of a model with what each needs to train (worker/model/plan.ts computes them). */
export interface ModelStages {
  name: string;
  stages: (StageNeed & { layers: [number, number] })[];
}

const NVIDIA_SMI_TIMEOUT_MS = 5000;

const execRun: RunCommand = (cmd, args) =>
  new Promise((res, rej) => {
    execFile(cmd, args, { timeout: NVIDIA_SMI_TIMEOUT_MS, windowsHide: true, encoding: 'utf8' }, (err, stdout) => (err ? rej(err) : res(stdout)));
  });

export async function probeHardware(opts: ProbeOptions): Promise<HardwareFacts> {
  const platform = os.platform();
  const arch = os.arch();
  const cpus = os.cpus();
  const cpuModel = cpus[0]?.model.trim() || 'unknown processor';
  const gpus: HardwareFacts['gpus'] =
    platform === 'darwin'
      ? // Apple Silicon's GPU shares the main memory; Intel Macs have no GPU the trainer can use.
        arch === 'arm64'
        ? [{ name: cpuModel, memoryBytes: null, vendor: 'apple' }]
        : []
      : await nvidiaGpus(opts.run ?? execRun);
  return {
    platform,
    arch,
    cpuModel,
    cores: os.availableParallelism?.() ?? Math.max(1, cpus.length),
    memoryBytes: os.totalmem(),
    freeDiskBytes: await freeDisk(opts.dataDir),
    gpus,
  };
}

/** NVIDIA GPUs as nvidia-smi lists them; none when it is missing, fails or says nothing useful. */
async function nvidiaGpus(run: RunCommand): Promise<HardwareFacts['gpus']> {
  let out: string;
  try {
    out = await run('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits']);
  } catch {
    return [];
  }
  const gpus: HardwareFacts['gpus'] = [];
  for (const line of String(out).split(/\r?\n/)) {
    // "NVIDIA GeForce RTX 4090, 24564" (MiB); a name may itself hold a comma, the size is last.
    const at = line.lastIndexOf(',');
    if (at <= 0) continue;
    const name = line.slice(0, at).trim();
    const mib = Number(line.slice(at + 1).trim());
    if (name === '') continue;
    gpus.push({ name, memoryBytes: Number.isFinite(mib) && mib > 0 ? mib * 1024 * 1024 : null, vendor: 'nvidia' });
  }
  return gpus;
}

async function freeDisk(dataDir: string): Promise<number | null> {
  for (let dir = resolve(dataDir); ; dir = dirname(dir)) {
    try {
      const s = await statfs(dir);
      return s.bavail * s.bsize;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(dir) === dir) return null;
    }
  }
}

// ---- the minimums ----
//
// Sizes are in GiB (2^30 bytes) throughout, and shown as "GB", as macOS and Windows label them:
// an "8 GB" Mac reports exactly 8 GiB. The memory and graphics-memory limits accept 7/8 of the
// nominal size, because PCs report what is left after firmware and built-in graphics take their
// share: an 8 GB Linux laptop shows about 7.3–7.8 GiB, a 16 GB graphics card 15.9 GiB. A 6 GB
// machine (or a 12 GB card against 16) still falls short. Free disk space is measured, not
// nominal, so its limit is exact.

const GiB = 2 ** 30;
const nominal = (gib: number): number => gib * GiB * (7 / 8);

// The published minimum machines (worker/model/machines.ts): 8 GB Apple Silicon; a 16 GB NVIDIA
// GPU in a PC with 16 GB of memory; a 16 GB PC trains on its CPU (and so does an 8 GB PC, slowly).
const machine = (id: (typeof MINIMUM_MACHINES)[number]['id']): MachineMemory => MINIMUM_MACHINES.find((m) => m.id === id)!.memory;
const MIN_MEMORY_GB = machine('apple-8gb').memoryBytes / GiB;
const GPU_MIN_MEMORY_GB = machine('cuda-16gb').memoryBytes / GiB;
const GPU_MIN_VRAM_GB = machine('cuda-16gb').acceleratorBytes! / GiB;
const MIN_DISK_GB = 10;

const CPU_SLOWER = 'training runs on the CPU, slower';

/** "8", "7.5", "0.4": one decimal, none when it is a whole number. Shortfalls round down, so that
 *  9.97 GB is not shown as "only 10 GB; 10 GB are needed". */
function gb(bytes: number, round: (x: number) => number = Math.round): string {
  const v = round((bytes / GiB) * 10) / 10;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/** This computer's memory as the memory model reads it: Apple Silicon's unified memory, the GPU it would train on, or the CPU's. */
function machineOf(f: HardwareFacts, gpu: { memoryBytes: number | null } | undefined): MachineMemory {
  if (f.platform === 'darwin' && f.arch === 'arm64') return { device: 'coreml', memoryBytes: f.memoryBytes };
  if (gpu && gpu.memoryBytes !== null) return { device: 'cuda', memoryBytes: f.memoryBytes, acceleratorBytes: gpu.memoryBytes };
  return { device: 'cpu', memoryBytes: f.memoryBytes };
}

/** Whether the model's stages fit, as a sentence; `none` when no stage does. */
function stageReason(model: ModelStages, m: MachineMemory): { none: boolean; reason: string } {
  const checks = model.stages.map((s) => checkFit(s, m));
  const fitting = checks.flatMap((c, i) => (c.ok ? [i] : []));
  const where = (c: (typeof checks)[number]): string => `training may use ${sizeGb(c.usableBytes)} of ${c.where === 'GPU memory' ? "the GPU's memory" : 'the memory'} here`;
  const of = `the ${model.name} model (${model.stages.length} stage${model.stages.length === 1 ? '' : 's'})`;
  if (fitting.length === checks.length) {
    const largest = checks.reduce((a, c) => (c.needBytes > a.needBytes ? c : a));
    return { none: false, reason: `Every stage of ${of} fits: the largest needs ${sizeGb(largest.needBytes)}, and ${where(largest)}.` };
  }
  const short = checks.map((c, i) => [c, i] as const).filter(([c]) => !c.ok);
  const [closest, at] = short.reduce((a, b) => (b[0].needBytes - b[0].usableBytes < a[0].needBytes - a[0].usableBytes ? b : a));
  const [first, last] = model.stages[at].layers;
  if (fitting.length === 0) return { none: true, reason: `No stage of ${of} fits: the smallest, layers ${first}–${last}, needs ${sizeGb(closest.needBytes)}, and ${where(closest)}.` };
  const list = fitting.length === 1 ? `stage ${fitting[0]} fits` : `stages ${fitting.slice(0, -1).join(', ')} and ${fitting.at(-1)} fit`;
  return { none: false, reason: `Of ${of}, ${list} here; stage ${at} (layers ${first}–${last}) needs ${sizeGb(closest.needBytes)}, and ${where(closest)}.` };
}

export function judgeHardware(f: HardwareFacts, model?: ModelStages): HardwareReport {
  const reasons: string[] = [];
  let insufficient = false;
  let cpuOnly = false;
  let trainsOn: { memoryBytes: number | null } | undefined;

  if (f.memoryBytes < nominal(MIN_MEMORY_GB)) {
    insufficient = true;
    reasons.push(`Only ${gb(f.memoryBytes, Math.floor)} GB of memory; at least ${MIN_MEMORY_GB} GB are needed.`);
  } else {
    // Between 8 and 16 GB a PC can train, but only on its CPU (the GPU part says so below).
    const appleSilicon = f.platform === 'darwin' && f.arch === 'arm64';
    const cpuOnlyMemory = !appleSilicon && f.memoryBytes < nominal(GPU_MIN_MEMORY_GB);
    reasons.push(`${gb(f.memoryBytes)} GB of memory: enough${cpuOnlyMemory ? ' to train on the CPU' : ''}.`);
  }

  if (f.freeDiskBytes === null) {
    reasons.push(`Could not tell how much disk space is free; ${MIN_DISK_GB} GB are needed.`);
  } else if (f.freeDiskBytes < MIN_DISK_GB * GiB) {
    insufficient = true;
    reasons.push(`Only ${gb(f.freeDiskBytes, Math.floor)} GB free disk space; ${MIN_DISK_GB} GB are needed.`);
  } else {
    reasons.push(`${gb(f.freeDiskBytes)} GB of free disk space: enough.`);
  }

  if (f.platform === 'darwin' && f.arch === 'arm64') {
    // Apple Silicon trains on its built-in GPU, which shares the memory checked above.
    reasons.push(`Apple Silicon (${f.cpuModel}): the built-in GPU does the training.`);
  } else if (f.platform === 'darwin') {
    cpuOnly = true;
    reasons.push(`This Mac has an Intel processor: ${CPU_SLOWER}.`);
  } else {
    const nvidia = f.gpus.filter((g) => g.vendor === 'nvidia').sort((a, b) => (b.memoryBytes ?? 0) - (a.memoryBytes ?? 0));
    const best = nvidia[0];
    if (!best) {
      cpuOnly = true;
      reasons.push(`No NVIDIA GPU with ${GPU_MIN_VRAM_GB} GB: ${CPU_SLOWER}.`);
    } else if (best.memoryBytes === null) {
      cpuOnly = true;
      reasons.push(`Could not tell how much memory the ${best.name} has (${GPU_MIN_VRAM_GB} GB are needed): ${CPU_SLOWER}.`);
    } else if (best.memoryBytes < nominal(GPU_MIN_VRAM_GB)) {
      cpuOnly = true;
      reasons.push(`The ${best.name} has ${gb(best.memoryBytes, Math.floor)} GB of graphics memory; ${GPU_MIN_VRAM_GB} GB are needed to train on it, so ${CPU_SLOWER}.`);
    } else if (f.memoryBytes < nominal(GPU_MIN_MEMORY_GB)) {
      cpuOnly = true;
      reasons.push(`The ${best.name} would do, but training on a GPU also needs ${GPU_MIN_MEMORY_GB} GB of memory: ${CPU_SLOWER}.`);
    } else {
      trainsOn = best;
      reasons.push(`The ${best.name} with ${gb(best.memoryBytes)} GB: the GPU does the training.`);
    }
  }

  if (model) {
    const r = stageReason(model, machineOf(f, trainsOn));
    if (r.none) insufficient = true;
    reasons.push(r.reason);
  }

  return {
    platform: f.platform,
    arch: f.arch,
    cpuModel: f.cpuModel,
    cores: f.cores,
    memoryBytes: f.memoryBytes,
    freeDiskBytes: f.freeDiskBytes,
    gpus: f.gpus.map((g) => ({ ...g })),
    verdict: insufficient ? 'insufficient' : cpuOnly ? 'cpu-only' : 'ok',
    reasons,
  };
}

/**
 * The stages of a model and what each needs, from the engine's memory model. Loaded when asked:
 * it builds the stages' graphs, and the engine's modules bring ONNX Runtime's library with them.
 */
export async function modelStages(model: ModelToCheck = DEFAULT_MODEL): Promise<ModelStages> {
  const [{ loadPreset }, { Planner }] = await Promise.all([import('../../worker/model/config.ts'), import('../../worker/model/plan.ts')]);
  const config = loadPreset(model.preset);
  const planner = new Planner(config, model.batch ?? config.batch_size);
  const ranges = typeof model.stages === 'number' ? planner.split(Math.min(model.stages, config.n_layers)) : model.stages;
  return { name: model.preset, stages: planner.plan(ranges).map((s) => ({ ...s, layers: [...s.span.layers] })) };
}

export async function checkHardware(opts: ProbeOptions & { model?: ModelToCheck }): Promise<HardwareReport> {
  const [facts, stages] = await Promise.all([probeHardware(opts), modelStages(opts.model)]);
  return judgeHardware(facts, stages);
}
