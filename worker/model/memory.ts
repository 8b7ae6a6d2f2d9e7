// The memory model of a training stage (docs/ENGINE.md, "Memory and stage plans"): float32
// weights, the gradient sum and AdamW's two moments per parameter, plus the peak of the training
// step inside ONNX Runtime (its activations and the outputs it allocates, the gradients among
// them), found by a liveness simulation over the stage's own graph, plus a fixed runtime base.
// Every figure that a measurement may correct is in CALIBRATION.
import type { StageSpan } from '../checkpoint/checkpoint.ts';
import { LARGE_MODEL_PARAMS } from '../engine/collect.ts';
import { type DType, type Graph, type Value, numel } from '../engine/graph.ts';
import { nodesFor } from '../engine/onnx.ts';
import type { ModelConfig } from './config.ts';
import { stageWidth } from './llama.ts';
import type { StageNeed } from './machines.ts';
import { MiB } from './machines.ts';
import { ParamLayout } from './params.ts';
import { buildStageGraph } from './stage.ts';

/** The weights, float32: the flat buffer the graph's parameter inputs view. */
export const WEIGHT_BYTES_PER_PARAM = 4;
/** The gradient sum over a round's samples, float32: each backward's gradients are added into it. */
export const GRAD_BYTES_PER_PARAM = 4;
/** AdamW's first and second moments, float32 each, updated in place. */
export const ADAM_BYTES_PER_PARAM = 8;
/** What a stage keeps per parameter between steps. */
export const STATE_BYTES_PER_PARAM = WEIGHT_BYTES_PER_PARAM + GRAD_BYTES_PER_PARAM + ADAM_BYTES_PER_PARAM;

/**
 * onnxruntime-node hands back every output as a fresh copy in main memory. On the CPU the copies
 * take the place of the runtime's own output buffers as those are released (measured: the
 * step's peak is the simulated one with its outputs, and nothing on top), so only the CUDA host
 * figure counts them, where the runtime's outputs are in GPU memory.
 */
export const OUTPUT_COPY_BYTES_PER_PARAM = GRAD_BYTES_PER_PARAM;

/**
 * The constants a measurement of peak RSS corrects, fitted to one training step of each
 * iota-1.5b stage and of the whole medium model (scripts/measure-stage-memory.ts; the table is in
 * docs/ENGINE.md, "Memory and stage plans"): tiny's peak gives the runtime base, and the step's
 * simulated peak, its outputs included, is within 5 % of the four large steps' measured peaks as
 * it is (such stages run without ONNX Runtime's arena, so nothing is rounded up or kept).
 */
export const CALIBRATION = {
  /** Node, V8's heap, ONNX Runtime's library and a session's fixed overhead, before any tensor. */
  runtimeBaseBytes: 150 * MiB,
  /** Peak bytes the runtime really holds during the step per byte the liveness simulation finds, for a stage that runs without the arena (LARGE_MODEL_PARAMS and up). */
  activationFactor: 1,
  /** The same below it, where ONNX Runtime's arena rounds blocks up and keeps what it grew (small's stage: 774 MB measured, 789 predicted). */
  arenaActivationFactor: 1.25,
} as const;

/** With CUDA the weights are copied to the GPU for the step (the gradients are outputs there, in the step's peak). */
export const CUDA_COPY_BYTES_PER_PARAM = WEIGHT_BYTES_PER_PARAM;

/** Float32 across a stage boundary: the forward value, and its gradient of the same size back. */
export const BOUNDARY_BYTES_PER_CHANNEL = 4;

const DTYPE_BYTES: Record<DType, number> = { float32: 4, float64: 8, int64: 8, int32: 4, bool: 1 };
const bytesOf = (v: Value): number => numel(v.shape) * DTYPE_BYTES[v.dtype];

/** Operators ONNX Runtime runs as views of their input: no buffer of their own. */
export const VIEW_OPS: ReadonlySet<string> = new Set(['Reshape', 'Identity', 'Squeeze', 'Unsqueeze', 'Flatten']);

export interface Liveness {
  /** The most bytes of intermediate values alive at once (graph inputs, outputs and constants excluded). */
  peakBytes: number;
  /** Index (in execution order, of the nodes that run) of the node at which the peak is reached. */
  peakAt: number;
  /** The graph's constants that the run reads (initializers, held for the session's life). */
  constantBytes: number;
  /** The graph's inputs, and the outputs asked for: caller-owned buffers. */
  inputBytes: number;
  outputBytes: number;
  /** Nodes that run: those the outputs depend on. */
  nodes: number;
}

