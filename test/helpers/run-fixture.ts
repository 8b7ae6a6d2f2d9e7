// The run the hostile-request tests aim at: run1 (tiny preset, two stages of eight samples), miner
// A on stage 0 and miner B on stage 1, a validator, and one lease held by miner A (an activation
// forward), so that every route has something real behind it.
import assert from 'node:assert/strict';
import { OrchestratorClient } from '../../orchestrator-client/client.ts';
import type { Hardware, Lease } from '../../orchestrator-client/protocol.ts';
import type { Keypair } from '../../orchestrator-client/signing.ts';

const hardware: Hardware = { device: 'cpu', cores: 2, memory_bytes: 8 * 2 ** 30, tokens_per_s: 1000 };

export async function seedRun(url: string, keys: { operator: Keypair; minerA: Keypair; minerB: Keypair; validator: Keypair }, now: () => number): Promise<Lease> {
  const c = (k: Keypair): OrchestratorClient => new OrchestratorClient({ baseUrl: url, keypair: k, now, attempts: 1 });
  await c(keys.operator).createRun({ id: 'run1', preset: 'tiny', stages: [[0, 1], [2, 3]], samples_per_round: 8, lease_ttl_s: 600, heartbeat_timeout_s: 900 });
  assert.equal((await c(keys.minerA).register({ role: 'miner', hardware })).stage, 0);
  assert.equal((await c(keys.minerB).register({ role: 'miner', hardware })).stage, 1);
  await c(keys.validator).register({ role: 'validator', hardware });
  const task = (await c(keys.minerA).lease()).lease;
  assert.equal(task?.kind, 'work');
  const lease = task as Lease;
  assert.equal(lease.output.kind, 'activation');
  return lease;
}
