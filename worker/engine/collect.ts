// onnxruntime-node hands every output of a run back as a fresh buffer outside V8's heap. V8
// collects such buffers by its own heuristics, which follow the JS heap (small here), so at real
// sizes the last step's gradients are often still resident when the next step's arrive: four
// bytes a parameter more at the peak (medium at batch 4: 8.2 GiB instead of 6.7). A collection
// just before a large run frees them on time; it costs milliseconds, a step of such a model seconds.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * From this many parameters (256 MB of float32 gradients) a step's outputs are worth a collection
 * before the next run, and its session runs without ONNX Runtime's arena, whose blocks would keep
 * those buffers' peak resident (below it the arena saves nothing and a collection costs more than
 * it frees; small's step is 12 % slower without the arena).
 */
export const LARGE_MODEL_PARAMS = 64 * 2 ** 20;

let collector: (() => void) | undefined;

/** A full garbage collection now. */
export function collectGarbage(): void {
  if (!collector) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed) collector = exposed;
    else {
      // Node's documented way to reach gc() without a command-line flag: the flag set at run time
      // takes effect in contexts made after it.
      setFlagsFromString('--expose-gc');
      collector = runInNewContext('gc') as () => void;
    }
  }
  collector();
}