/**
 * Peak memory of running `outputs` from the graph's inputs with a sequential executor: nodes run
 * in recorded order (only those the outputs depend on); each output of a node is allocated when
 * it runs and freed after its last reader; view operators alias their input (their readers keep
 * the input alive). Graph inputs and constants are not counted: the caller owns the first and the
 * session the second (constantBytes and inputBytes report them). Nor are the graph's outputs,
 * which the caller's preallocated buffers hold, unless `outputsAllocated`: then the runtime
 * allocates each when its node runs and holds it to the end of the run (outputBytes reports them).
 */
export function simulateLiveness(g: Graph, outputs: readonly Value[], opts: { outputsAllocated?: boolean } = {}): Liveness {
  const inputs = new Set(g.inputs.map((v) => v.id));
  const constants = new Map(g.constants.map((c) => [c.value.id, c.value]));
  const outs = new Set(outputs.map((v) => v.id));
  const { needed: seen, nodes: order } = nodesFor(g, outputs, inputs);

  // Buffers: each value maps to the buffer it lives in (a view's output to its input's).
  const root = new Map<number, number>();
  const rootOf = (v: Value): number => root.get(v.id) ?? v.id;
  const owned = new Map<number, number>(); // buffer id → bytes, for buffers this simulation counts
  const lastUse = new Map<number, number>();
  const born = new Map<number, number>();
  order.forEach((n, i) => {
    for (const x of n.inputs) lastUse.set(rootOf(x), i);
    n.outputs.forEach((o, j) => {
      // A graph output is written into the caller's buffer, so a view that is one copies.
      if (VIEW_OPS.has(n.op) && j === 0 && !outs.has(o.id)) {
        root.set(o.id, rootOf(n.inputs[0]));
        return;
      }
      if (outs.has(o.id) && !opts.outputsAllocated) return;
      owned.set(o.id, bytesOf(o));
      born.set(o.id, i);
      if (!lastUse.has(o.id)) lastUse.set(o.id, i);
    });
  });
  // An output nobody reads is freed right after its node; lastUse of a buffer born at i is ≥ i.
  for (const [id, i] of born) if ((lastUse.get(id) ?? i) < i) lastUse.set(id, i);
  // The caller's outputs, where the runtime allocates them, live to the end of the run.
  for (const id of born.keys()) if (outs.has(id)) lastUse.set(id, order.length - 1);
  const freeAt = new Map<number, number[]>();
  for (const id of owned.keys()) {
    const i = lastUse.get(id)!;
    if (!freeAt.has(i)) freeAt.set(i, []);
    freeAt.get(i)!.push(id);
  }

  let live = 0;
  let peakBytes = 0;
  let peakAt = 0;
  order.forEach((n, i) => {
    for (const o of n.outputs) if (born.get(o.id) === i) live += owned.get(o.id)!;
    if (live > peakBytes) {
      peakBytes = live;
      peakAt = i;
    }
    for (const id of freeAt.get(i) ?? []) live -= owned.get(id)!;
  });

  let constantBytes = 0;
  for (const id of seen) {
    const c = constants.get(id);
    if (c) constantBytes += bytesOf(c);
  }
  const sum = (vs: readonly Value[]): number => vs.reduce((s, v) => s + bytesOf(v), 0);
  return { peakBytes, peakAt, constantBytes, inputBytes: sum(g.inputs), outputBytes: sum([...new Map(outputs.map((v) => [v.id, v])).values()]), nodes: order.length };
}

const isValue = (x: unknown): x is Value =>
  typeof x === 'object' && x !== null && typeof (x as Value).id === 'number' && Array.isArray((x as Value).shape) && typeof (x as Value).dtype === 'string';

/**
 * The values a stage graph hands its caller: the graph's declared outputs and every value the
 * returned StageGraph names (loss, output, gradients, input gradient, …, alone, in arrays or as
 * [name, value] pairs). Read generically so that renaming a field of StageGraph keeps it true.
 */
export function stepOutputs(sg: { g: Graph } & object): Value[] {
  const inputs = new Set(sg.g.inputs.map((v) => v.id));
  const found = new Map<number, Value>();
  const take = (x: unknown): void => {
    if (isValue(x)) {
      if (!inputs.has(x.id)) found.set(x.id, x);
    } else if (Array.isArray(x)) for (const y of x) take(y);
  };
  for (const v of sg.g.outputs) take(v);
  for (const [k, v] of Object.entries(sg)) if (k !== 'g' && k !== 'layout') take(v);
  return [...found.values()];
}

