// The desktop app's controllers end to end, without Electron's windowing: a real local swarm
// (orchestrator and a miner process), the app's controllers in the browser host, and every action
// pressed through the same typed bridge the renderer uses, over a real WebSocket. The app's
// training worker is a real child process. Only the power source is simulated (this machine has
// no battery): the test flips it to "on battery" as the OS would.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { LocalSwarm } from '../../../cli/swarm/local-swarm.ts';
import { type AppController, type PowerSnapshot, type PowerSource, AppController as Controller } from '../../../electron/core/app.ts';
import { type BridgeConnection, connectBridge } from '../../../electron/browser-host/client.ts';
import { nodeAppWorld } from '../../../electron/browser-host/node-world.ts';
import { type BrowserHost, startBrowserHost } from '../../../electron/browser-host/server.ts';
import type { AppState } from '../../../electron/ipc-contract.ts';
import { tempDir } from '../../cli/run-tah.ts';
import { type SwarmCase, assertEqualWeights, caseSpec, compareWithSingle, singleProcessWeights } from '../../cli/swarm/helpers.ts';

const CASE: SwarmCase = { preset: 'tiny', stages: 2, samples: 4, rows: 2, rounds: 14, seed: 11, lr: 1e-2 };

/** The OS's power state, as a test sets it. */
class TestPower implements PowerSource {
  snapshot: PowerSnapshot = { onBattery: false, batteryPercent: 80, thermal: 'nominal', idleSeconds: 0 };
  private readonly listeners = new Set<(e: 'change' | 'suspend' | 'resume') => void>();
  read(): PowerSnapshot {
    return { ...this.snapshot };
  }
  subscribe(l: (e: 'change' | 'suspend' | 'resume') => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(change: Partial<PowerSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...change };
    for (const l of this.listeners) l('change');
  }
}

let dir = '';
let cleanup: () => Promise<void> = async () => {};
let swarm: LocalSwarm;
let controller: AppController;
let host: BrowserHost;
let bridge: BridgeConnection;
const power = new TestPower();

before(async () => {
  ({ dir, cleanup } = await tempDir('tah-app-'));
  swarm = new LocalSwarm({ dir: join(dir, 'swarm'), spec: caseSpec(CASE, { heartbeat_timeout_s: 5, lease_ttl_s: 20 }), threadsPerMiner: 1 });
  await swarm.start();
  await swarm.addMiner();
  const world = await nodeAppWorld({ dataDir: join(dir, 'app'), power, tune: { backoffMs: [500], stopGraceMs: 15_000, cores: 2 } });
  controller = new Controller(world);
  await controller.init();
  host = await startBrowserHost({ controller });
  bridge = await connectBridge(host.bridgeUrl, WebSocket as never);
});

after(async () => {
  bridge?.close();
  await host?.close();
  await controller?.dispose();
  await swarm?.close();
  await cleanup();
});

