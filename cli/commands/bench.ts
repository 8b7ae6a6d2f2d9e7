// `tah bench engine`: tokens/s of full training steps (forward, backward, clipping, AdamW) of
// our engine and, measured in the same run on the same preset, of the same model in PyTorch
// (scripts/torch_llama.py, with the python cli/peer-python.ts picks, at its best thread layout).
// Each side is measured in a process of its own, and each reports that process's peak resident
// size, so the two memory figures compare the engines and nothing else.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chooseDevice, confirmDevice, parseDevice, probeDevices } from '../../worker/engine/session.ts';
import { PRESET_NAMES, loadPreset } from '../../worker/model/config.ts';
import { REPO_ROOT, peerPython, runTorchScript, weakPeerNote } from '../peer-python.ts';
import type { Output } from '../output.ts';
import type { EngineJob, EngineResult } from './bench-engine-child.ts';

/**
 * The engine's measurement: bundled beside the bundled CLI (scripts/build-cli.ts), else the
 * TypeScript source run through tsx, whose loader thread adds about 50 MiB to the child's RSS.
 */
const BUNDLED = !import.meta.url.endsWith('.ts');
const ENGINE_CHILD = BUNDLED ? fileURLToPath(new URL('./bench-engine-child.mjs', import.meta.url)) : join(REPO_ROOT, 'cli', 'commands', 'bench-engine-child.ts');

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
  /** Peak resident size of the process that measured it. */
  peakRssBytes: number;
}

/**
 * One engine measurement (bench-engine-child.ts) in a fresh node process, so that the peak RSS
 * is the engine's alone and not this process's, which also parses and reports.
 */
function measureEngineInChild(job: EngineJob): Promise<Measurement> {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT; // the test runner's marker, when a test runs `tah bench`
  return new Promise((resolve, reject) => {
    // cwd: where `--import tsx` resolves from (this package's node_modules).
    const child = spawn(process.execPath, [...(BUNDLED ? [] : ['--import', 'tsx']), ENGINE_CHILD, JSON.stringify(job)], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => reject(new Error(`engine measurement could not start: ${e.message}`, { cause: e })));
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`engine measurement failed (${signal ? `signal ${signal}` : `exit code ${code}`}): ${stderr.trim().split('\n').pop() ?? ''}`));
      try {
        const r = JSON.parse(stdout.trim().split('\n').pop() ?? '') as EngineResult;
        resolve({ tokensPerS: r.tokens_per_s, stepS: r.step_s, peakRssBytes: r.peak_rss_bytes });
      } catch {
        reject(new Error(`engine measurement printed no result: ${stdout.trim().slice(-200)}`));
      }
    });
  });
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

interface PeerMeasurement extends Measurement {
  impl: string;
  layout: string;
  layouts: { layout: string; tokens_per_s: number; step_s: number; peak_rss_bytes: number }[];
}

async function measureTorch(python: string, flags: BenchFlags, cores: number): Promise<PeerMeasurement> {
  const presetFile = (PRESET_NAMES as readonly string[]).includes(flags.preset)
    ? fileURLToPath(new URL(`../../worker/model/presets/${flags.preset}.json`, import.meta.url))
    : flags.preset;
  const r = (await runTorchScript(python, ['bench', presetFile, '--steps', String(flags.steps), '--cores', String(cores)])) as {
    impl: string;
    tokens_per_s: number;
    step_s: number;
    peak_rss_bytes: number;
    layout: string;
    layouts: PeerMeasurement['layouts'];
  };
  return { tokensPerS: r.tokens_per_s, stepS: r.step_s, peakRssBytes: r.peak_rss_bytes, impl: r.impl, layout: r.layout, layouts: r.layouts };
}

const mib = (bytes: number): string => `${Math.round(bytes / 2 ** 20).toLocaleString('en-US')} MiB`;
const perS = (x: number): string => Math.round(x).toLocaleString('en-US');

export async function benchEngineCommand(flags: BenchFlags, out: Output): Promise<void> {
  const cores = flags.threads ?? availableParallelism();
  const config = loadPreset(flags.preset);
  const device = await confirmDevice(chooseDevice(parseDevice(flags.device), probeDevices()));
  out.note(`bench engine: preset ${flags.preset}, ${flags.steps} timed steps, ${cores} threads on ${cpus()[0]?.model ?? 'unknown CPU'}`);
  const profileDir = flags.profile ? await mkdtemp(join(tmpdir(), 'tah-profile-')) : undefined;
  const job: EngineJob = { config, steps: flags.steps, threads: cores, device };
  if (!BUNDLED) out.note("engine measured from the TypeScript sources: its peak RSS includes tsx's loader (about 50 MiB); `npm run build:cli` bundles the CLI and measures without it");
  try {
    // Ours before and after the peer, so both sides see the same machine load; the better counts,
    // as the peer's best thread layout does.
    const first = await measureEngineInChild({ ...job, profilePrefix: profileDir && join(profileDir, 'ort') });
    out.event('engine', { tokens_per_s: first.tokensPerS, step_s: first.stepS, peak_rss_bytes: first.peakRssBytes });
    let peer: PeerMeasurement | undefined;
    const python = flags.peer ? peerPython() : undefined;
    if (python?.ok) {
      const weak = weakPeerNote(python);
      if (weak) out.note(weak);
      peer = await measureTorch(python.python, flags, cores);
      for (const l of peer.layouts) out.event('peer_layout', { impl: peer.impl, ...l });
      out.event('peer', { impl: peer.impl, python: python.python, tokens_per_s: peer.tokensPerS, step_s: peer.stepS, layout: peer.layout, peak_rss_bytes: peer.peakRssBytes });
    } else if (python) {
      out.note(`PyTorch peer skipped: ${python.reason}`);
    }
    const second = peer ? await measureEngineInChild(job) : undefined;
    if (second) out.event('engine', { tokens_per_s: second.tokensPerS, step_s: second.stepS, peak_rss_bytes: second.peakRssBytes });
    const best = second && second.tokensPerS > first.tokensPerS ? second : first;
    const ratio = peer ? best.tokensPerS / peer.tokensPerS : undefined;
    const ops = profileDir ? (await operatorTimes(profileDir)).slice(0, 12) : undefined;
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
        // Each side's: the peak resident size of the process that made the reported measurement.
        peak_rss_bytes: best.peakRssBytes,
        peer: peer?.impl ?? null,
        peer_tokens_per_s: peer?.tokensPerS ?? null,
        peer_layout: peer?.layout ?? null,
        peer_peak_rss_bytes: peer?.peakRssBytes ?? null,
        ratio: ratio ?? null,
        ...(ops ? { operators: ops } : {}),
      },
      peer
        ? `engine ${perS(best.tokensPerS)} tokens/s, peak ${mib(best.peakRssBytes)} vs ${peer.impl} ${perS(peer.tokensPerS)} tokens/s (${peer.layout}), peak ${mib(peer.peakRssBytes)}: ratio ${ratio!.toFixed(2)}`
        : `engine ${perS(best.tokensPerS)} tokens/s, peak ${mib(best.peakRssBytes)} (no PyTorch peer measured)`,
    );
  } finally {
    if (profileDir) await rm(profileDir, { recursive: true, force: true });
  }
}
