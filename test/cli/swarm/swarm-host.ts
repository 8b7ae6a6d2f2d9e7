// A host process for local-swarm.test.ts: starts a swarm with one miner in the folder given as
// its argument, prints one line once the miner has its stage, then waits to be killed.
import { LocalSwarm } from '../../../cli/swarm/local-swarm.ts';
import { caseSpec } from './helpers.ts';

const swarm = new LocalSwarm({ dir: process.argv[2], spec: caseSpec({ preset: 'tiny', stages: 1, samples: 2, rows: 1, rounds: 1000, seed: 1, lr: 1e-3 }), threadsPerMiner: 1 });
await swarm.start();
const stage = await swarm.minerAssigned(await swarm.addMiner());
process.stdout.write(`${JSON.stringify({ stage })}\n`);
setInterval(() => {}, 60_000);
