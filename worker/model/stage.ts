// A model stage as runnable graphs: forward (stage input → stage output, or loss at the last
// stage) and backward (stage input + output gradient → input gradient + flat parameter
// gradients). Backward either recomputes the forward inside its own graph (least memory), takes
// every activation the forward graph kept, or takes only the matrix products' outputs and
// recomputes the cheap element-wise rest.
import type { StageSpan } from '../checkpoint/checkpoint.ts';
import { gradients } from '../engine/autodiff.ts';
import { type FloatType, Graph, type Node, type TypedData, type Value } from '../engine/graph.ts';
import type { GraphView } from '../engine/onnx.ts';
import { LARGE_MODEL_PARAMS, collectGarbage } from '../engine/collect.ts';
import { CompiledGraph, type SessionOptions } from '../engine/session.ts';
import type { ModelConfig } from './config.ts';
import { buildStage, stageNeedsTokens, stageWidth } from './llama.ts';
import { type FloatArray, ParamLayout } from './params.ts';

/**
 * What backward gets from forward. 'recompute': nothing (backward runs the forward again);
 * 'keep': every forward value backward reads; 'products': the outputs of the matrix products
 * only (most of the forward's arithmetic in a fraction of the memory), the rest recomputed.
 */
export type ActivationMode = 'recompute' | 'keep' | 'products';

/** The operators whose outputs 'products' mode keeps. */
const PRODUCTS = new Set(['Gemm', 'MatMul']);

export interface StageGraph {
  g: Graph;
  layout: ParamLayout;
  /** Stage output [B, T, d] (non-last stages) or loss (last stage). */
  output?: Value;
  loss?: Value;
  /** Each parameter's gradient, by parameter name (layout order). */
  grads: [string, Value][];
  gradSumSq: Value;
  gradInput?: Value;
  /** The forward part's node count: nodes after it belong to the backward pass. */
  forwardNodes: number;
}

/**
 * Builds forward and backward of a stage in one graph. Each parameter is its own graph input
 * (`params.<name>`) and each parameter gradient its own output (`grad.<name>`): fed and fetched
 * as views of the flat buffers (ParamLayout.feeds), they are read and written where they lie,
 * with no slicing of a flat input and no concatenation into a flat output.
 */
export function buildStageGraph(config: ModelConfig, span: StageSpan, batch: number, floatType: FloatType): StageGraph {
  const g = new Graph(floatType);
  const layout = new ParamLayout(config, span);
  const T = config.seq_len;
  const views = new Map<string, Value>();
  for (const e of layout.entries) views.set(e.name, g.input(`params.${e.name}`, floatType, e.shape));
  const input = span.hasEmbed ? g.input('input', 'int64', [batch, T]) : g.input('input', floatType, [batch, T, stageWidth(config, span, 'input')]);
  const tokens = stageNeedsTokens(config, span) ? g.input('tokens', 'int64', [batch, T]) : undefined;
  const targets = span.hasHead ? g.input('targets', 'int64', [batch, T]) : undefined;
  const param = (name: string): Value => {
    const v = views.get(name);
    if (!v) throw new Error(`stage has no parameter ${name}`);
    return v;
  };
  const { output, loss } = buildStage(g, config, span, { input, tokens, targets, param });
  const forwardNodes = g.nodes.length;

  const seed: [Value, Value] = loss ? [loss, g.scalar(1)] : [output!, g.input('grad_output', floatType, output!.shape)];
  const wrt = [...layout.entries.map((e) => views.get(e.name)!), ...(span.hasEmbed ? [] : [input])];
  const d = gradients(g, [seed], wrt);
  // A graph output must be a value of its own: a gradient that is a constant (a parameter the
  // seed does not depend on) or shared gets an Identity.
  const seen = new Set<number>(g.constants.map((c) => c.value.id));
  const own = (v: Value): Value => {
    const out = seen.has(v.id) ? g.node('Identity', [v], {}, [[v.dtype, v.shape]])[0] : v;
    seen.add(out.id);
    return out;
  };
  const grads = layout.entries.map((e, i): [string, Value] => [`grad.${e.name}`, own(d[i])]);
  const gradSumSq = g.sum(grads.map(([, v]) => g.sumSquares(v)));
  return { g, layout, output, loss, grads, gradSumSq, gradInput: span.hasEmbed ? undefined : d[layout.entries.length], forwardNodes };
}

