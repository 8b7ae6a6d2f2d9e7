// The engine's half of `tah bench engine`, run in a process of its own (bench.ts starts it with
// `node --import tsx`, from the bundled CLI too) so that its peak resident size is the engine's
// alone, as the PyTorch side's is that of the python process that measured it. It takes one job
// as a JSON argument and prints one JSON line: tokens/s, seconds per step and the peak RSS.
import { pathToFileURL } from 'node:url';
import type { DeviceChoice } from '../../worker/engine/session.ts';
import type { ModelConfig } from '../../worker/model/config.ts';
import { DEFAULT_ADAMW } from '../../worker/optim/adamw.ts';
import { Trainer, freshState } from '../../worker/train/trainer.ts';

export interface EngineJob {
  config: ModelConfig;
  steps: number;
  threads: number;
  device: DeviceChoice;
  /** ONNX Runtime's profile goes to files with this prefix (the parent sums them up). */
  profilePrefix?: string;
}

export interface EngineResult {
  tokens_per_s: number;
  step_s: number;
  /** Peak resident size of this process up to the end of the timed steps. */
  peak_rss_bytes: number;
}

/** process.resourceUsage().maxRSS is in KiB on every platform (libuv converts macOS's bytes). */
export const peakRssBytes = (): number => process.resourceUsage().maxRSS * 1024;

/** Two warm-up steps, then `steps` timed steps on random tokens, as the PyTorch script does. */
export async function measureEngine(job: EngineJob): Promise<EngineResult> {
  const { config } = job;
  const trainer = await Trainer.create(config, DEFAULT_ADAMW, { device: job.device, threads: job.threads, profilePrefix: job.profilePrefix });
  try {
    // One state, updated in place, as `tah train` holds it.
    const state = freshState(trainer.layout, 0);
    const n = config.batch_size * config.seq_len;
    let x = 12345;
    const tok = (): bigint => BigInt((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % config.vocab_size);
    const batch = { inputs: BigInt64Array.from({ length: n }, tok), targets: BigInt64Array.from({ length: n }, tok) };
    let t = 0;
    const step = async () => {
      await trainer.trainStep(state, state, batch, ++t, 3e-4, DEFAULT_ADAMW);
    };
    await step();
    await step();
    const start = performance.now();
    for (let i = 0; i < job.steps; i++) await step();
    const stepS = (performance.now() - start) / 1000 / job.steps;
    const peak = peakRssBytes();
    if (job.profilePrefix) trainer.endProfiling();
    return { tokens_per_s: n / stepS, step_s: stepS, peak_rss_bytes: peak };
  } finally {
    await trainer.dispose();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const job = JSON.parse(process.argv[2] ?? '') as EngineJob;
    console.log(JSON.stringify(await measureEngine(job)));
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  }
}
