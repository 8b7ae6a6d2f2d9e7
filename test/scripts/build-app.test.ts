// The desktop app's bundles: built as Electron will load them, with only Electron and the native
// and data packages left outside; and the bundled training worker, run by Node as the utility
// process would run it, trains a real run from start to end through the host's messages.
import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildApp } from '../../scripts/build-app.ts';
import { nodeWorkerSpawner } from '../../electron/core/node-worker.ts';
import { startOrchestrator } from '../../orchestrator/service.ts';
import { MINER_NODE_FLAGS, type MinerMessage } from '../../worker/miner/host.ts';
import { tempDir } from '../cli/run-tah.ts';

let dir = '';
let cleanup: () => Promise<void> = async () => {};
/** Inside the repository, as in the packaged app: the bundles find onnxruntime-node in node_modules. */
const APP = fileURLToPath(new URL(`../../dist/test-app-${process.pid}`, import.meta.url));
before(async () => {
  ({ dir, cleanup } = await tempDir('tah-build-app-'));
  await buildApp(APP);
});
after(async () => {
  await rm(APP, { recursive: true, force: true });
  await cleanup();
});

test('main, preload and worker are bundled; the preload needs nothing but electron', async () => {
  const files = await readdir(APP);
  for (const f of ['main.js', 'preload.cjs', 'worker.js', 'presets', 'tray']) assert.ok(files.includes(f), `${f} missing`);
  const preload = await readFile(join(APP, 'preload.cjs'), 'utf8');
  assert.deepEqual([...new Set(preload.match(/require\("[^"]+"\)/g))], ['require("electron")']);
  assert.ok(preload.length < 8_000, `the preload is ${preload.length} bytes: it should hold the bridge only`);
  assert.match(preload, /exposeInMainWorld\("tah"/);
  const main = await readFile(join(APP, 'main.js'), 'utf8');
  assert.match(main, /from "electron"/);
  const trays = await readdir(join(APP, 'tray'));
  for (const icon of ['idle', 'training', 'paused', 'error']) assert.ok(trays.includes(`${icon}Template.png`) && trays.includes(`${icon}.png`), icon);
});

test('the bundled worker trains a run to its end behind the host messages', { timeout: 120_000 }, async () => {
  await writeFile(join(dir, 'run.json'), JSON.stringify({ id: 'r', preset: 'tiny', stages: [[0, 3]], samples_per_round: 2, rows_per_sample: 2, rounds: 3 }));
  const orch = await startOrchestrator({ db: `sqlite:${join(dir, 'o.db')}`, storage: `local:${join(dir, 'blobs')}`, runFile: join(dir, 'run.json') });
  try {
    const output: string[] = [];
    const worker = nodeWorkerSpawner({ entry: join(APP, 'worker.js'), execArgv: [...MINER_NODE_FLAGS], onOutput: (line) => output.push(line) })();
    const messages: MinerMessage[] = [];
    const exited = new Promise<string>((resolve) => worker.onExit((how) => resolve(how)));
    worker.onMessage((m) => messages.push(m as MinerMessage));
    worker.postMessage({ type: 'start', orchestrator: orch.url, seedHex: '0a'.repeat(32), hardware: { device: 'cpu', cores: 1, memory_bytes: 8 * 2 ** 30, tokens_per_s: 0 }, threads: 1 });
    assert.equal(await exited, 'exit code 0', output.join('\n'));
    assert.deepEqual(messages.at(-1), { type: 'ended', result: 'finished' });
    assert.equal(messages.filter((m) => m.type === 'applied').length, 3);
    assert.ok(messages.some((m) => m.type === 'loss' && Number.isFinite(m.loss)));
  } finally {
    await orch.close();
  }
});
