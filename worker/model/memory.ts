// The memory model of a training stage (docs/ENGINE.md, "Memory and stage plans"): float32
// weights, one gradient buffer and AdamW's two moments per parameter, plus the peak of the
// training step's activations, found by a liveness simulation over the stage's own graph, plus
// a fixed runtime base. Every figure that a measurement may correct is in CALIBRATION.
import type { StageSpan } from '../checkpoint/checkpoint.ts';
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
/** One gradient buffer, float32: the graph writes into it and the sum over micro-batches accumulates in it. */
export const GRAD_BYTES_PER_PARAM = 4;
/** AdamW's first and second moments, float32 each, updated in place. */
export const ADAM_BYTES_PER_PARAM = 8;
/** Everything per parameter: no buffer of parameter size exists twice. */
export const STATE_BYTES_PER_PARAM = WEIGHT_BYTES_PER_PARAM + GRAD_BYTES_PER_PARAM + ADAM_BYTES_PER_PARAM;

/**
 * onnxruntime-node hands back a fresh copy of every graph output, even one written into a
 * preallocated buffer, so at the end of each step the gradients exist a second time, in main
 * memory, until the next garbage collection (measured: a 256 MB output adds 256 MB a run).
 */
export const OUTPUT_COPY_BYTES_PER_PARAM = GRAD_BYTES_PER_PARAM;

/**
 * The constants a measurement of peak RSS corrects, fitted to one training step of each
 * iota-1.5b stage and of the whole medium model (scripts/measure-stage-memory.ts; the table is in
 * docs/ENGINE.md, "Memory and stage plans"): tiny's peak gives the runtime base, and 1.25 brings
 * the four large steps within 9 % of their measured peaks (ONNX Runtime's arena rounds blocks up
 * and keeps what it grew).
 */
export const CALIBRATION = {
  /** Node, V8's heap, ONNX Runtime's library and a session's fixed overhead, before any tensor. */
  runtimeBaseBytes: 150 * MiB,
  /** Peak activation bytes the runtime really holds per byte the liveness simulation finds (arena rounding, fragmentation, buffers the optimizer keeps or shares). */
  activationArenaFactor: 1.25,
} as const;

/** With CUDA both the parameters and the gradient are copied: the graph's inputs and outputs live on the GPU for the step. */
export const CUDA_COPY_BYTES_PER_PARAM = WEIGHT_BYTES_PER_PARAM + GRAD_BYTES_PER_PARAM;

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
 * the input alive). Graph inputs, graph outputs and constants are not counted: the caller owns
 * the first two and the session the third (constantBytes, inputBytes and outputBytes report them).
 */
export function simulateLiveness(g: Graph, outputs: readonly Value[]): Liveness {
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
      if (outs.has(o.id)) return;
      owned.set(o.id, bytesOf(o));
      born.set(o.id, i);
      if (!lastUse.has(o.id)) lastUse.set(o.id, i);
    });
  });
  // An output nobody reads is freed right after its node; lastUse of a buffer born at i is ≥ i.
  for (const [id, i] of born) if ((lastUse.get(id) ?? i) < i) lastUse.set(id, i);
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
  /** Weights, gradient buffer and AdamW moments (STATE_BYTES_PER_PARAM per parameter). */
  state_bytes: number;
  /** The training step's simulated activation peak, times CALIBRATION.activationArenaFactor. */
  activation_memory_bytes: number;
  /** What each token of a step adds to it (from the simulation at twice the batch): the activation bytes per token. */
  activation_memory_bytes_per_token: number;
  /** The part of the peak that does not grow with the tokens (parameter-sized temporaries). */
  activation_fixed_bytes: number;
  /** Graph constants (RoPE tables, the causal mask) the session holds. */
  constant_bytes: number;
  /** The step's non-parameter inputs and outputs: tokens, the stage input and output, their gradients. */
  io_bytes: number;
  /** The copy of the gradients onnxruntime-node returns at the end of a step (OUTPUT_COPY_BYTES_PER_PARAM). */
  output_copy_bytes: number;
  /** CALIBRATION.runtimeBaseBytes. */
  runtime_bytes: number;
  /** Float32 bytes per token crossing the stage's input and output boundaries, one way (the gradient back is as large; null: no boundary there). */
  boundary_in_bytes_per_token: number | null;
  boundary_out_bytes_per_token: number | null;
}

/**
 * The memory for training one stage: the simulation of its training-step graph (forward and
 * backward in one graph, as buildStageGraph records it) at `batch` sequences of seq_len tokens,
 * and at twice that, for what each token adds (the rest, activation_fixed_bytes, does not grow
 * with the tokens: parameter-sized temporaries such as a gradient before it is written out).
 */
export function stageMemory(config: ModelConfig, span: StageSpan, batch: number = config.batch_size): StageMemory {
  const step = (b: number): Liveness => {
    const sg = buildStageGraph(config, span, b, 'float32');
    return simulateLiveness(sg.g, stepOutputs(sg));
  };
  const sim = step(batch);
  const twice = step(2 * batch);
  const params = new ParamLayout(config, span).size;
  const tokens = batch * config.seq_len;
  // The parameters enter as float32 inputs and their gradients leave as outputs, however the graph
  // cuts them (flat segments or one tensor each): both are views of the state's flat buffers.
  const io = Math.max(0, sim.inputBytes - params * WEIGHT_BYTES_PER_PARAM) + Math.max(0, sim.outputBytes - params * GRAD_BYTES_PER_PARAM);
  const state = params * STATE_BYTES_PER_PARAM;
  const factor = CALIBRATION.activationArenaFactor;
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
    train_bytes: state + stepBytes + copies + runtime,
    cuda_host_bytes: state + io + copies + runtime,
    cuda_device_bytes: params * CUDA_COPY_BYTES_PER_PARAM + stepBytes,
    boundary_in_bytes_per_token: boundary('input'),
    boundary_out_bytes_per_token: boundary('output'),
  };
}
