// `tah plan --preset P --stages N`: the model cut into N stages that balance training memory,
// each stage's parameters, the memory for training it, the activation bytes per token across its
// boundary, and which of the published minimum machines can hold it; then, for each machine, the
// fewest stages in which every stage fits (docs/ENGINE.md, "Memory and stage plans").
import type { Command } from 'commander';
import { PRESET_LIST, loadPreset } from '../../worker/model/config.ts';
import { MINIMUM_MACHINES, type MachineId, gb, usableGpuMemory, usableMemory } from '../../worker/model/machines.ts';
import { LARGE_MODEL_PARAMS } from '../../worker/engine/collect.ts';
import { CALIBRATION, STATE_BYTES_PER_PARAM } from '../../worker/model/memory.ts';
import { type PlannedStage, Planner } from '../../worker/model/plan.ts';
import { int } from '../args.ts';
import { type Output, makeOutput } from '../output.ts';
import type { Guard } from './wallet.ts';

export interface PlanFlags {
  preset: string;
  stages: number;
  batch?: number;
  json?: boolean;
}

const LABEL = new Map<MachineId, string>(MINIMUM_MACHINES.map((m) => [m.id, m.label]));
const count = (n: number): string => n.toLocaleString('en-US');
const BAR_WIDTH = 24;
/** "11.4 GB" (GiB, as macOS and Windows label sizes), or "310 MB" below 1 GB. */
const size = (bytes: number): string => (bytes >= 2 ** 30 ? gb(bytes) : `${Math.round(bytes / 2 ** 20)} MB`);
const layersOf = (s: PlannedStage): string => `${s.span.layers[0]}–${s.span.layers[1]}${s.span.hasEmbed ? ' +embed' : ''}${s.span.hasHead ? ' +head' : ''}`;

function bar(bytes: number, scale: number): string {
  const eighths = Math.round((bytes / scale) * BAR_WIDTH * 8);
  const full = Math.floor(eighths / 8);
  return ('█'.repeat(full) + (eighths % 8 ? '▏▎▍▌▋▊▉'[(eighths % 8) - 1] : '')).padEnd(BAR_WIDTH);
}

/** Forward + backward float32 bytes per token across the stage's output boundary (tah swarm's figure), null for the last stage. */
const boundaryBytes = (s: PlannedStage): number | null => (s.boundary_out_bytes_per_token === null ? null : 2 * s.boundary_out_bytes_per_token);

function stageJson(s: PlannedStage): Record<string, unknown> {
  return {
    stage: s.stage,
    layers: s.span.layers,
    has_embed: s.span.hasEmbed,
    has_head: s.span.hasHead,
    params: s.params,
    train_bytes: s.train_bytes,
    state_bytes: s.state_bytes,
    activation_memory_bytes: s.activation_memory_bytes,
    activation_memory_bytes_per_token: s.activation_memory_bytes_per_token,
    constant_bytes: s.constant_bytes,
    io_bytes: s.io_bytes,
    runtime_bytes: s.runtime_bytes,
    cuda_host_bytes: s.cuda_host_bytes,
    cuda_device_bytes: s.cuda_device_bytes,
    activation_bytes_per_token: boundaryBytes(s),
    fits: s.fits,
  };
}

/** The plan as a table for people. */
function table(name: string, plan: PlannedStage[], params: number, batch: number, seq: number): string {
  const scale = Math.max(...plan.map((s) => s.train_bytes), ...MINIMUM_MACHINES.map((m) => usableMemory(m.memory)));
  const head = [
    `${name} in ${plan.length} stage${plan.length === 1 ? '' : 's'}: ${count(params)} parameters; a step is ${batch} × ${seq} tokens`,
    `train memory = state (float32 weights, gradient and AdamW moments: ${STATE_BYTES_PER_PARAM} B a parameter) + the step's peak inside ONNX Runtime (activations, a part per token, and its outputs, the gradients among them, a part that is not) + tables and inputs + the runtime`,
    `boundary: float32 bytes per token to the next stage, forward + backward`,
  ];
  const cols: [string, number, 'l' | 'r'][] = [
    ['stage', 5, 'r'],
    ['layers', 14, 'l'],
    ['parameters', 13, 'r'],
    ['train memory', 8 + BAR_WIDTH, 'l'],
    ['state', 8, 'r'],
    ['activations', 11, 'r'],
    ['per token', 10, 'r'],
    ['boundary', 9, 'r'],
    ['fits', 0, 'l'],
  ];
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (cols[i][2] === 'r' ? c.padStart(cols[i][1]) : c.padEnd(cols[i][1])))
      .join('  ')
      .trimEnd();
  const rows = plan.map((s) => {
    const b = boundaryBytes(s);
    return line([
      String(s.stage),
      layersOf(s),
      count(s.params),
      `${size(s.train_bytes).padStart(7)} ${bar(s.train_bytes, scale)}`,
      size(s.state_bytes),
      size(s.activation_memory_bytes),
      `${(s.activation_memory_bytes_per_token / 1024).toFixed(0)} KiB`,
      b === null ? '–' : count(b),
      s.fits.length ? s.fits.map((id) => LABEL.get(id)).join(', ') : 'none',
    ]);
  });
  return [...head, '', line(cols.map((c) => c[0])), ...rows].join('\n');
}

