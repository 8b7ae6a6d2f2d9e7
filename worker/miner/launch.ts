// Starts the miner loop from a host's 'start' message: the key, the orchestrator, the data, the
// device. Used by serveMiner in a utility process (the desktop app) and by tests.
import { hexToU8a } from '@polkadot/util';
import { OrchestratorClient } from '../../orchestrator-client/client.ts';
import { keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { loadBrownCorpus } from '../data/brown.ts';
import { type Dataset, buildDataset } from '../data/dataset.ts';
import { byteTokenizer } from '../data/tokenizer.ts';
import { chooseDevice, confirmDevice, parseDevice, probeDevices } from '../engine/session.ts';
import type { HostMessage } from './host.ts';
import { Miner, type MinerEvent } from './miner.ts';

export function launchMiner(start: Extract<HostMessage, { type: 'start' }>, onEvent: (e: MinerEvent) => void): { done: Promise<'finished' | 'stopped'>; stop: () => void } {
  let miner: Miner | null = null;
  let stopped = false;
  const done = (async () => {
    await ready();
    const device = await confirmDevice(chooseDevice(parseDevice(start.device ?? 'auto'), probeDevices()));
    const seed = hexToU8a(start.seedHex.startsWith('0x') ? start.seedHex : `0x${start.seedHex}`);
    const client = new OrchestratorClient({ baseUrl: start.orchestrator, keypair: keypairFromSeed(seed), attempts: 8, maxDelayMs: 5000 });
    let dataset: Dataset | undefined;
    miner = new Miner({ client, hardware: start.hardware, runId: start.runId, device, threads: start.threads, dataset: () => (dataset ??= buildDataset(loadBrownCorpus(), byteTokenizer)), onEvent });
    if (stopped) miner.stop();
    return miner.run();
  })();
  return {
    done,
    stop: () => {
      stopped = true;
      miner?.stop();
    },
  };
}
