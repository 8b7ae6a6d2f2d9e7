// `tah miner`: join a swarm with this machine. Registers with the orchestrator under the wallet's
// hotkey, holds the stage it is given, and works until the run ends or Ctrl-C (which finishes or
// hands back the task in hand and tells the orchestrator, so nothing is left half-done).
import { availableParallelism, totalmem } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { httpUrl, int } from '../args.ts';
import { OrchestratorClient } from '../../orchestrator-client/client.ts';
import { defaultWalletPath, loadWallet } from '../../orchestrator-client/wallet.ts';
import { loadBrownCorpus } from '../../worker/data/brown.ts';
import { type Dataset, buildDataset } from '../../worker/data/dataset.ts';
import { byteTokenizer } from '../../worker/data/tokenizer.ts';
import { DEVICES, chooseDevice, confirmDevice, parseDevice, probeDevices } from '../../worker/engine/session.ts';
import { ADVERSARIES, type Adversary, parseFaults } from '../../worker/miner/faults.ts';
import { Miner, type MinerEvent } from '../../worker/miner/miner.ts';
import { makeOutput, onInterrupt } from '../output.ts';
import type { Guard } from './wallet.ts';

interface MinerFlags {
  orchestrator: string;
  wallet?: string;
  device: string;
  threads?: number;
  run?: string;
  json?: boolean;
  adversary?: Adversary;
}


export function registerMinerCommand(program: Command, guarded: Guard): void {
  program
    .command('miner')
    .description('train one stage of the model with a swarm: register, take work, share gradients')
    .requiredOption('--orchestrator <url>', 'the orchestrator, e.g. http://127.0.0.1:8080')
    .option('--wallet <file>', `hotkey file (default: ${defaultWalletPath()}; create one with tah wallet create)`)
    .addOption(new Option('--device <device>', 'execution provider').choices(DEVICES).default('auto'))
    .option('--threads <n>', 'CPU threads (default: all cores)', int(1))
    .option('--run <id>', 'the run to join (default: the newest active run)')
    .option('--json', 'one JSON object per line')
    // For tests of the swarm's defences: cheat at every work item (worker/miner/faults.ts).
    .addOption(new Option('--adversary <mode>').choices(ADVERSARIES).hideHelp())
    .action(guarded(async (o: MinerFlags) => runMiner(o)));
}

async function runMiner(o: MinerFlags): Promise<void> {
  const out = makeOutput(o.json ?? false);
  const url = httpUrl('--orchestrator', o.orchestrator);
  const wallet = await loadWallet(o.wallet ? resolve(o.wallet) : defaultWalletPath());
  for (const w of wallet.warnings) out.note(`warning: ${w}`);
  const device = await confirmDevice(chooseDevice(parseDevice(o.device), probeDevices()));
  if (device.note) out.note(device.note);
  const client = new OrchestratorClient({ baseUrl: url.toString(), keypair: wallet.keypair, attempts: 8, maxDelayMs: 5000 });
  let dataset: Dataset | undefined;
  const threads = o.threads ?? availableParallelism();

  const started = Date.now();
  let stage: number | null = null;
  let state = 'starting';
  let version = 0;
  let loss: number | null = null;
  let tokensPerS = 0;
  let items = 0;
  const show = (): void => {
    if (out.json || !process.stderr.isTTY) return;
    const l = loss === null ? '–' : loss.toFixed(3);
    process.stderr.write(`\r\x1b[2Kstage ${stage ?? '–'}  ${state.padEnd(8)} round ${version}  loss ${l}  ${tokensPerS.toFixed(0)} tok/s  ${items} items`);
  };
  const onEvent = (e: MinerEvent): void => {
    if (out.json) {
      const { type, ...fields } = e;
      out.event(type, fields);
    }
    switch (e.type) {
      case 'assigned':
        stage = e.stage;
        if (!out.json) out.note(`${wallet.address}: stage ${e.stage} of ${e.stage_count} (layers ${e.layers[0]}-${e.layers[1]}, ${e.params.toLocaleString()} parameters) in run ${e.run_id}`);
        break;
      case 'status':
        state = e.state;
        version = e.version;
        break;
      case 'applied':
        version = e.version;
        break;
      case 'loss':
        loss = e.loss;
        break;
      case 'throughput':
        tokensPerS = e.tokens_per_s;
        items = e.items;
        break;
      case 'error':
        if (!out.json) process.stderr.write(`\n${e.recoverable ? 'warning' : 'error'}: ${e.message}\n`);
        break;
      default:
    }
    show();
  };
  const miner = new Miner({
    client,
    hardware: { device: device.provider, cores: threads, memory_bytes: totalmem(), tokens_per_s: 0 },
    runId: o.run,
    device,
    threads,
    dataset: () => (dataset ??= buildDataset(loadBrownCorpus(), byteTokenizer)),
    onEvent,
    // Deliberate misbehaviour, for tests of the swarm's defences (worker/miner/faults.ts).
    faults: { ...parseFaults(process.env.TAH_FAULTS), ...(o.adversary ? { adversary: o.adversary } : {}) },
  });
  const interrupt = onInterrupt(out, 'stopping: finishing the task in hand (Ctrl-C again to quit at once)', () => miner.stop(), ['SIGINT', 'SIGTERM']);
  const result = await miner.run();
  interrupt.dispose();
  if (!out.json && process.stderr.isTTY) process.stderr.write('\n');
  const cpu = process.cpuUsage();
  out.summary({ ok: true, result, hotkey: wallet.address, stage, rounds: version, items, tokens_per_s: tokensPerS, wall_s: (Date.now() - started) / 1000, cpu_s: (cpu.user + cpu.system) / 1e6 }, `miner ${result}: stage ${stage ?? '–'}, ${version} rounds, ${items} items`);
}
