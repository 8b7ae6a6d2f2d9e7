// What `tah miner` and `tah validator` share: their flags, and joining — the wallet's key, the
// device, a retrying client of the orchestrator, the hardware report and the data, as the
// options of a Replica (worker/miner/replica.ts).
import { availableParallelism, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { httpUrl, int } from '../args.ts';
import { OrchestratorClient } from '../../orchestrator-client/client.ts';
import { type Wallet, defaultWalletPath, loadWallet } from '../../orchestrator-client/wallet.ts';
import { loadBrownCorpus } from '../../worker/data/brown.ts';
import { type Dataset, buildDataset } from '../../worker/data/dataset.ts';
import { byteTokenizer } from '../../worker/data/tokenizer.ts';
import { DEVICES, chooseDevice, confirmDevice, parseDevice, probeDevices } from '../../worker/engine/session.ts';
import { localStoreTransport } from '../../worker/miner/blob-transport.ts';
import type { ReplicaOptions } from '../../worker/miner/replica.ts';
import type { Output } from '../output.ts';

export interface ParticipantFlags {
  orchestrator: string;
  wallet?: string;
  device: string;
  threads?: number;
  run?: string;
  localStore?: string;
  json?: boolean;
}

/** The flags both commands take. */
export function participantOptions(command: Command): Command {
  return command
    .requiredOption('--orchestrator <url>', 'the orchestrator, e.g. http://127.0.0.1:8080')
    .option('--wallet <file>', `hotkey file (default: ${defaultWalletPath()}; create one with tah wallet create)`)
    .addOption(new Option('--device <device>', 'execution provider').choices(DEVICES).default('auto'))
    .option('--threads <n>', 'CPU threads (default: all cores)', int(1))
    .option('--run <id>', 'the run to join (default: the newest active run)')
    .option('--local-store <dir>', "the orchestrator's local blob store, when it runs on this machine: blobs are read and written there directly, not over HTTP")
    .option('--json', 'one JSON object per line');
}

/** Checks the flags, loads the wallet and picks the device; answers a Replica's options (events aside). */
export async function joinOptions(o: ParticipantFlags, out: Output): Promise<{ wallet: Wallet; options: Omit<ReplicaOptions, 'onEvent'> }> {
  const url = httpUrl('--orchestrator', o.orchestrator);
  const wallet = await loadWallet(o.wallet ? resolve(o.wallet) : defaultWalletPath());
  for (const w of wallet.warnings) out.note(`warning: ${w}`);
  const device = await confirmDevice(chooseDevice(parseDevice(o.device), probeDevices()));
  if (device.note) out.note(device.note);
  const threads = o.threads ?? availableParallelism();
  let dataset: Dataset | undefined;
  const client = new OrchestratorClient({ baseUrl: url.toString(), keypair: wallet.keypair, attempts: 8, maxDelayMs: 5000 });
  const transport = o.localStore === undefined ? undefined : await localStoreTransport(resolve(o.localStore), (await client.health()).local_store_id);
  return {
    wallet,
    options: {
      client,
      transport,
      hardware: { device: device.provider, cores: threads, memory_bytes: totalmem(), tokens_per_s: 0 },
      runId: o.run,
      device,
      threads,
      dataset: () => (dataset ??= buildDataset(loadBrownCorpus(), byteTokenizer)),
    },
  };
}
