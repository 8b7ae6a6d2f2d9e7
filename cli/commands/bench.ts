// `tah bench engine`: tokens/s of full training steps (forward, backward, clipping, AdamW) of
// our engine and, measured in the same run on the same preset, of the same model in PyTorch.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chooseDevice, confirmDevice, parseDevice, probeDevices } from '../../worker/engine/session.ts';
import { PRESET_NAMES, loadPreset } from '../../worker/model/config.ts';
import { DEFAULT_ADAMW } from '../../worker/optim/adamw.ts';
import { Trainer, freshState } from '../../worker/train/trainer.ts';
import type { Output } from '../output.ts';

const run = promisify(execFile);
export const PYTHON = '/usr/bin/python3';
const TORCH_SCRIPT = fileURLToPath(new URL('../../scripts/torch_llama.py', import.meta.url));

export interface BenchFlags {
  preset: string;
  steps: number;
  device: string;
  threads?: number;
  peer: boolean;
  profile: boolean;
}

interface Measurement {
  tokensPerS: number;
  stepS: number;
  opTimes?: { op: string; ms: number; share: number }[];
}

/** Two warm-up steps, then `steps` timed steps on random tokens, as the PyTorch script does. */
async function measureEngine(flags: BenchFlags, profileDir?: string): Promise<Measurement> {
  const config = loadPreset(flags.preset);
  const device = await confirmDevice(chooseDevice(parseDevice(flags.device), probeDevices()));
  const profilePrefix = profileDir ? join(profileDir, 'ort') : undefined;
  const trainer = await Trainer.create(config, DEFAULT_ADAMW, { device, threads: flags.threads ?? availableParallelism(), profilePrefix });
  try {
    let cur = freshState(trainer.layout, 0);
    let next = freshState(trainer.layout, 1);
    const n = config.batch_size * config.seq_len;
    let x = 12345;
    const tok = (): bigint => BigInt((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % config.vocab_size);
    const batch = { inputs: BigInt64Array.from({ length: n }, tok), targets: BigInt64Array.from({ length: n }, tok) };
    let t = 0;
    const step = async () => {
      await trainer.trainStep(cur, next, batch, ++t, 3e-4, DEFAULT_ADAMW);
      [cur, next] = [next, cur];
    };
    await step();
    await step();
    const start = performance.now();
    for (let i = 0; i < flags.steps; i++) await step();
    const stepS = (performance.now() - start) / 1000 / flags.steps;
    let opTimes;
    if (profileDir) {
      trainer.endProfiling();
      opTimes = await operatorTimes(profileDir);
    }
    return { tokensPerS: n / stepS, stepS, opTimes };
  } finally {
    await trainer.dispose();
  }
}

/** Sums ONNX Runtime's per-node kernel times by operator type. */
async function operatorTimes(dir: string): Promise<{ op: string; ms: number; share: number }[]> {
  const file = (await readdir(dir)).find((f) => f.endsWith('.json'));
  if (!file) return [];
  const events = JSON.parse(await readFile(join(dir, file), 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  const byOp = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !e.args?.op_name) continue;
    byOp.set(e.args.op_name, (byOp.get(e.args.op_name) ?? 0) + e.dur / 1000);
  }
  const total = [...byOp.values()].reduce((a, b) => a + b, 0);
  return [...byOp].map(([op, ms]) => ({ op, ms, share: ms / total })).sort((a, b) => b.ms - a.ms);
}

export async function torchAvailable(): Promise<boolean> {
  try {
    await run(PYTHON, ['-c', 'import torch']);
    return true;
  } catch {
    return false;
  }
}

async function measureTorch(flags: BenchFlags): Promise<Measurement & { impl: string; layout: string }> {
  const presetFile = (PRESET_NAMES as readonly string[]).includes(flags.preset)
    ? fileURLToPath(new URL(`../../worker/model/presets/${flags.preset}.json`, import.meta.url))
    : flags.preset;
  const args = [TORCH_SCRIPT, 'bench', presetFile, '--steps', String(flags.steps), '--cores', String(flags.threads ?? availableParallelism())];
  const { stdout } = await run(PYTHON, args, { maxBuffer: 1 << 20 });
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as { impl: string; tokens_per_s: number; step_s: number; omp_threads: number; blas_threads: number };
  return { tokensPerS: r.tokens_per_s, stepS: r.step_s, impl: r.impl, layout: `omp ${r.omp_threads}, blas ${r.blas_threads}` };
}

export async function benchEngineCommand(flags: BenchFlags, out: Output): Promise<void> {
  const cores = flags.threads ?? availableParallelism();
  out.note(`bench engine: preset ${flags.preset}, ${flags.steps} timed steps, ${cores} threads on ${cpus()[0]?.model ?? 'unknown CPU'}`);
  const profileDir = flags.profile ? await mkdtemp(join(tmpdir(), 'tah-profile-')) : undefined;
  try {
    // Ours before and after the peer, so both sides see the same machine load; the better counts,
    // as the peer's best thread layout does.
    const first = await measureEngine(flags, profileDir);
    out.event('engine', { tokens_per_s: first.tokensPerS, step_s: first.stepS });
    let peer;
    if (flags.peer && (await torchAvailable())) {
      peer = await measureTorch(flags);
      out.event('peer', { impl: peer.impl, tokens_per_s: peer.tokensPerS, step_s: peer.stepS, layout: peer.layout });
    } else if (flags.peer) {
      out.note(`PyTorch peer skipped: ${PYTHON} cannot import torch (apt-get install python3-torch libopenblas0-pthread)`);
    }
    const second = peer ? await measureEngine(flags) : undefined;
    if (second) out.event('engine', { tokens_per_s: second.tokensPerS, step_s: second.stepS });
    const best = second && second.tokensPerS > first.tokensPerS ? second : first;
    const ratio = peer ? best.tokensPerS / peer.tokensPerS : undefined;
    const ops = first.opTimes?.slice(0, 12);
    if (ops && !out.json) {
      out.note('where the time goes (ONNX Runtime profile, per operator type):');
      for (const o of ops) out.note(`  ${o.op.padEnd(26)} ${o.ms.toFixed(0).padStart(7)} ms  ${(o.share * 100).toFixed(1).padStart(5)}%`);
    }
    out.summary(
      {
        ok: true,
        preset: flags.preset,
        threads: cores,
        tokens_per_s: best.tokensPerS,
        step_s: best.stepS,
        peer: peer?.impl ?? null,
        peer_tokens_per_s: peer?.tokensPerS ?? null,
        peer_layout: peer?.layout ?? null,
        ratio: ratio ?? null,
        ...(ops ? { operators: ops } : {}),
      },
      peer
        ? `engine ${Math.round(best.tokensPerS).toLocaleString('en-US')} tokens/s vs ${peer.impl} ${Math.round(peer.tokensPerS).toLocaleString('en-US')} tokens/s (${peer.layout}): ratio ${ratio!.toFixed(2)}`
        : `engine ${Math.round(best.tokensPerS).toLocaleString('en-US')} tokens/s (no PyTorch peer measured)`,
    );
  } finally {
    if (profileDir) await rm(profileDir, { recursive: true, force: true });
  }
}