/** Resolves with the first pushed state that satisfies `ok`, or fails after `ms` with the last one seen. */
function waitFor(ok: (s: AppState) => boolean, ms: number, what: string): Promise<AppState> {
  return new Promise((resolve, reject) => {
    let last: AppState | null = bridge.latest;
    const off = bridge.onState((s) => {
      last = s;
      if (ok(s)) {
        clearTimeout(timer);
        off();
        resolve(s);
      }
    });
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${what}: not within ${ms} ms; last state ${JSON.stringify(last?.training)}`));
    }, ms);
    void bridge.call('state:get').then((s) => {
      if (ok(s)) {
        clearTimeout(timer);
        off();
        resolve(s);
      }
    });
  });
}

function leasesHeldBy(hotkey: string): { leased: number; status: string | undefined } {
  const db = new Database(join(dir, 'swarm', 'orchestrator.db'), { readonly: true, fileMustExist: true });
  try {
    const leased = db.prepare(`SELECT COUNT(*) AS n FROM work_items WHERE leased_to = ? AND status = 'leased'`).get(hotkey) as { n: number };
    const p = db.prepare('SELECT status FROM participants WHERE hotkey = ?').get(hotkey) as { status: string } | undefined;
    return { leased: leased.n, status: p?.status };
  } finally {
    db.close();
  }
}

test('onboarding through the bridge: clear refusals first, then a wallet and the swarm', async () => {
  const s = await bridge.call('state:get');
  assert.equal(s.training.status, 'stopped');
  assert.equal(s.wallet, null);
  await assert.rejects(bridge.call('training:start'), /Create or import a wallet first/);
  // Plain Node has no keyring: the key would be stored unencrypted, which needs the user's consent.
  await assert.rejects(bridge.call('wallet:create'), /no keyring/i);
  await assert.rejects(bridge.call('wallet:import', { mnemonic: 'not a real recovery phrase at all' }), /recovery phrase/i);
  await assert.rejects(bridge.call('settings:update', { orchestratorUrl: 'ftp://nowhere' }), /orchestratorUrl: an http:\/\/ or https:\/\/ address/);
  // A malformed call never reaches the controller, and the main process carries on.
  const raw = bridge.call as (channel: string, ...args: unknown[]) => Promise<unknown>;
  await assert.rejects(raw('training:pause', { minutes: -5 }), /training:pause: .*minutes/);
  await assert.rejects(raw('no:such-call'), /unknown call "no:such-call"/);

  await bridge.call('settings:update', { allowPlaintextKey: true });
  const created = await bridge.call('wallet:create');
  assert.equal(created.mnemonic.split(' ').length, 12);
  assert.match(created.wallet.address, /^5[1-9A-HJ-NP-Za-km-z]{47}$/);
  assert.equal(created.wallet.backedUp, false);
  await assert.rejects(bridge.call('wallet:set-payout', { address: '5NotAnAddress' }), /not a valid SS58 address/);
  await assert.rejects(bridge.call('training:start'), /Finish setting up/);
  await bridge.call('settings:update', { orchestratorUrl: swarm.url, runId: swarm.runId, onboarded: true });
});

test('Start trains: a stage is assigned and tokens flow; a simulated switch to battery pauses within 2 s', { timeout: 120_000 }, async () => {
  await bridge.call('training:start');
  const training = await waitFor((s) => s.training.status === 'training' && s.training.stage !== null && s.training.tokensPerS > 0, 60_000, 'training with a stage and tokens/s');
  assert.equal(training.training.stage!.stageCount, 2);
  assert.equal(training.training.stage!.runId, swarm.runId);

  const unplugged = performance.now();
  power.set({ onBattery: true });
  const paused = await waitFor((s) => s.training.status === 'paused', 2_000, 'paused on battery');
  console.log(`# paused ${(performance.now() - unplugged).toFixed(0)} ms after the switch to battery`);
  assert.equal(paused.training.pauseReason, 'on-battery');
  assert.match(paused.training.reason!, /battery/);
  assert.equal(controller.workerPid, null, 'the worker process has gone');

  power.set({ onBattery: false });
  await waitFor((s) => s.training.status === 'training' && s.training.tokensPerS > 0, 60_000, 'training again on mains power');
});

test('a worker killed mid-round is restarted, the state says why, and the swarm loses no work', { timeout: 180_000 }, async () => {
  await waitFor((s) => s.training.minerState === 'forward' || s.training.minerState === 'backward', 30_000, 'mid-round');
  const pid = controller.workerPid!;
  process.kill(pid, 'SIGKILL');
  const restarting = await waitFor((s) => s.training.status === 'restarting', 10_000, 'restarting');
  assert.match(restarting.training.reason!, /stopped unexpectedly \(signal SIGKILL\)/);
  assert.match(restarting.training.lastCrash!.reason, /SIGKILL/);
  const again = await waitFor((s) => s.training.status === 'training' && s.training.restarts === 1, 60_000, 'training after the restart');
  assert.notEqual(controller.workerPid, pid);
  assert.ok(again.training.lastCrash, 'the crash stays visible after the restart');
});

test('Stop: within 10 s the worker is idle and the orchestrator holds no lease of it', { timeout: 60_000 }, async () => {
  const hotkey = (await bridge.call('state:get')).wallet!.address;
  await waitFor((s) => s.training.status === 'training', 30_000, 'training');
  const pressed = performance.now();
  await bridge.call('training:stop');
  await waitFor((s) => s.training.status === 'stopped', 10_000, 'stopped');
  const tookMs = performance.now() - pressed;
  console.log(`# stopped in ${tookMs.toFixed(0)} ms`);
  assert.ok(tookMs < 10_000);
  assert.equal(controller.workerPid, null);
  const held = leasesHeldBy(hotkey);
  assert.equal(held.leased, 0, 'no lease left dangling');
  assert.equal(held.status, 'gone', 'the worker told the orchestrator it left');
});

test('started again, the run finishes with the weights one process computes on the same samples', { timeout: 240_000 }, async () => {
  const reference = singleProcessWeights(CASE);
  await bridge.call('training:start');
  const status = await swarm.waitFinished();
  assert.equal(status.status, 'finished');
  const done = await waitFor((s) => s.training.status === 'stopped', 30_000, 'stopped at the end of the run');
  assert.ok(done.notices.some((n) => n.id === 'run-finished'));
  assertEqualWeights(await compareWithSingle(CASE, join(dir, 'swarm'), status, await reference));
});