export function planCommand(flags: PlanFlags, out: Output): void {
  const config = loadPreset(flags.preset);
  const n = config.n_layers;
  if (flags.stages > n) throw new Error(`--stages ${flags.stages}: the ${flags.preset} model has ${n} layers, so 1 to ${n} stages`);
  const batch = flags.batch ?? config.batch_size;
  const planner = new Planner(config, batch);
  const plan = planner.plan(planner.split(flags.stages));
  const params = plan.reduce((s, x) => s + x.params, 0);

  const machines = MINIMUM_MACHINES.map((m) => {
    const fewest = planner.smallestStageCount(m.id);
    // With one layer a stage the largest stage is what no split gets below.
    const floor = fewest ? null : planner.plan(planner.split(n)).reduce((a, b) => (b.train_bytes > a.train_bytes ? b : a));
    return { id: m.id, label: m.label, usable_bytes: usableMemory(m.memory), usable_gpu_bytes: usableGpuMemory(m.memory), smallest_stages: fewest?.stages ?? null, floor };
  });
  const fewestLine = (m: (typeof machines)[number]): string => {
    const limit = `training may use ${gb(m.usable_bytes)}${m.usable_gpu_bytes === null ? '' : ` of memory and ${gb(m.usable_gpu_bytes)} of GPU memory`}`;
    if (m.smallest_stages !== null) return `  ${m.label.padEnd(22)} ${String(m.smallest_stages).padStart(2)} stage${m.smallest_stages === 1 ? ' ' : 's'} (${limit})`;
    const f = m.floor!;
    return `  ${m.label.padEnd(22)} none: even with one layer a stage (${n} stages), stage ${f.stage} (layers ${layersOf(f)}, ${count(f.params)} parameters) needs ${size(f.train_bytes)} (${limit})`;
  };

  const human = [
    table(flags.preset, plan, params, batch, config.seq_len),
    '',
    'fewest stages in which every stage fits:',
    ...machines.map(fewestLine),
    '',
    `runtime base ${size(CALIBRATION.runtimeBaseBytes)} a stage, activation factor ${CALIBRATION.activationFactor} (${CALIBRATION.arenaActivationFactor} below ${LARGE_MODEL_PARAMS / 2 ** 20} Mi parameters, with the arena) (worker/model/memory.ts CALIBRATION)`,
  ].join('\n');
  out.summary(
    {
      ok: true,
      preset: flags.preset,
      params,
      batch,
      seq_len: config.seq_len,
      tokens_per_step: batch * config.seq_len,
      stages: plan.map(stageJson),
      machines: machines.map(({ floor: _f, ...m }) => m),
      smallest_stages: Object.fromEntries(machines.map((m) => [m.id, m.smallest_stages])),
      calibration: { runtime_base_bytes: CALIBRATION.runtimeBaseBytes, activation_factor: CALIBRATION.activationFactor, arena_activation_factor: CALIBRATION.arenaActivationFactor },
    },
    human,
  );
}

export function registerPlanCommand(program: Command, guarded: Guard): void {
  program
    .command('plan')
    .description('cut a model into stages: each stage\'s parameters, memory for training it, boundary bytes per token, and which minimum machines hold it')
    .requiredOption('--preset <name|file>', `${PRESET_LIST}, or a JSON file with the same keys`)
    .requiredOption('--stages <n>', 'pipeline stages (1 to the number of layers)', int(1))
    .option('--batch <n>', "sequences per step (default: the preset's batch_size)", int(1))
    .option('--json', 'one JSON object per line')
    .action(guarded(async (o: PlanFlags) => planCommand(o, makeOutput(o.json ?? false))));
}
