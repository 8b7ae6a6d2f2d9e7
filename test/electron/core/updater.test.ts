// The auto-update flow against a real local HTTP server, with electron-updater itself doing the
// work (its generic provider, staged rollouts, sha512 check and download cache) under Node
// (updater-node.ts): the server serves latest-<platform>.yml and a blob, and every case — a newer
// version, the same one, broken metadata, no server, a damaged download, a staged rollout, a
// restart while training — must end in the right state with a clear message, never in a crash or
// a half-applied update. Each case runs in its own temp folder; timers are driven by the test.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { AppController } from '../../../electron/core/app.ts';
import { SettingsStore } from '../../../electron/core/settings.ts';
import { type Timers, type UpdateHost, UpdateController, type Updater, CHECK_INTERVAL_MS, FIRST_CHECK_DELAY_MS } from '../../../electron/core/updater.ts';
import { createNodeUpdater } from '../../../electron/core/updater-node.ts';
import type { UpdaterEvent } from '../../../electron/core/updater-state.ts';
import { WalletStore } from '../../../electron/core/wallet.ts';
import type { SpawnWorker, WorkerProcess } from '../../../electron/core/worker-host.ts';
import { plaintextBox } from '../../../electron/browser-host/node-world.ts';
import { type TrainingStatus, type UpdaterState, parseCall } from '../../../electron/ipc-contract.ts';
import type { HostMessage, MinerMessage } from '../../../worker/miner/host.ts';
import { tempDir } from '../../cli/run-tah.ts';

const CURRENT = '0.1.0';
const NEXT = '0.2.0';
const BLOB_NAME = `train-at-home-${NEXT}.AppImage`;
/** electron-updater's channel file for this machine (GenericProvider: latest-linux[-arch].yml, latest-mac.yml, latest.yml). */
const CHANNEL_FILE =
  process.platform === 'linux' ? `latest-linux${process.arch === 'x64' ? '' : `-${process.arch}`}.yml` : process.platform === 'darwin' ? 'latest-mac.yml' : 'latest.yml';
const NOW = Date.parse('2025-06-01T12:00:00Z');

const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('base64');
/** A blob big enough to arrive in several chunks. */
const BLOB = Buffer.alloc(256 * 1024, 0).map((_, i) => (i * 7 + 3) % 251) as Buffer;

/** latest-*.yml as electron-builder writes it. */
function releaseYml(opts: { version?: string; blob?: Buffer; sha512?: string; stagingPercentage?: number } = {}): string {
  const blob = opts.blob ?? BLOB;
  const sum = opts.sha512 ?? sha512(blob);
  return [
    `version: ${opts.version ?? NEXT}`,
    'files:',
    `  - url: ${BLOB_NAME}`,
    `    sha512: ${sum}`,
    `    size: ${blob.length}`,
    `path: ${BLOB_NAME}`,
    `sha512: ${sum}`,
    `releaseDate: '2025-06-01T10:00:00.000Z'`,
    ...(opts.stagingPercentage === undefined ? [] : [`stagingPercentage: ${opts.stagingPercentage}`]),
    '',
  ].join('\n');
}

