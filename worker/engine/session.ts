// Runs Graphs on ONNX Runtime. A session is built once per graph (fixed shapes) and reused for
// every step; feeds and preallocated outputs are plain typed arrays owned by the caller, so the
// flat parameter buffers are read and written in place.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { CUDA_PROVIDER_LIB, SETUP_CUDA, binaryDir, cudaPlatform, cudaPlatformProblem, hasNvidiaDriver, onnxruntimeNodeDir } from './cuda.ts';
import { type DType, Graph, type TypedData, numel } from './graph.ts';
import { type GraphView, defaultView, toOnnx } from './onnx.ts';

export const DEVICES = ['auto', 'cpu', 'cuda', 'coreml', 'webgpu'] as const;
export type DeviceRequest = (typeof DEVICES)[number];
export type Provider = Exclude<DeviceRequest, 'auto'>;

export interface DeviceWorld {
  platform: NodeJS.Platform;
  arch: string;
  /** Execution providers this onnxruntime-node build offers (bundled or installed). */
  providers: Set<Provider>;
  /** NVIDIA's driver is loaded here (worker/engine/cuda.ts), so the CUDA provider would be worth installing. */
  nvidiaGpu: boolean;
}

export interface DeviceChoice {
  requested: DeviceRequest;
  provider: Provider;
  /** One line for the user when the choice differs from what a user might expect. */
  note?: string;
}

export function parseDevice(s: string): DeviceRequest {
  if (!(DEVICES as readonly string[]).includes(s)) throw new Error(`unknown device '${s}' (choose one of ${DEVICES.join(', ')})`);
  return s as DeviceRequest;
}

/** What this machine's onnxruntime-node offers. The CUDA provider ships separately (`tah setup cuda`). */
export function probeDevices(): DeviceWorld {
  const providers = new Set<Provider>(['cpu']);
  const listed = new Set(ort.listSupportedBackends().map((b) => b.name));
  if (listed.has('coreml')) providers.add('coreml');
  if (listed.has('webgpu')) providers.add('webgpu');
  if (listed.has('cuda') && existsSync(join(binaryDir(onnxruntimeNodeDir(), process.platform, process.arch), CUDA_PROVIDER_LIB))) providers.add('cuda');
  const nvidiaGpu = cudaPlatform(process.platform, process.arch) && hasNvidiaDriver();
  return { platform: process.platform, arch: process.arch, providers, nvidiaGpu };
}

/**
 * Picks the execution provider. An explicit request that this machine cannot serve is an error;
 * `auto` takes CUDA where its provider is installed and otherwise CPU, saying why. CoreML and
 * WebGPU run only part of a training graph and are opt-in until measured faster than CPU.
 */
export function chooseDevice(requested: DeviceRequest, world: DeviceWorld): DeviceChoice {
  if (requested !== 'auto') {
    if (!world.providers.has(requested)) {
      const why: Record<Provider, string> = {
        cpu: '',
        cuda: cudaPlatform(world.platform, world.arch) ? `its provider library is not installed (run ${SETUP_CUDA}; it needs CUDA 12 and cuDNN 9)` : cudaPlatformProblem(world.platform, world.arch),
        coreml: `onnxruntime-node offers CoreML on macOS only, this is ${world.platform} ${world.arch}`,
        webgpu: `this onnxruntime-node build for ${world.platform} ${world.arch} has no WebGPU provider`,
      };
      throw new Error(`device ${requested} is not available: ${why[requested]}`);
    }
    return { requested, provider: requested };
  }
  if (world.providers.has('cuda')) return { requested, provider: 'cuda', note: 'device auto: using CUDA' };
  const found = [...world.providers].filter((p) => p !== 'cpu');
  // An NVIDIA GPU without the provider is one command away from training on it: say that first.
  const note =
    world.nvidiaGpu && cudaPlatform(world.platform, world.arch)
      ? `device auto: using CPU (NVIDIA GPU found, but not ONNX Runtime's CUDA provider: run ${SETUP_CUDA})`
      : found.length
        ? `device auto: using CPU (found ${found.join(', ')}: not used by default for training graphs; pass --device to try one)`
        : `device auto: using CPU (no CUDA provider installed${world.platform === 'darwin' ? '' : '; CoreML needs macOS'})`;
  return { requested, provider: 'cpu', note };
}

/**
 * Starts a one-node session on the chosen provider to find out whether it really runs here (a
 * CUDA provider library without a working GPU, say). `auto` then falls back to CPU and says why;
 * an explicit request fails.
 */
