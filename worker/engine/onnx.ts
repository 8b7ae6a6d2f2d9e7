// Serialises a Graph to an ONNX ModelProto (opset 17) with onnx-proto's protobuf bindings.
// Only nodes that the outputs depend on are written.
import onnxProto from 'onnx-proto';
import { type Attr, DTYPE_CODE, type Graph, type Node, type Value } from './graph.ts';

const { onnx } = onnxProto;
export const OPSET = 17;

const AttrType = onnx.AttributeProto.AttributeType;
const utf8 = new TextEncoder();

function attribute(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  if (typeof a === 'number') return { name, type: AttrType.INT, i: a };
  if (typeof a === 'string') return { name, type: AttrType.STRING, s: utf8.encode(a) };
  if (Array.isArray(a)) return { name, type: AttrType.INTS, ints: a };
  return { name, type: AttrType.FLOAT, f: a.float };
}

const valueInfo = (v: Value, name: string): onnxProto.onnx.IValueInfoProto => ({
  name,
  type: { tensorType: { elemType: DTYPE_CODE[v.dtype], shape: { dim: v.shape.map((d) => ({ dimValue: d })) } } },
});

/** Which values a serialised graph takes and returns, by name. */
export interface GraphView {
  inputs: [string, Value][];
  outputs: [string, Value][];
}

export const defaultView = (g: Graph): GraphView => ({
  inputs: g.inputs.map((v) => [v.name!, v]),
  outputs: g.outputs.map((v) => [v.name!, v]),
});

/**
 * The nodes that compute `outputs` (in recorded order) and every value they read, walking back
 * from the outputs and stopping at `provided` values and constants.
 */
export function nodesFor(g: Graph, outputs: readonly Value[], provided: ReadonlySet<number>): { needed: Set<number>; nodes: Node[] } {
  const constants = new Set(g.constants.map((c) => c.value.id));
  const producer = new Map<number, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o.id, n);
  const needed = new Set<number>();
  const kept = new Set<Node>();
  const stack = [...outputs];
  while (stack.length) {
    const v = stack.pop()!;
    if (needed.has(v.id)) continue;
    needed.add(v.id);
    if (provided.has(v.id) || constants.has(v.id)) continue;
    const n = producer.get(v.id);
    if (!n) throw new Error(`graph needs ${v.name ?? `value ${v.id}`}, which is not among its inputs`);
    kept.add(n);
    stack.push(...n.inputs);
  }
  return { needed, nodes: g.nodes.filter((n) => kept.has(n)) };
}

/**
 * Serialises the part of the graph that computes `view.outputs` from `view.inputs` (plus
 * constants). Values fed as inputs cut the graph there: their producing nodes are not written,
 * which is how one recorded graph yields both a forward and a backward-only model.
 */
export function toOnnx(g: Graph, view: GraphView = defaultView(g), graphName = 'tah'): Uint8Array {
  const names = new Map<number, string>();
  for (const [n, v] of [...view.inputs, ...view.outputs]) {
    if (names.has(v.id) && names.get(v.id) !== n) throw new Error(`value ${names.get(v.id)} cannot also be named ${n}`);
    names.set(v.id, n);
  }
  const name = (v: Value): string => names.get(v.id) ?? `v${v.id}`;
  const provided = new Set(view.inputs.map(([, v]) => v.id));
  const { needed, nodes } = nodesFor(g, view.outputs.map(([, v]) => v), provided);
  const model: onnxProto.onnx.IModelProto = {
    irVersion: 8,
    producerName: 'train-at-home',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: {
      name: graphName,
      input: view.inputs.map(([n, v]) => valueInfo(v, n)),
      output: view.outputs.map(([n, v]) => valueInfo(v, n)),
      initializer: g.constants
        .filter((c) => needed.has(c.value.id))
        .map((c) => ({
          name: name(c.value),
          dataType: DTYPE_CODE[c.value.dtype],
          dims: [...c.value.shape],
          rawData: new Uint8Array(c.data.buffer, c.data.byteOffset, c.data.byteLength),
        })),
      node: nodes.map((n, i) => ({
        name: `${n.op}_${i}`,
        opType: n.op,
        input: n.inputs.map(name),
        // A multi-output node may be needed for one output while another is fed as an input.
        output: n.outputs.map((o) => (provided.has(o.id) ? `${name(o)}.unused` : name(o))),
        attribute: Object.entries(n.attrs).map(([k, a]) => attribute(k, a)),
      })),
    },
  };
  return onnx.ModelProto.encode(model).finish();
}