/** The update server: a folder of files by name; it records what was asked and how. */
class FeedServer {
  files = new Map<string, string | Buffer>();
  /** Serve the blob in thirds, the second 1.1 s after the first: electron-updater reports progress at most once a second, so a figure below 100 % shows. */
  slowBlob = false;
  /** Send half the blob, then cut the connection. */
  cutBlob = false;
  /** Answer every request with this status. */
  status: number | null = null;
  readonly requests: { path: string; stagingId: string | undefined }[] = [];
  private server: Server | null = null;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/updates/`;
  }

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => void this.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', resolve);
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  blobRequests(): number {
    return this.requests.filter((r) => r.path.endsWith('.AppImage')).length;
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    this.requests.push({ path, stagingId: req.headers['x-user-staging-id'] as string | undefined });
    if (this.status !== null) {
      res.writeHead(this.status, { 'content-type': 'text/plain' }).end('unavailable');
      return;
    }
    const body = path.startsWith('/updates/') ? this.files.get(path.slice('/updates/'.length)) : undefined;
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    const data = Buffer.from(body);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length });
    if (this.cutBlob && path.endsWith('.AppImage')) {
      res.write(data.subarray(0, data.length >> 1));
      await sleep(100);
      res.destroy();
    } else if (this.slowBlob && path.endsWith('.AppImage')) {
      const third = Math.floor(data.length / 3);
      res.write(data.subarray(0, third));
      await sleep(1_100);
      res.write(data.subarray(third, 2 * third));
      await sleep(50);
      res.end(data.subarray(2 * third));
    } else res.end(data);
  }
}

/** Timers the test fires by hand. */
class ManualTimers implements Timers {
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  private next = 1;
  setTimeout(fn: () => void, ms: number): number {
    this.pending.set(this.next, { fn, ms });
    return this.next++;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** Runs the one pending timer; returns its delay. */
  fire(): number {
    assert.equal(this.pending.size, 1, 'one timer pending');
    const [[id, t]] = this.pending;
    this.pending.delete(id);
    t.fn();
    return t.ms;
  }
}

async function until(ok: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Case {
  dir: string;
  feed: FeedServer;
  controller: UpdateController;
  timers: ManualTimers;
  cacheDir: string;
  /** Every state the app was shown, in order. */
  seen: UpdaterState[];
  /** What happened around an install, in order. */
  order: string[];
  training: { status: TrainingStatus };
  log: string[];
}

/** A fresh folder, the update server (started unless told), the real updater under Node and the controller. */
async function setup(opts: { startServer?: boolean; dir?: string; order?: string[]; noInstaller?: boolean } = {}): Promise<Case> {
  let dir = opts.dir;
  if (!dir) {
    const t = await tempDir('updater');
    cleanups.push(t.cleanup);
    dir = t.dir;
  }
  const feed = await new FeedServer().start();
  // Not started: a port that was free a moment ago, where nothing listens until the test says.
  if (opts.startServer === false) await feed.close();
  cleanups.push(() => feed.close());
  const order = opts.order ?? [];
  const log: string[] = [];
  const { updater, cacheDir } = await createNodeUpdater({
    dir,
    version: CURRENT,
    feedUrl: feed.url,
    logger: { info: (m: unknown) => log.push(`info ${String(m)}`), warn: (m: unknown) => log.push(`warn ${String(m)}`), error: (m: unknown) => log.push(`error ${String(m)}`) },
    // What would install and restart the app, recorded in one ordered list.
    install: opts.noInstaller ? undefined : (file) => order.push(`install ${file}`),
    onRelaunch: () => order.push('relaunch'),
    onQuit: () => order.push('quit'),
  });
  const real: Updater = updater; // electron-updater's own class has the surface the controller needs
  const timers = new ManualTimers();
  const controller = new UpdateController({ updater: real, timers, now: () => NOW, log: (level, m) => log.push(`${level} ${m}`) });
  cleanups.push(async () => {
    controller.dispose();
    await controller.settled();
  });
  const seen: UpdaterState[] = [];
  const training = { status: 'stopped' as TrainingStatus };
  const host: UpdateHost = {
    updaterEvent: () => seen.push(controller.state),
    trainingStatus: () => training.status,
    stopTraining: async () => {
      order.push('stop training');
      await sleep(20);
      training.status = 'stopped';
      order.push('training stopped');
    },
  };
  controller.attach(host);
  return { dir, feed, controller, timers, cacheDir, seen, order, training, log };
}

/** The staging ids the checks carried (x-user-staging-id on the channel file's requests). */
function stagingIds(c: Case): (string | undefined)[] {
  return [...new Set(c.feed.requests.filter((r) => r.path.endsWith('.yml')).map((r) => r.stagingId))];
}

async function pendingFiles(c: Case): Promise<string[]> {
  const pending = join(c.cacheDir, 'pending');
  return existsSync(pending) ? (await readdir(pending)).sort() : [];
}

/** Checks and waits until the download, if any, is over. */
async function checkAndSettle(c: Case): Promise<UpdaterState> {
  await c.controller.check();
  await c.controller.settled();
  return c.controller.state;
}

test('a newer version: available → downloading with progress → ready, the verified file in the cache', async () => {
  const c = await setup();
  c.feed.files.set(CHANNEL_FILE, releaseYml());
  c.feed.files.set(BLOB_NAME, BLOB);
  c.feed.slowBlob = true;

  const afterCheck = await c.controller.check();
  assert.ok(afterCheck.status === 'available' || afterCheck.status === 'downloading', `after the check: ${afterCheck.status}`);
  await c.controller.settled();

  assert.deepEqual(c.controller.state, { status: 'ready', version: NEXT });
  const statuses = c.seen.map((s) => s.status);
  assert.deepEqual([...new Set(statuses)], ['checking', 'available', 'downloading', 'ready'], statuses.join(' '));
  const percents = c.seen.flatMap((s) => (s.status === 'downloading' ? [s.percent] : []));
  assert.ok(percents.some((p) => p > 0 && p < 100), `a figure on the way: ${percents.join(', ')}`);
  assert.equal(percents.at(-1), 100);

  // The download sits in electron-updater's cache, whole and verified, for the install.
  const file = join(c.cacheDir, 'pending', BLOB_NAME);
  assert.equal(sha512(await readFile(file)), sha512(BLOB));
  assert.deepEqual(await pendingFiles(c), [BLOB_NAME, 'update-info.json']);
  // Staged rollouts need a stable id per install: electron-updater keeps it and sends it with the check.
  const id = (await readFile(join(c.dir, 'user-data', '.updaterId'), 'utf8')).trim();
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.deepEqual(stagingIds(c), [id]);
});

test('the same version: idle, "up to date", with the time of the check; nothing downloaded', async () => {
  const c = await setup();
  c.feed.files.set(CHANNEL_FILE, releaseYml({ version: CURRENT }));
  c.feed.files.set(BLOB_NAME, BLOB);
  assert.deepEqual(await checkAndSettle(c), { status: 'idle', lastChecked: NOW });
  assert.deepEqual(c.seen.map((s) => s.status), ['checking', 'idle']);
  assert.equal(c.feed.blobRequests(), 0);
  assert.deepEqual(await pendingFiles(c), []);

  // An older version on the server is no update either (no downgrades).
  c.feed.files.set(CHANNEL_FILE, releaseYml({ version: '0.0.9' }));
  assert.deepEqual(await checkAndSettle(c), { status: 'idle', lastChecked: NOW });
});

test('malformed metadata: the error state says the update information is not valid; nothing is downloaded', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['not YAML', 'version: [0.2.0\nfiles: {{{\n', /not readable YAML/],
    ['an HTML page', '<html><body>Welcome to nginx!</body></html>\n', /no valid version/],
    ['no version', releaseYml().replace(/^version: .*\n/m, ''), /no valid version/],
    ['no files', `version: ${NEXT}\nreleaseDate: '2025-06-01T10:00:00.000Z'\n`, /no file to download/],
    ['no checksum', releaseYml().replace(/^ *sha512: .*\n/gm, ''), /no sha512 checksum/],
    ['an empty file', '', /not valid/],
  ];
  for (const [name, yml, detail] of cases) {
    await t.test(name, async () => {
      const c = await setup();
      c.feed.files.set(CHANNEL_FILE, yml);
      c.feed.files.set(BLOB_NAME, BLOB);
      const s = await checkAndSettle(c);
      assert.equal(s.status, 'error');
      assert.match(s.status === 'error' ? s.message : '', /^The update information from the update server is not valid \(.+\)\. Will try again later\.$/);
      assert.match(s.status === 'error' ? s.message : '', detail);
      assert.ok(!c.seen.some((x) => x.status === 'available' || x.status === 'ready'), c.seen.map((x) => x.status).join(' '));
      assert.equal(c.feed.blobRequests(), 0);
      assert.deepEqual(await pendingFiles(c), []);
    });
  }
});

test('no server: a clear network error, and the next scheduled check (4 h later) tries again', async () => {
  const c = await setup({ startServer: false });
  c.controller.start();
  assert.equal(c.timers.fire(), FIRST_CHECK_DELAY_MS);
  await until(() => c.timers.pending.size === 1, 'the next check scheduled');
  assert.deepEqual(c.controller.state, { status: 'error', message: 'Could not reach the update server (connection refused). Will try again later.' });
  assert.deepEqual(c.seen.map((s) => s.status), ['checking', 'error']);

  // The server comes back: the next check finds the update and downloads it.
  await c.feed.start(c.feed.port);
  c.feed.files.set(CHANNEL_FILE, releaseYml());
  c.feed.files.set(BLOB_NAME, BLOB);
  assert.equal(c.timers.fire(), CHECK_INTERVAL_MS);
  await until(() => c.timers.pending.size === 1, 'the check after that scheduled');
  await c.controller.settled();
  assert.deepEqual(c.controller.state, { status: 'ready', version: NEXT });
  c.controller.stop();
  assert.equal(c.timers.pending.size, 0, 'stop() leaves no check scheduled');
});

test('the server answers 503, or cuts the download half-way: a clear error, no file left', async () => {
  const c = await setup();
  c.feed.status = 503;
  assert.deepEqual(await checkAndSettle(c), { status: 'error', message: 'Could not reach the update server (it answered 503). Will try again later.' });

  c.feed.status = null;
  c.feed.files.set(CHANNEL_FILE, releaseYml());
  c.feed.files.set(BLOB_NAME, BLOB);
  c.feed.cutBlob = true;
  assert.deepEqual(await checkAndSettle(c), { status: 'error', message: 'Could not reach the update server (the connection was cut). Will try again later.' });
  assert.ok(!c.seen.some((x) => x.status === 'ready'), c.seen.map((x) => x.status).join(' '));
  assert.deepEqual(await pendingFiles(c), [], 'no partial file is kept');
});

test('a checksum mismatch: "damaged", the file discarded, never ready; a good release later installs', async () => {
  const c = await setup();
  c.feed.files.set(CHANNEL_FILE, releaseYml({ sha512: sha512(Buffer.from('other bytes')) }));
  c.feed.files.set(BLOB_NAME, BLOB);
  const s = await checkAndSettle(c);
  assert.deepEqual(s, { status: 'error', message: 'The downloaded update is damaged (checksum mismatch) and was discarded. Will try again later.' });
  assert.equal(c.feed.blobRequests(), 1, 'it was downloaded');
  assert.ok(!c.seen.some((x) => x.status === 'ready'), c.seen.map((x) => x.status).join(' '));
  assert.deepEqual(await pendingFiles(c), [], 'nothing left that could pass for a ready update');
  await assert.rejects(c.controller.installNow({ confirmTraining: true }), /No update is ready/);
  assert.equal(c.order.length, 0, 'nothing installed');

  c.feed.files.set(CHANNEL_FILE, releaseYml());
  assert.deepEqual(await checkAndSettle(c), { status: 'ready', version: NEXT });
});

test('staged rollouts: stagingPercentage 0 is no update for anyone; the per-install id decides, and stays', async () => {
  const c = await setup();
  c.feed.files.set(BLOB_NAME, BLOB);
  c.feed.files.set(CHANNEL_FILE, releaseYml({ stagingPercentage: 0 }));
  assert.deepEqual(await checkAndSettle(c), { status: 'idle', lastChecked: NOW });
  assert.equal(c.feed.blobRequests(), 0);

  // electron-updater maps the id's last 4 bytes to 0–1: this install sits at 0.5.
  const { dir, cleanup } = await tempDir('updater-staged');
  cleanups.push(cleanup);
  const half = await setup({ dir });
  await writeFile(join(dir, 'user-data', '.updaterId'), '6f1c2a3b-4d5e-5f60-8172-000080000000');
  half.feed.files.set(BLOB_NAME, BLOB);
  half.feed.files.set(CHANNEL_FILE, releaseYml({ stagingPercentage: 40 }));
  assert.deepEqual(await checkAndSettle(half), { status: 'idle', lastChecked: NOW }, 'outside a 40 % rollout');
  // The same install after a restart (a new updater, the same id), with the rollout at 60 %.
  const again = await setup({ dir });
  again.feed.files.set(BLOB_NAME, BLOB);
  again.feed.files.set(CHANNEL_FILE, releaseYml({ stagingPercentage: 60 }));
  assert.deepEqual(await checkAndSettle(again), { status: 'ready', version: NEXT }, 'inside a 60 % rollout');
  assert.deepEqual(stagingIds(again), ['6f1c2a3b-4d5e-5f60-8172-000080000000']);
});

test('restart to update: refused while training; confirmed, the training stops first, then the install', async () => {
  const c = await setup();
  c.feed.files.set(CHANNEL_FILE, releaseYml());
  c.feed.files.set(BLOB_NAME, BLOB);
  assert.deepEqual(await checkAndSettle(c), { status: 'ready', version: NEXT });

  c.training.status = 'training';
  await assert.rejects(c.controller.installNow({ confirmTraining: false }), /^Error: Stop training first: installing version 0\.2\.0 restarts Train at Home\. Or confirm the restart/);
  await sleep(20);
  assert.equal(c.order.length, 0, 'nothing stopped, nothing installed');

  await c.controller.installNow({ confirmTraining: true });
  await until(() => c.order.includes('quit'), 'the app quits');
  const file = join(c.cacheDir, 'pending', BLOB_NAME);
  assert.deepEqual(c.order, ['stop training', 'training stopped', `install ${file}`, 'relaunch', 'quit']);
});

test('restart to update while not training: installs at once; nothing ready: a clear refusal', async () => {
  const c = await setup();
  await assert.rejects(c.controller.installNow({ confirmTraining: false }), /^Error: No update is ready to install yet\.$/);
  c.feed.files.set(CHANNEL_FILE, releaseYml());
  c.feed.files.set(BLOB_NAME, BLOB);
  await checkAndSettle(c);
  c.training.status = 'paused';
  await c.controller.installNow({ confirmTraining: false });
  await until(() => c.order.includes('quit'), 'the app quits');
  assert.deepEqual(c.order, [`install ${join(c.cacheDir, 'pending', BLOB_NAME)}`, 'relaunch', 'quit']);
});

test('an install that fails: the call says so, the update stays ready, the app keeps running', async () => {
  const c = await setup({ noInstaller: true });
  c.feed.files.set(CHANNEL_FILE, releaseYml());
  c.feed.files.set(BLOB_NAME, BLOB);
  await checkAndSettle(c);
  await assert.rejects(c.controller.installNow({ confirmTraining: false }), /^Error: Version 0\.2\.0 could not be installed \(This build cannot install updates by itself\)\.$/);
  await sleep(20);
  assert.equal(c.order.length, 0, 'no relaunch, no quit');
  assert.deepEqual(c.controller.state, { status: 'ready', version: NEXT });
});

// ---- the app: AppController with a (fake) training worker and the real updater ----

/** A worker process in memory: joins at once, and on Stop hands back its work after a moment and exits. */
function fakeWorker(order: string[]): SpawnWorker {
  return () => {
    let onMessage: (m: unknown) => void = () => undefined;
    let onExit: (how: string, clean: boolean) => void = () => undefined;
    const exit = (how: string, clean: boolean) => setImmediate(() => onExit(how, clean));
    const p: WorkerProcess = {
      pid: 4242,
      postMessage(m: HostMessage) {
        if (m.type === 'start') {
          const assigned: MinerMessage = { type: 'assigned', run_id: 'run-1', stage: 0, stage_count: 2, layers: [0, 3], params: 1000 };
          setImmediate(() => onMessage(assigned));
        } else {
          order.push('worker: stop asked');
          setTimeout(() => {
            onMessage({ type: 'ended', result: 'stopped' } satisfies MinerMessage);
            order.push('worker: work handed back, gone');
            exit('exit code 0', true);
          }, 50);
        }
      },
      onMessage: (l) => (onMessage = l),
      onExit: (l) => (onExit = l),
      kill: () => exit('signal SIGKILL', false),
    };
    return p;
  };
}

async function appWith(c: Case | null, order: string[]): Promise<{ app: AppController; close: () => Promise<void> }> {
  const t = await tempDir('updater-app');
  // The orchestrator's health check, which a start waits for.
  const health = createServer((req, res) => {
    res.writeHead(req.url === '/v1/health' ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', version: 'test', uptime_s: 1 }));
  });
  await new Promise<void>((resolve) => health.listen(0, '127.0.0.1', resolve));
  const { store: settings } = await SettingsStore.open(join(t.dir, 'settings.json'));
  await settings.update({ allowPlaintextKey: true, onboarded: true, orchestratorUrl: `http://127.0.0.1:${(health.address() as AddressInfo).port}` });
  const app = new AppController({
    version: CURRENT,
    cores: 2,
    memoryBytes: 8 * 2 ** 30,
    settings,
    wallet: new WalletStore({ dir: join(t.dir, 'wallet'), box: plaintextBox, allowPlaintext: () => true }),
    spawnWorker: fakeWorker(order),
    power: { read: () => ({ onBattery: false, batteryPercent: null, thermal: 'unknown', idleSeconds: 0 }), subscribe: () => () => undefined },
    keepAwake: { start: () => undefined, stop: () => undefined },
    dialogs: { saveFile: async () => null },
    checkHardware: async () => ({ platform: 'linux', arch: 'x64', cpuModel: 'test', cores: 2, memoryBytes: 8 * 2 ** 30, freeDiskBytes: null, gpus: [], verdict: 'cpu-only', reasons: [] }),
    logFiles: [],
    log: () => undefined,
    updates: c?.controller,
  });
  await app.init();
  return {
    app,
    close: async () => {
      await app.dispose();
      health.closeAllConnections();
      await new Promise<void>((resolve) => health.close(() => resolve()));
      await t.cleanup();
    },
  };
}