export interface StageMemory extends StageNeed {
  span: StageSpan;
  params: number;
  /** Sequences per step, and tokens (batch × seq_len). */
  batch: number;
  tokens: number;
  /** Weights, gradient sum and AdamW moments (STATE_BYTES_PER_PARAM per parameter). */
  state_bytes: number;
  /** The training step's simulated peak inside the runtime (activations, and the outputs it allocates: the gradients, the loss or stage output, the input gradient), times CALIBRATION.activationFactor. */
  activation_memory_bytes: number;
  /** What each token of a step adds to it (from the simulation at twice the batch): the activation bytes per token. */
  activation_memory_bytes_per_token: number;
  /** The part of the peak that does not grow with the tokens (parameter-sized temporaries). */
  activation_fixed_bytes: number;
  /** Graph constants (RoPE tables, the causal mask) the session holds. */
  constant_bytes: number;
  /** The step's non-parameter inputs: tokens, the stage input, the gradient of its output. */
  io_bytes: number;
  /** The copies of the gradients onnxruntime-node returns (OUTPUT_COPY_BYTES_PER_PARAM): counted in main memory with CUDA only. */
  output_copy_bytes: number;
  /** CALIBRATION.runtimeBaseBytes. */
  runtime_bytes: number;
  /** Float32 bytes per token crossing the stage's input and output boundaries, one way (the gradient back is as large; null: no boundary there). */
  boundary_in_bytes_per_token: number | null;
  boundary_out_bytes_per_token: number | null;
}

/**
 * The memory for training one stage: the simulation of its training-step graph (forward and
 * backward in one graph, as buildStageGraph records it, its outputs allocated by the runtime as
 * Stage.backward runs it) at `batch` sequences of seq_len tokens, and at twice that, for what
 * each token adds (the rest, activation_fixed_bytes, does not grow with the tokens: the
 * gradients, and parameter-sized temporaries).
 */
export function stageMemory(config: ModelConfig, span: StageSpan, batch: number = config.batch_size): StageMemory {
  const step = (b: number): Liveness => {
    const sg = buildStageGraph(config, span, b, 'float32');
    return simulateLiveness(sg.g, stepOutputs(sg), { outputsAllocated: true });
  };
  const sim = step(batch);
  const twice = step(2 * batch);
  const params = new ParamLayout(config, span).size;
  const tokens = batch * config.seq_len;
  // The parameters enter as float32 inputs, views of the state's weights; the outputs are in the peak.
  const io = Math.max(0, sim.inputBytes - params * WEIGHT_BYTES_PER_PARAM);
  const state = params * STATE_BYTES_PER_PARAM;
  const factor = params < LARGE_MODEL_PARAMS ? CALIBRATION.arenaActivationFactor : CALIBRATION.activationFactor;
  const activations = Math.ceil(sim.peakBytes * factor);
  const perToken = (Math.max(0, twice.peakBytes - sim.peakBytes) * factor) / tokens;
  const stepBytes = activations + sim.constantBytes + io;
  const runtime = CALIBRATION.runtimeBaseBytes;
  const copies = params * OUTPUT_COPY_BYTES_PER_PARAM;
  const boundary = (end: 'input' | 'output'): number | null =>
    (end === 'input' ? span.hasEmbed : span.hasHead) ? null : stageWidth(config, span, end) * BOUNDARY_BYTES_PER_CHANNEL;
  return {
    span,
    params,
    batch,
    tokens,
    state_bytes: state,
    activation_memory_bytes: activations,
    activation_memory_bytes_per_token: perToken,
    activation_fixed_bytes: Math.max(0, activations - Math.round(perToken * tokens)),
    constant_bytes: sim.constantBytes,
    io_bytes: io,
    output_copy_bytes: copies,
    runtime_bytes: runtime,
    train_bytes: state + stepBytes + runtime,
    cuda_host_bytes: state + io + copies + runtime,
    cuda_device_bytes: params * CUDA_COPY_BYTES_PER_PARAM + stepBytes,
    boundary_in_bytes_per_token: boundary('input'),
    boundary_out_bytes_per_token: boundary('output'),
  };
}
