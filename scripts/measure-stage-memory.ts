// One training step (backward with the forward recomputed, then AdamW) of one stage of a preset,
// in a process of its own, and its peak resident size beside what the memory model predicts.
//   node --import tsx scripts/measure-stage-memory.ts PRESET STAGES INDEX
// Prints one JSON line. A benchmark, not a test: a 1.5B stage takes about a minute and 13 GB.
import { loadPreset } from '../worker/model/config.ts';
import { Stage } from '../worker/model/stage.ts';
import { initParams } from '../worker/model/params.ts';
import { DEFAULT_ADAMW, adamwStep, clipCoefficient } from '../worker/optim/adamw.ts';
import { stageMemory } from '../worker/model/memory.ts';
import { Planner } from '../worker/model/plan.ts';
const [preset, stagesArg, idxArg] = process.argv.slice(2);
if (idxArg === undefined) throw new Error('usage: measure-stage-memory.ts PRESET STAGES INDEX');
const config = loadPreset(preset);
const planner = new Planner(config);
const split = planner.split(Number(stagesArg));
const k = Number(idxArg); const range = split[k];
const span = { layers: range as [number, number], hasEmbed: k === 0, hasHead: k === split.length - 1 };
const predicted = stageMemory(config, span);
const stage = await Stage.create(config, span, { threads: 2, activations: 'recompute', batch: config.batch_size });
const L = stage.layout;
const state = { params: initParams(L, 1, (n) => new Float32Array(n)), m: new Float32Array(L.size), v: new Float32Array(L.size) };
const grads = new Float32Array(L.size);
const B = config.batch_size, T = config.seq_len, d = config.d_model;
const toks = () => BigInt64Array.from({ length: B * T }, (_, i) => BigInt((i * 7919) % config.vocab_size));
const input = span.hasEmbed ? toks() : Float32Array.from({ length: B * T * d }, (_, i) => Math.sin(i));
const up = span.hasHead ? { targets: toks() } : { gradOutput: Float32Array.from({ length: B * T * d }, (_, i) => 1e-3 * Math.cos(i)) };
const t0 = performance.now();
const r = await stage.backward(state.params, input, up, grads);
adamwStep(state, grads, state, L.decayed, 1, 2e-4, clipCoefficient(r.gradSumSq, DEFAULT_ADAMW), DEFAULT_ADAMW);
const s = (performance.now() - t0) / 1000;
const peak = process.resourceUsage().maxRSS * 1024;
console.log(JSON.stringify({ preset, stage: Number(idxArg), layers: span.layers, params: L.size, step_s: +s.toFixed(1), peak_rss_bytes: peak, predicted_train_bytes: predicted.train_bytes, ratio: +(peak / predicted.train_bytes).toFixed(3), activations: predicted.activation_memory_bytes, io: predicted.io_bytes, constants: predicted.constant_bytes }));