test('the app: updater states reach AppState.updater; updater:install stops the training (its work handed back) before the restart', async () => {
  const order: string[] = [];
  const c = await setup({ order });
  // The AppController attaches itself to the controller: its training, its stop.
  const { app, close } = await appWith(c, order);
  cleanups.push(close);

  const states: UpdaterState[] = [];
  app.onState((s) => states.push(s.updater));
  c.feed.files.set(CHANNEL_FILE, releaseYml());
  c.feed.files.set(BLOB_NAME, BLOB);
  const checked = await app.handle('updater:check', []);
  assert.ok(['available', 'downloading', 'ready'].includes(checked.status), checked.status);
  await c.controller.settled();
  assert.deepEqual(app.state().updater, { status: 'ready', version: NEXT });
  await until(() => states.at(-1)?.status === 'ready', 'the pushed state shows the update ready');

  await app.handle('wallet:create', []);
  await app.handle('training:start', []);
  await until(() => app.state().training.status === 'training', 'training');

  await assert.rejects(app.handle('updater:install', [{ confirmTraining: false }]), /Stop training first/);
  assert.equal(app.state().training.status, 'training', 'still training');
  assert.equal(order.length, 0, 'nothing stopped, nothing installed');

  // The bridge checks the argument before the controller sees it.
  assert.throws(() => parseCall('updater:install', [{ confirmTraining: 'yes' }]), /updater:install: confirmTraining/);
  assert.throws(() => parseCall('updater:install', [{ confirmTraining: true, now: 1 }]), /updater:install/);
  assert.throws(() => parseCall('updater:install', []), /takes one argument/);
  const call = parseCall('updater:install', [{ confirmTraining: true }]);

  const after = await app.handle('updater:install', call.args as [{ confirmTraining: boolean }]);
  assert.equal(after.training.status, 'stopped');
  await until(() => order.includes('quit'), 'the app quits');
  assert.deepEqual(order, [
    'worker: stop asked',
    'worker: work handed back, gone',
    `install ${join(c.cacheDir, 'pending', BLOB_NAME)}`,
    'relaunch',
    'quit',
  ]);
});