/**
 * Forward values that backward is handed: of the forward values the backward nodes read, those
 * `keep` admits, and for the others, walking back through the forward nodes that compute them,
 * the first values `keep` admits. Backward recomputes the rest from them, so in 'products' mode no
 * matrix product is computed twice even when backward reads only a reshape or a sum of one.
 */
function keptActivations(sg: StageGraph, keep: (op: string) => boolean): Value[] {
  const { g, forwardNodes } = sg;
  const producer = new Map<number, Node>();
  for (let i = 0; i < forwardNodes; i++) for (const o of g.nodes[i].outputs) producer.set(o.id, g.nodes[i]);
  // Constants and graph inputs are available to the backward graph anyway.
  for (const c of g.constants) producer.delete(c.value.id);
  const kept = new Map<number, Value>();
  const seen = new Set<number>();
  const pending: Value[] = g.nodes.slice(forwardNodes).flatMap((n) => n.inputs);
  for (let x = pending.pop(); x; x = pending.pop()) {
    if (seen.has(x.id)) continue;
    seen.add(x.id);
    const node = producer.get(x.id);
    if (!node) continue;
    if (keep(node.op)) kept.set(x.id, x);
    else pending.push(...node.inputs);
  }
  return [...kept.values()];
}

/** The stage's graph and the two parts of it that forward and backward run. */
export function stageViews(config: ModelConfig, span: StageSpan, batch: number, mode: ActivationMode, floatType: FloatType): { g: Graph; layout: ParamLayout; forward: GraphView; backward: GraphView; keptNames: string[] } {
  const sg = buildStageGraph(config, span, batch, floatType);
  const { g } = sg;
  const head = sg.loss ? { name: 'loss', v: sg.loss } : { name: 'output', v: sg.output! };
  const backwardOuts: [string, Value][] = [
    ...sg.grads,
    ['grad_sumsq', sg.gradSumSq],
    ...(sg.gradInput ? ([['grad_input', sg.gradInput]] as [string, Value][]) : []),
    ...(sg.loss ? ([['loss', sg.loss]] as [string, Value][]) : []),
  ];
  const ins = g.inputs;
  const named = (vs: Value[]): [string, Value][] => vs.map((v) => [v.name!, v]);
  const fwdInputs = named(ins.filter((v) => v.name !== 'grad_output' && (sg.loss || v.name !== 'targets')));
  const kept = mode === 'recompute' ? [] : keptActivations(sg, mode === 'keep' ? () => true : (op) => PRODUCTS.has(op));
  const keptNames = kept.map((_, i) => `kept.${i}`);
  const handed = kept.map((v, i): [string, Value] => [keptNames[i], v]);
  return {
    g,
    layout: sg.layout,
    forward: { inputs: fwdInputs, outputs: [[head.name, head.v], ...handed] },
    backward: { inputs: [...named(ins), ...handed], outputs: backwardOuts },
    keptNames,
  };
}

export interface StageOptions extends SessionOptions {
  batch?: number;
  floatType?: FloatType;
  activations?: ActivationMode;
}

export type Saved = Record<string, TypedData>;

/** A stage ready to run: compiled sessions reused for every call (fixed shapes). */
export class Stage {
  private constructor(
    readonly config: ModelConfig,
    readonly span: StageSpan,
    readonly layout: ParamLayout,
    readonly mode: ActivationMode,
    private readonly fwd: CompiledGraph,
    private readonly bwd: CompiledGraph,
    private readonly keptNames: string[],
  ) {}

  static async create(config: ModelConfig, span: StageSpan, opts: StageOptions = {}): Promise<Stage> {
    const mode = opts.activations ?? 'recompute';
    const { g, layout, forward, backward, keptNames } = stageViews(config, span, opts.batch ?? config.batch_size, mode, opts.floatType ?? 'float32');
    // A large stage's backward runs without the arena, as the trainer's step (engine/collect.ts).
    const fwd = await CompiledGraph.create(g, { ...opts, ...forward });
    const bwd = await CompiledGraph.create(g, { arena: layout.size < LARGE_MODEL_PARAMS, ...opts, ...backward });
    return new Stage(config, span, layout, mode, fwd, bwd, keptNames);
  }

