// `tah checkpoint list|export|rollback`: the operator's view of a run's versions (every round's
// stage states, with the hashes the replicas agreed on), a stored version written as one
// whole-model checkpoint, and taking the run back to a stored version.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { OrchestratorClient } from '../../orchestrator-client/client.ts';
import { stateDigest } from '../../orchestrator-client/blobs.ts';
import type { Version } from '../../orchestrator-client/protocol.ts';
import { downloadFromUrl } from '../../orchestrator-client/transfer.ts';
import { defaultWalletPath, loadWallet } from '../../orchestrator-client/wallet.ts';
import { assembleStages } from '../../worker/checkpoint/assemble.ts';
import { saveCheckpoint } from '../../worker/checkpoint/checkpoint.ts';
import { exportHuggingFace } from '../../worker/checkpoint/hf-export.ts';
import { decodeBlob } from '../../worker/miner/blobs.ts';
import { runModelConfig } from '../../worker/model/config.ts';
import { ParamLayout } from '../../worker/model/params.ts';
import { toCheckpoint } from '../../worker/train/trainer.ts';
import { httpUrl, int } from '../args.ts';
import { makeOutput, type Output } from '../output.ts';
import type { Guard } from './wallet.ts';

interface CommonFlags {
  orchestrator: string;
  wallet?: string;
  run: string;
  json?: boolean;
}

async function connect(o: CommonFlags, out: Output): Promise<OrchestratorClient> {
  const url = httpUrl('--orchestrator', o.orchestrator);
  const wallet = await loadWallet(o.wallet ? resolve(o.wallet) : defaultWalletPath());
  for (const w of wallet.warnings) out.note(`warning: ${w}`);
  return new OrchestratorClient({ baseUrl: url.toString(), keypair: wallet.keypair, attempts: 3 });
}

function describe(v: Version): string {
  const hashes = v.stages.map((s) => `${s.stage}:${s.hash ? s.hash.slice(0, 10) : '–'.padEnd(10)}${s.diverged ? ` (${s.diverged} diverged)` : ''}`).join('  ');
  return `${String(v.rounds).padStart(7)}  ${v.stored ? 'stored' : '      '}  ${hashes}`;
}

export async function checkpointListCommand(o: CommonFlags & { all?: boolean }): Promise<void> {
  const out = makeOutput(o.json ?? false);
  const client = await connect(o, out);
  const r = await client.versions(o.run);
  const shown = o.all ? r.versions : r.versions.filter((v) => v.stored || v.rounds >= r.rounds_done - 5);
  for (const v of shown) out.event('version', { ...v });
  const stored = r.versions.filter((v) => v.stored).map((v) => v.rounds);
  out.summary(
    { run_id: r.run_id, rounds_done: r.rounds_done, versions: r.versions.length, stored },
    [`run ${r.run_id}: ${r.rounds_done} rounds done; stored versions: ${stored.join(', ') || 'none'}`, ' rounds  stored  stage:hash', ...shown.map(describe)].join('\n'),
  );
}

