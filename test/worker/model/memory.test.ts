// The memory model of a training stage: the liveness simulation on graphs small enough to count
// by hand, the stage figures against a hand count of parameters, and the real-size presets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../../worker/engine/graph.ts';
import { type ModelConfig, PRESET_NAMES, loadPreset } from '../../../worker/model/config.ts';
import { CALIBRATION, GRAD_BYTES_PER_PARAM, OUTPUT_COPY_BYTES_PER_PARAM, STATE_BYTES_PER_PARAM, simulateLiveness, stageMemory, stepOutputs } from '../../../worker/model/memory.ts';
import { ParamLayout } from '../../../worker/model/params.ts';
import { buildStageGraph } from '../../../worker/model/stage.ts';

/** Parameters of a Llama stage counted from the shapes (MODEL.md), independently of ParamLayout. */
function handCount(c: ModelConfig, first: number, last: number, embed: boolean, head: boolean): number {
  const hd = c.d_model / c.n_heads;
  const attention = 2 * c.d_model * c.n_heads * hd + 2 * c.d_model * c.n_kv_heads * hd;
  const layer = attention + 3 * c.d_model * c.ffn_hidden + 2 * c.d_model;
  return (last - first + 1) * layer + (embed ? c.vocab_size * c.d_model : 0) + (head ? c.vocab_size * c.d_model + c.d_model : 0);
}

test('liveness: each value lives from its node to its last reader; inputs, outputs and constants are not counted', () => {
  const g = new Graph('float32');
  const x = g.input('x', 'float32', [1000]);
  const a = g.neg(x); // 4000 B, read by b and c
  const b = g.exp(a); // 4000 B, read by c
  const c = g.add(a, b); // the output: the caller's buffer
  const unused = g.sqrt(x); // nothing the output needs: never runs
  void unused;
  const sim = simulateLiveness(g, [c]);
  assert.equal(sim.nodes, 3);
  assert.equal(sim.peakBytes, 8000, 'a and b are alive together while c is written');
  assert.equal(sim.inputBytes, 4000);
  assert.equal(sim.outputBytes, 4000);
});

test('liveness: a view aliases its input, whose life it extends; a freed value makes room', () => {
  const g = new Graph('float32');
  const x = g.input('x', 'float32', [10, 100]);
  const a = g.neg(x); // 4000 B
  const v = g.reshape(a, [1000]); // no bytes of its own
  const b = g.exp(x); // 4000 B while a is still alive through v
  const s = g.reduceSum(g.mul(v, g.reshape(b, [1000])), [0], false);
  const sim = simulateLiveness(g, [s]);
  // a, b and their product (4000 B) at once; the shape constants are the session's.
  assert.equal(sim.peakBytes, 12_000);
  assert.ok(sim.constantBytes > 0 && sim.constantBytes < 100, `constants ${sim.constantBytes}`);
  // Without the view the same: the alias keeps a alive exactly as long.
  const h = new Graph('float32');
  const y = h.input('x', 'float32', [1000]);
  const early = h.neg(y);
  const late = h.exp(y);
  const t = h.neg(late); // early is dead by now
  const sim2 = simulateLiveness(h, [h.add(early, t)]);
  assert.equal(sim2.peakBytes, 12_000, 'early, late and t');
});

test('liveness: an output nobody reads is freed at once; a view that is a graph output is the caller\'s copy', () => {
  const g = new Graph('float32');
  const logits = g.input('logits', 'float32', [4, 10]);
  const targets = g.input('targets', 'int64', [4]);
  const { loss } = g.softmaxCrossEntropy(logits, targets); // logProb (160 B) is never read
  const out = g.output('loss', loss); // loss has no name: it is the output itself
  const sim = simulateLiveness(g, [out]);
  assert.equal(sim.peakBytes, 160);
});

