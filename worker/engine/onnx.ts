// Serialises a Graph to an ONNX ModelProto (opset 17) with onnx-proto's protobuf bindings.
// Only nodes that the outputs depend on are written.
import onnxProto from 'onnx-proto';
import { type Attr, DTYPE_CODE, type Graph, type Value } from './graph.ts';

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

export function toOnnx(g: Graph, graphName = 'tah'): Uint8Array {
  const name = (v: Value): string => v.name ?? `v${v.id}`;
  // Keep only what the outputs need.
  const needed = new Set(g.outputs.map((v) => v.id));
  const nodes = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!n.outputs.some((o) => needed.has(o.id))) continue;
    for (const x of n.inputs) needed.add(x.id);
    nodes.push(n);
  }
  nodes.reverse();
  const model: onnxProto.onnx.IModelProto = {
    irVersion: 8,
    producerName: 'train-at-home',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: {
      name: graphName,
      input: g.inputs.map((v) => valueInfo(v, name(v))),
      output: g.outputs.map((v) => valueInfo(v, name(v))),
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
        output: n.outputs.map(name),
        attribute: Object.entries(n.attrs).map(([k, a]) => attribute(k, a)),
      })),
    },
  };
  return onnx.ModelProto.encode(model).finish();
}
