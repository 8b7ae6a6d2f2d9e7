// One flat parameter buffer per stage, with named views. Weight-decayed matrices come first and
// the norm weights (no decay) last, so the optimizer works on two contiguous segments. Files use
// the Hugging Face names (checkpoint.ts); this layout is internal.
import { type StageSpan, expectedParameterShapes } from '../checkpoint/checkpoint.ts';
import type { ModelConfig } from './config.ts';

export interface ParamEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
  readonly decay: boolean;
}

export type FloatArray = Float32Array | Float64Array;

export class ParamLayout {
  readonly entries: readonly ParamEntry[];
  readonly byName: ReadonlyMap<string, ParamEntry>;
  /** Total parameters; [0, decayed) is decayed, [decayed, size) is not. */
  readonly size: number;
  readonly decayed: number;

  constructor(
    readonly config: ModelConfig,
    readonly span: StageSpan,
  ) {
    const shapes = [...expectedParameterShapes(config, span)];
    // Norm weights are the only 1-D parameters and the only ones without weight decay.
    const ordered = [...shapes.filter(([, s]) => s.length > 1), ...shapes.filter(([, s]) => s.length === 1)];
    let offset = 0;
    this.entries = ordered.map(([name, shape]) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const e = { name, shape, offset, size, decay: shape.length > 1 };
      offset += size;
      return e;
    });
    this.size = offset;
    this.decayed = this.entries.filter((e) => e.decay).reduce((s, e) => s + e.size, 0);
    this.byName = new Map(this.entries.map((e) => [e.name, e]));
  }

  view<T extends FloatArray>(flat: T, name: string): T {
    const e = this.byName.get(name);
    if (!e) throw new Error(`stage has no parameter ${name}`);
    return flat.subarray(e.offset, e.offset + e.size) as T;
  }

  /**
   * Graph feeds (or preallocated outputs) for flat buffers: each buffer `kind` becomes one view
   * per parameter, `${kind}.${name}`, the names the stage graphs use. Views share the buffer's
   * memory, so ONNX Runtime reads parameters and writes gradients in place, with no copies.
   */
  feeds(buffers: Record<string, FloatArray>): Record<string, FloatArray> {
    const out: Record<string, FloatArray> = {};
    for (const [kind, flat] of Object.entries(buffers)) {
      if (flat.length !== this.size) throw new Error(`${kind}: a flat buffer of ${flat.length} values for a stage of ${this.size} parameters`);
      for (const e of this.entries) out[`${kind}.${e.name}`] = flat.subarray(e.offset, e.offset + e.size);
    }
    return out;
  }

  /** The two optimizer segments of a flat buffer. */
  segments<T extends FloatArray>(flat: T): { decay: T; noDecay: T } {
    return { decay: flat.subarray(0, this.decayed) as T, noDecay: flat.subarray(this.decayed, this.size) as T };
  }
}

/** 32-bit FNV-1a of (seed, name): each parameter's init is independent of how the model is split. */
function nameSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Normal samples from a seeded xorshift generator (Box–Muller); identical on every machine. */
function fillNormal(out: FloatArray, seed: number, std: number): void {
  let s = seed || 0x9e3779b9;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next()));
    const t = 2 * Math.PI * next();
    out[i] = std * r * Math.cos(t);
    if (i + 1 < out.length) out[i + 1] = std * r * Math.sin(t);
  }
}

/**
 * MODEL.md's initialisation: matrices and the embedding from N(0, 0.02), norm weights 1. A
 * parameter's values depend only on (seed, name), so a stage split initialises exactly the same
 * model as the unsplit one.
 */
export function initParams<T extends FloatArray>(layout: ParamLayout, seed: number, make: (n: number) => T): T {
  const flat = make(layout.size);
  for (const e of layout.entries) {
    const v = flat.subarray(e.offset, e.offset + e.size);
    if (e.decay) fillNormal(v, nameSeed(seed, e.name), 0.02);
    else v.fill(1);
  }
  return flat;
}