test('the step of a tiny stage: parameters by hand, 16 bytes each, and every part adds up', () => {
  const c = loadPreset('tiny');
  for (const span of [
    { layers: [0, 1] as [number, number], hasEmbed: true, hasHead: false },
    { layers: [2, 3] as [number, number], hasEmbed: false, hasHead: true },
    { layers: [0, 3] as [number, number], hasEmbed: true, hasHead: true },
  ]) {
    const m = stageMemory(c, span, 4);
    const params = handCount(c, span.layers[0], span.layers[1], span.hasEmbed, span.hasHead);
    assert.equal(m.params, params);
    assert.equal(m.params, new ParamLayout(c, span).size);
    assert.equal(m.state_bytes, STATE_BYTES_PER_PARAM * params);
    assert.equal(STATE_BYTES_PER_PARAM, 16);
    assert.equal(m.tokens, 4 * c.seq_len);
    assert.equal(m.runtime_bytes, CALIBRATION.runtimeBaseBytes);
    assert.equal(m.output_copy_bytes, OUTPUT_COPY_BYTES_PER_PARAM * params);
    assert.equal(m.train_bytes, m.state_bytes + m.activation_memory_bytes + m.constant_bytes + m.io_bytes + m.runtime_bytes);
    // The step's peak holds the gradients, which the runtime allocates as outputs.
    assert.ok(m.activation_memory_bytes >= GRAD_BYTES_PER_PARAM * params, `step peak ${m.activation_memory_bytes} under the gradients' ${4 * params}`);
    assert.ok(Math.abs(m.activation_fixed_bytes + m.activation_memory_bytes_per_token * m.tokens - m.activation_memory_bytes) <= 1);
    assert.ok(m.activation_memory_bytes > 0);
    // The stage's own inputs, not the parameters: tokens or activations of [4, T, d] at most a few.
    assert.ok(m.io_bytes > 0 && m.io_bytes < 8 * 4 * c.seq_len * c.d_model * 4, `io ${m.io_bytes}`);
    assert.equal(m.boundary_in_bytes_per_token, span.hasEmbed ? null : 4 * c.d_model);
    assert.equal(m.boundary_out_bytes_per_token, span.hasHead ? null : 4 * c.d_model);
    assert.equal(m.cuda_host_bytes, m.state_bytes + m.io_bytes + m.output_copy_bytes + m.runtime_bytes);
    assert.equal(m.cuda_device_bytes, 4 * params + m.activation_memory_bytes + m.constant_bytes + m.io_bytes);
  }
});

test('activations grow with the tokens of a step; a bottleneck narrows the boundary', () => {
  const c = loadPreset('demo');
  const span = { layers: [0, 2] as [number, number], hasEmbed: true, hasHead: false };
  const one = stageMemory(c, span, 1);
  const four = stageMemory(c, span, 4);
  // Tokens add what the per-token figure says; the fixed part does not grow.
  const predicted = one.activation_fixed_bytes + one.activation_memory_bytes_per_token * four.tokens;
  assert.ok(Math.abs(predicted / four.activation_memory_bytes - 1) < 0.05, `predicted ${predicted}, simulated ${four.activation_memory_bytes}`);
  assert.ok(Math.abs(four.activation_memory_bytes_per_token / one.activation_memory_bytes_per_token - 1) < 0.05);
  const narrow = stageMemory({ ...c, bottleneck_dim: 8, bottleneck_after: [2] }, span, 1);
  assert.equal(narrow.boundary_out_bytes_per_token, 32);
});

test('the step graph hands back the gradients and the loss or stage output', () => {
  const c = loadPreset('tiny');
  const last = buildStageGraph(c, { layers: [2, 3], hasEmbed: false, hasHead: true }, 1, 'float32');
  const outs = stepOutputs(last);
  assert.ok(last.loss && outs.some((v) => v.id === last.loss!.id), 'the loss');
  const layout = new ParamLayout(c, { layers: [2, 3], hasEmbed: false, hasHead: true });
  const outBytes = simulateLiveness(last.g, outs).outputBytes;
  assert.ok(outBytes >= 4 * layout.size, 'every parameter gradient is an output');
  assert.ok(!outs.some((v) => last.g.inputs.includes(v)), 'no input is an output');
});

test('presets: every bundled preset loads; medium is about 300M parameters, iota-1.5b is IOTA\'s layout', () => {
  for (const name of PRESET_NAMES) assert.ok(loadPreset(name).n_layers >= 1, name);
  const whole = (c: ModelConfig): number => handCount(c, 0, c.n_layers - 1, true, true);
  const medium = loadPreset('medium');
  assert.deepEqual([medium.vocab_size, medium.d_model, medium.n_layers, medium.n_heads, medium.n_kv_heads, medium.ffn_hidden, medium.seq_len, medium.batch_size], [256, 1024, 24, 16, 16, 2816, 256, 4]);
  assert.equal(whole(medium), 308_855_808);
  const iota = loadPreset('iota-1.5b');
  assert.deepEqual([iota.vocab_size, iota.d_model, iota.n_layers, iota.n_heads, iota.n_kv_heads, iota.ffn_hidden, iota.seq_len, iota.batch_size, iota.rope_theta], [128_256, 2048, 16, 32, 8, 8192, 800, 1, 500_000]);
  assert.equal(whole(iota), 1_498_482_688);
  // IOTA's configs.py states 1,500,055,552; the difference is bottleneck modules (docs/ENGINE.md).
  assert.equal(1_500_055_552 - whole(iota), 2 * 2048 * 384);
});

test('simulating a stage of the 1.5B model takes well under a few seconds', () => {
  const iota = loadPreset('iota-1.5b');
  const t = performance.now();
  const m = stageMemory(iota, { layers: [4, 11], hasEmbed: false, hasHead: false }, 1);
  const s = (performance.now() - t) / 1000;
  assert.ok(s < 2, `${s.toFixed(2)} s`);
  assert.equal(m.params, handCount(iota, 4, 11, false, false));
  assert.equal(m.boundary_out_bytes_per_token, 4 * 2048);
});