export async function checkpointExportCommand(o: CommonFlags & { version: number; out?: string; hf?: string; overwrite?: boolean }): Promise<void> {
  const out = makeOutput(o.json ?? false);
  if ((o.out === undefined) === (o.hf === undefined)) throw new Error('give one of --out FILE (a tah checkpoint) or --hf DIR (a Hugging Face folder)');
  const client = await connect(o, out);
  const v = await client.storedVersion(o.run, o.version);
  const config = runModelConfig(await client.run(v.run_id));
  if (config.bottleneck_dim !== undefined && o.hf !== undefined) throw new Error('this run compresses its stage boundaries with bottlenecks, which a Hugging Face Llama does not have: export with --out');
  const bar = out.progress('download', v.stages.length);
  const stages = [];
  for (const [i, s] of v.stages.entries()) {
    bar.update(i, `stage ${s.stage}`);
    const span = { layers: s.layers, hasEmbed: s.stage === 0, hasHead: s.stage === v.stages.length - 1 };
    const bytes = await downloadFromUrl(s.blob.url, { maxBytes: s.blob.bytes });
    const { tensors } = decodeBlob(s.blob.key, bytes, 'snapshot', { rows: 1, seqLen: config.seq_len, dModel: config.d_model, length: new ParamLayout(config, span).size });
    const [params, m, vv] = [tensors.get('params')!, tensors.get('m')!, tensors.get('v')!];
    if (s.hash !== null && stateDigest(params, m, vv, v.rounds) !== s.hash) throw new Error(`stage ${s.stage}'s stored state does not have its hash ${s.hash.slice(0, 12)}…`);
    stages.push({ span, params, m, v: vv });
  }
  bar.update(v.stages.length, 'assembled');
  bar.stop();
  const { layout, state } = assembleStages(config, stages);
  const ckpt = toCheckpoint(layout, state, v.rounds, { source: 'tah checkpoint export', run: v.run_id, rounds: String(v.rounds) });
  const file = resolve(o.out ?? `${o.hf}.safetensors`);
  await saveCheckpoint(file, ckpt);
  if (o.hf !== undefined) await exportHuggingFace(file, resolve(o.hf), { overwrite: o.overwrite ?? false });
  out.summary({ run_id: v.run_id, rounds: v.rounds, checkpoint: file, ...(o.hf ? { hf: resolve(o.hf) } : {}), parameters: layout.size }, `version ${v.rounds} of run ${v.run_id} written to ${o.hf ? resolve(o.hf) : file}`);
}

export async function checkpointRollbackCommand(o: CommonFlags & { to: number; reason?: string }): Promise<void> {
  const out = makeOutput(o.json ?? false);
  const client = await connect(o, out);
  const r = await client.rollback(o.run, { to: o.to, reason: o.reason ?? 'operator' });
  out.summary({ ...r }, `run ${r.run_id} rolled back to ${r.rounds} rounds (${r.discarded} discarded); the miners reload that version and go on`);
}

export function registerCheckpointCommand(program: Command, guarded: Guard): void {
  const cmd = program.command('checkpoint').description("a run's versions: list them, export one, roll the run back to one (operator)");
  const common = (c: Command): Command =>
    c
      .requiredOption('--orchestrator <url>', 'the orchestrator, e.g. http://127.0.0.1:8080')
      .option('--wallet <file>', `the operator's hotkey file (default: ${defaultWalletPath()})`)
      .option('--run <id>', 'the run', 'swarm')
      .option('--json', 'one JSON object per line');
  common(cmd.command('list').description('every version: the hash each stage agreed on, and which are stored').option('--all', 'every round, not only stored and recent ones')).action(
    guarded(async (o: CommonFlags & { all?: boolean }) => checkpointListCommand(o)),
  );
  common(
    cmd
      .command('export')
      .description('write a stored version as one whole-model checkpoint (or a Hugging Face folder)')
      .requiredOption('--version <rounds>', 'the version: rounds done', int(0))
      .option('--out <file>', 'a tah checkpoint (.safetensors)')
      .option('--hf <dir>', 'a Hugging Face folder (config.json + model.safetensors)')
      .option('--overwrite', 'replace a non-empty --hf folder'),
  ).action(guarded(async (o: CommonFlags & { version: number; out?: string; hf?: string; overwrite?: boolean }) => checkpointExportCommand(o)));
  common(
    cmd
      .command('rollback')
      .description('take the run back to a stored version; later rounds are discarded and training goes on from there')
      .requiredOption('--to <rounds>', 'the stored version to go back to', int(0))
      .option('--reason <text>', 'recorded with the rollback'),
  ).action(guarded(async (o: CommonFlags & { to: number; reason?: string }) => checkpointRollbackCommand(o)));
}