test('the app without updates: the calls answer that updates are not available in this build', async () => {
  const { app, close } = await appWith(null, []);
  cleanups.push(close);
  await assert.rejects(app.handle('updater:check', []), /^Error: Updates are not available in this build\.$/);
  await assert.rejects(app.handle('updater:install', [{ confirmTraining: true }]), /^Error: Updates are not available in this build\.$/);
  assert.deepEqual(app.state().updater, { status: 'idle', lastChecked: null });
});

test('events arriving out of order or twice never throw out of the updater and leave a sane state', () => {
  // A stand-in updater whose events the test emits directly, as electron-updater might in a race.
  const handlers = new Map<string, (...a: unknown[]) => void>();
  const fake = {
    autoDownload: true,
    autoInstallOnAppQuit: false,
    allowDowngrade: true,
    checkForUpdates: async () => null,
    downloadUpdate: async () => [],
    quitAndInstall: () => undefined,
    on: (e: string, l: (...a: unknown[]) => void) => handlers.set(e, l),
    off: (e: string) => handlers.delete(e),
  } as unknown as Updater;
  const events: UpdaterEvent[] = [];
  const controller = new UpdateController({ updater: fake, timers: new ManualTimers() });
  controller.attach({ updaterEvent: (e) => events.push(e), trainingStatus: () => 'stopped', stopTraining: async () => undefined });
  assert.equal(fake.autoDownload, false, 'the controller starts downloads itself');
  assert.equal(fake.allowDowngrade, false);
  const emit = (e: string, ...a: unknown[]) => handlers.get(e)!(...a);
  emit('download-progress', { percent: 50 });
  emit('update-downloaded', { version: NEXT });
  emit('update-available', undefined);
  emit('error', new Error('something odd\nwith a second line'));
  assert.deepEqual(controller.state, { status: 'error', message: 'Updating failed: something odd. Will try again later.' });
  emit('checking-for-update');
  emit('update-available', { version: NEXT, files: [{ url: BLOB_NAME, sha512: 'x' }] });
  emit('download-progress', { percent: NaN });
  emit('update-downloaded', { version: NEXT });
  emit('error', Object.assign(new Error('net::ERR_INTERNET_DISCONNECTED'), {}));
  assert.deepEqual(controller.state, { status: 'ready', version: NEXT }, 'a ready update survives a later error');
  controller.dispose();
  assert.equal(handlers.size, 0, 'dispose lets go of every event');
  assert.ok(events.length > 0, 'the host saw the events');
});
