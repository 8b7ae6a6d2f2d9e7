// The miner's message interface, as the desktop app's utility process will use it: a real
// orchestrator over HTTP, the miner loop behind a MessagePort, start and stop as messages.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { u8aToHex } from '@polkadot/util';
import { keypairFromSeed, ready } from '../../../orchestrator-client/signing.ts';
import { startOrchestrator } from '../../../orchestrator/service.ts';
import { MINER_NODE_FLAGS, type MinerMessage, parseHostMessage, serveMiner } from '../../../worker/miner/host.ts';
import { launchMiner } from '../../../worker/miner/launch.ts';

test('the tah executable starts node with the miner flags, and runs as a program', async () => {
  const bin = new URL('../../../bin/tah.js', import.meta.url);
  const shebang = (await readFile(bin, 'utf8')).split('\n')[0];
  assert.match(shebang, /^#!\/usr\/bin\/env -S node /);
  for (const flag of MINER_NODE_FLAGS) assert.ok(shebang.split(' ').includes(flag), `${flag} missing from ${shebang}`);
  // Executed directly (as npm's bin link is), so the kernel and env read the shebang.
  const { stdout } = await promisify(execFile)(bin.pathname, ['--help']);
  assert.match(stdout, /Usage: tah/);
});

test('host messages are checked: a bad one is refused with what is wrong', () => {
  assert.throws(() => parseHostMessage(null), /not an object/);
  assert.throws(() => parseHostMessage({ type: 'go' }), /unknown type "go"/);
  assert.throws(() => parseHostMessage({ type: 'start', orchestrator: 'ftp://x', seedHex: '00'.repeat(32), hardware: {} }), /http\(s\) orchestrator URL/);
  assert.throws(() => parseHostMessage({ type: 'start', orchestrator: 'http://x', seedHex: 'abc', hardware: {} }), /32-byte hex seed/);
  assert.deepEqual(parseHostMessage({ type: 'stop' }), { type: 'stop' });
});

test('a miner behind a message port works, reports events, and stops within seconds when told', { timeout: 120_000 }, async () => {
  await ready();
  const dir = await mkdtemp(join(tmpdir(), 'tah-host-'));
  await writeFile(join(dir, 'run.json'), JSON.stringify({ id: 'r', preset: 'tiny', stages: [[0, 3]], samples_per_round: 2, rows_per_sample: 2, rounds: 100000 }));
  const orch = await startOrchestrator({ db: `sqlite:${join(dir, 'o.db')}`, storage: `local:${join(dir, 'blobs')}`, runFile: join(dir, 'run.json') });
  const { port1, port2 } = new MessageChannel();
  try {
    const served = serveMiner(port1, launchMiner);
    const seed = new Uint8Array(32).fill(9);
    const events: MinerMessage[] = [];
    let ended: (m: MinerMessage) => void = () => {};
    const endedMessage = new Promise<MinerMessage>((resolve) => (ended = resolve));
    const applied = new Promise<void>((resolve) => {
      port2.on('message', (m: MinerMessage) => {
        events.push(m);
        if (m.type === 'applied' && m.version >= 2) resolve();
        if (m.type === 'ended') ended(m);
      });
    });
    port2.postMessage({ type: 'start', orchestrator: orch.url, seedHex: u8aToHex(seed), hardware: { device: 'cpu', cores: 1, memory_bytes: 8 * 2 ** 30, tokens_per_s: 0 }, threads: 1 });
    await applied;
    assert.ok(events.some((e) => e.type === 'assigned' && e.stage === 0));
    assert.ok(events.some((e) => e.type === 'loss' && Number.isFinite(e.loss)));
    assert.ok(events.some((e) => e.type === 'status' && e.state === 'forward'));

    const asked = performance.now();
    port2.postMessage({ type: 'stop' });
    assert.deepEqual(await endedMessage, { type: 'ended', result: 'stopped' });
    await served;
    const tookS = (performance.now() - asked) / 1000;
    assert.ok(tookS < 5, `stopped in ${tookS.toFixed(1)} s`);
    // It said it was leaving: nothing stays leased to it, and it is no longer a member.
    const me = keypairFromSeed(seed).address;
    const p = await orch.database.db.selectFrom('participants').select('status').where('hotkey', '=', me).executeTakeFirstOrThrow();
    assert.equal(p.status, 'gone');
    const held = await orch.database.db.selectFrom('work_items').select('id').where('leased_to', '=', me).where('status', '=', 'leased').execute();
    assert.equal(held.length, 0);
  } finally {
    port2.close();
    await orch.close();
    await rm(dir, { recursive: true, force: true });
  }
});