export async function confirmDevice(choice: DeviceChoice): Promise<DeviceChoice> {
  if (choice.provider === 'cpu') return choice;
  const g = new Graph('float32');
  g.output('y', g.neg(g.input('x', 'float32', [1])));
  try {
    const s = await ort.InferenceSession.create(toOnnx(g), { executionProviders: [choice.provider] });
    await s.release();
    return choice;
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    if (choice.requested !== 'auto') throw new Error(`device ${choice.provider} could not start: ${why}`, { cause: e });
    return { requested: choice.requested, provider: 'cpu', note: `device auto: using CPU (found ${choice.provider}, but it could not start: ${why})` };
  }
}

export interface SessionOptions {
  device?: DeviceChoice;
  threads?: number;
  /**
   * ONNX Runtime's graph optimisations. 'all' adds fusions into contrib operators, several of
   * which have float32 kernels only, so float64 graphs (gradient checks) default to 'basic'.
   * 'disabled' runs the graph as built (scripts/provider-drift.ts compares it with 'all').
   */
  optimization?: 'disabled' | 'basic' | 'all';
  /** ONNX Runtime's CPU memory arena (on by default): it keeps what it grew until the session ends. */
  arena?: boolean;
  /** Writes an ONNX Runtime profile (JSON) with this file prefix. */
  profilePrefix?: string;
}

const TYPE_NAMES: Record<DType, ort.Tensor.Type> = { float32: 'float32', float64: 'float64', int64: 'int64', int32: 'int32', bool: 'bool' };

export class CompiledGraph {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly shapes: Map<string, { dtype: DType; shape: number[] }>,
  ) {}

  /** Compiles the graph, or the part of it that `view` selects. */
  static async create(g: Graph, opts: SessionOptions & Partial<GraphView> = {}): Promise<CompiledGraph> {
    const view = { ...defaultView(g), ...(opts.inputs ? { inputs: opts.inputs } : {}), ...(opts.outputs ? { outputs: opts.outputs } : {}) };
    const bytes = toOnnx(g, view);
    const provider = opts.device?.provider ?? 'cpu';
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'],
      graphOptimizationLevel: opts.optimization ?? (g.floatType === 'float64' ? 'basic' : 'all'),
      executionMode: 'sequential',
      intraOpNumThreads: opts.threads ?? availableParallelism(),
      interOpNumThreads: 1,
      // The arena reuses freed buffers across steps (about 20% faster than fresh mappings), but a
      // memory pattern asks it for one block the size of the whole plan, which doubles the
      // resident size; without the pattern the arena serves each buffer from its free chunks.
      enableCpuMemArena: opts.arena ?? true,
      enableMemPattern: false,
      enableProfiling: opts.profilePrefix !== undefined,
      profileFilePrefix: opts.profilePrefix,
    });
    const shapes = new Map<string, { dtype: DType; shape: number[] }>();
    for (const [name, v] of [...view.inputs, ...view.outputs]) shapes.set(name, { dtype: v.dtype, shape: [...v.shape] });
    return new CompiledGraph(session, shapes);
  }

  private tensor(name: string, data: TypedData): ort.Tensor {
    const spec = this.shapes.get(name);
    if (!spec) throw new Error(`graph has no input or output named ${name}`);
    if (data.length !== numel(spec.shape)) {
      throw new Error(`shape mismatch for ${name}: expected [${spec.shape.join(', ')}] (${numel(spec.shape)} values), got ${data.length} values`);
    }
    return new ort.Tensor(TYPE_NAMES[spec.dtype], data, spec.shape);
  }

  /**
   * Runs the graph. Outputs named in `into` are written into the given arrays; the others are
   * returned as fresh arrays.
   */
  async run(feeds: Record<string, TypedData>, into: Record<string, TypedData> = {}): Promise<Record<string, TypedData>> {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = this.tensor(k, v);
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const name of this.session.outputNames) fetches[name] = into[name] ? this.tensor(name, into[name]) : null;
    const out = await this.session.run(f, fetches);
    const result: Record<string, TypedData> = {};
    for (const name of this.session.outputNames) result[name] = into[name] ?? (out[name].data as TypedData);
    return result;
  }

  /** Ends profiling; ONNX Runtime writes the profile to `<profilePrefix>_<date>.json`. */
  endProfiling(): void {
    this.session.endProfiling();
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