  /** Whether forward and backward need the sample's token ids (`tokens`): the stage decodes a bottleneck. */
  get needsTokens(): boolean {
    return stageNeedsTokens(this.config, this.span);
  }

  private tokenFeed(tokens: BigInt64Array | undefined): Record<string, TypedData> {
    if (!this.needsTokens) return {};
    if (!tokens) throw new Error(`layers ${this.span.layers.join('-')} decode a bottleneck: pass the sample's token ids`);
    return { tokens };
  }

  /**
   * Runs the stage forward. In 'keep' and 'products' modes the result carries what backward()
   * needs, written into `into` when given: what an earlier forward saved and its backward no
   * longer needs (fresh arrays for every sample cost the forward 10–25 % of its time).
   */
  async forward(params: FloatArray, input: TypedData, targets?: BigInt64Array, tokens?: BigInt64Array, into?: Saved): Promise<{ output?: FloatArray; loss?: number; saved?: Saved }> {
    const out = await this.fwd.run({ ...this.layout.feeds({ params }), input, ...this.tokenFeed(tokens), ...(targets && this.span.hasHead ? { targets } : {}) }, into);
    const saved: Saved = {};
    for (const k of this.keptNames) saved[k] = out[k];
    return {
      output: this.span.hasHead ? undefined : (out.output as FloatArray),
      loss: this.span.hasHead ? Number(out.loss[0]) : undefined,
      saved: this.mode === 'recompute' ? undefined : saved,
    };
  }

  /**
   * Gradients of the stage for one input. The flat parameter gradient (layout order) is added
   * into `gradSum`, element by element in the layout's precision (a zeroed buffer receives the
   * gradient itself); the input gradient is returned for all but the first stage. In the keeping
   * modes, `saved` is what forward() returned for this input; without it the forward is run first.
   *
   * The gradients are not fetched into a buffer of ours: onnxruntime-node hands back a copy of
   * every output even when it wrote into a caller's buffer, so that buffer would hold them a
   * second time. Its copies are added into the sum and dropped.
   */
  async backward(
    params: FloatArray,
    input: TypedData,
    upstream: { gradOutput?: FloatArray; targets?: BigInt64Array; tokens?: BigInt64Array },
    gradSum: FloatArray,
    saved?: Saved,
  ): Promise<{ gradInput?: FloatArray; loss?: number; gradSumSq: number }> {
    if (gradSum.length !== this.layout.size) throw new Error(`a gradient sum of ${gradSum.length} values for a stage of ${this.layout.size} parameters`);
    if (this.mode !== 'recompute' && !saved) saved = (await this.forward(params, input, upstream.targets, upstream.tokens)).saved;
    const feeds: Record<string, TypedData> = { ...this.layout.feeds({ params }), input, ...this.tokenFeed(upstream.tokens), ...(saved ?? {}) };
    if (this.span.hasHead) {
      if (!upstream.targets) throw new Error('the last stage needs targets');
      feeds.targets = upstream.targets;
    } else {
      if (!upstream.gradOutput) throw new Error('a non-last stage needs the gradient of its output');
      feeds.grad_output = upstream.gradOutput;
    }
    // The last call's gradients are garbage now; at this size V8 would keep them past this run.
    if (this.layout.size >= LARGE_MODEL_PARAMS) collectGarbage();
    const out = await this.bwd.run(feeds);
    for (const { name } of this.layout.entries) {
      const sum = this.layout.view(gradSum, name);
      const g = out[`grad.${name}`] as FloatArray;
      for (let i = 0; i < sum.length; i++) sum[i] += g[i];
    }
    return {
      gradInput: out.grad_input as FloatArray | undefined,
      loss: this.span.hasHead ? Number(out.loss[0]) : undefined,
      gradSumSq: Number(out.grad_sumsq[0]),
    };
  }

  async dispose(): Promise<void> {
    await Promise.all([this.fwd.dispose(), this.bwd.dispose()]);
  }
}
