// The browser host's guard and its bad-input paths: only a client with the page's token (and, from
// a browser, the host's own origin) reaches the bridge; malformed messages and calls get clear
// answers and the host carries on; files outside the renderer's folder are never served. Also the
// app's own bad input: a damaged settings file, and an orchestrator that does not answer.
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { AppController } from '../../../electron/core/app.ts';
import { connectBridge } from '../../../electron/browser-host/client.ts';
import { nodeAppWorld } from '../../../electron/browser-host/node-world.ts';
import { type BrowserHost, startBrowserHost } from '../../../electron/browser-host/server.ts';
import { STATE_EVENT } from '../../../electron/ipc-contract.ts';
import { tempDir } from '../../cli/run-tah.ts';

let dir = '';
let cleanup: () => Promise<void> = async () => {};
let controller: AppController;
let host: BrowserHost;

before(async () => {
  ({ dir, cleanup } = await tempDir('tah-bhost-'));
  // A settings file damaged on disk: the app starts on defaults, keeps the bad file, and says so.
  await mkdir(join(dir, 'app'), { recursive: true });
  await writeFile(join(dir, 'app', 'settings.json'), '{"orchestratorUrl": 42, "threads": "lots"');
  await mkdir(join(dir, 'ui', 'assets'), { recursive: true });
  await writeFile(join(dir, 'ui', 'index.html'), '<!doctype html><title>ui</title>');
  await writeFile(join(dir, 'ui', 'assets', 'app.js'), 'console.log(1)');
  await writeFile(join(dir, 'secret.txt'), 'outside the renderer');
  const world = await nodeAppWorld({ dataDir: join(dir, 'app'), tune: { backoffMs: [60_000], healthTimeoutMs: 2_000 } });
  controller = new AppController(world);
  await controller.init();
  host = await startBrowserHost({ controller, staticDir: join(dir, 'ui') });
});

after(async () => {
  await host?.close();
  await controller?.dispose();
  await cleanup();
});

/** Opens a raw socket and answers how the upgrade went: 'open' or the HTTP status of the refusal. */
function tryConnect(url: string, headers: Record<string, string> = {}): Promise<'open' | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => resolve(0));
  });
}

test('the bridge needs the token, and a browser must come from the host itself', async () => {
  const good = host.bridgeUrl;
  assert.equal(await tryConnect(good), 'open');
  assert.equal(await tryConnect(good, { origin: new URL(host.url).origin }), 'open');
  assert.equal(await tryConnect(good.replace(/token=[^&]+/, 'token=wrong')), 403);
  assert.equal(await tryConnect(good.replace(/\?.*$/, '')), 403);
  // Another web page the user has open, trying to drive the app.
  assert.equal(await tryConnect(good, { origin: 'https://evil.example' }), 403);
});

test('malformed messages and calls get clear errors and the host keeps serving', async () => {
  const ws = new WebSocket(host.bridgeUrl);
  await new Promise((r) => ws.once('open', r));
  const replies: Record<string, unknown>[] = [];
  ws.on('message', (d) => {
    const m = JSON.parse(String(d));
    if (m.event !== STATE_EVENT) replies.push(m);
  });
  const next = () => new Promise<Record<string, unknown>>((resolve) => {
    const poll = () => (replies.length ? resolve(replies.shift()!) : setImmediate(poll));
    poll();
  });
  ws.send('{not json');
  assert.match(JSON.stringify(await next()), /malformed bridge message/);
  ws.send(JSON.stringify({ id: 'x', channel: 'state:get', args: [] }));
  assert.match(JSON.stringify(await next()), /malformed bridge message/);
  ws.send(JSON.stringify({ id: 7, channel: 'settings:update', args: [{ threads: -3, colour: 'red' }] }));
  const bad = (await next()) as { id: number; result: { ok: boolean; error: string } };
  assert.equal(bad.id, 7);
  assert.equal(bad.result.ok, false);
  assert.match(bad.result.error, /settings:update: .*threads/);
  ws.send(JSON.stringify({ id: 8, channel: 'state:get', args: [] }));
  const ok = (await next()) as { id: number; result: { ok: boolean } };
  assert.deepEqual([ok.id, ok.result.ok], [8, true]);
  ws.close();
});

test('the renderer files are served, routes fall back to index.html, and nothing outside is reachable', async () => {
  const base = new URL(host.url).origin;
  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  assert.match(await page.text(), /<title>ui<\/title>/);
  assert.equal((await fetch(`${base}/assets/app.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.match(await (await fetch(`${base}/earnings`)).text(), /<title>ui<\/title>/);
  assert.equal((await fetch(`${base}/assets/missing.js`)).status, 404);
  for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt']) {
    const r = await fetch(`${base}${path}`);
    assert.notEqual(await r.text(), 'outside the renderer', path);
  }
  assert.equal((await fetch(`${base}/`, { method: 'POST' })).status, 405);
});

test('a damaged settings file is kept aside, defaults are used, and the app says so', async () => {
  const bridge = await connectBridge(host.bridgeUrl, WebSocket as never);
  try {
    const s = await bridge.call('state:get');
    const notice = s.notices.find((n) => n.id === 'settings-reset');
    assert.ok(notice, 'a notice tells the user');
    assert.match(notice.message, /damaged/);
    assert.equal(s.settings.orchestratorUrl, 'http://127.0.0.1:8080');
    const backups = (await readdir(join(dir, 'app'))).filter((f) => f.startsWith('settings.json.corrupt-'));
    assert.equal(backups.length, 1);
    assert.equal(await readFile(join(dir, 'app', backups[0]), 'utf8'), '{"orchestratorUrl": 42, "threads": "lots"');
    const dismissed = await bridge.call('notice:dismiss', 'settings-reset');
    assert.equal(dismissed.notices.length, 0);
  } finally {
    bridge.close();
  }
});

test('an orchestrator that does not answer: a clear reason, a retry, and no worker process', async () => {
  const bridge = await connectBridge(host.bridgeUrl, WebSocket as never);
  try {
    await bridge.call('settings:update', { allowPlaintextKey: true, orchestratorUrl: 'http://127.0.0.1:9', onboarded: true });
    await bridge.call('wallet:import', { mnemonic: 'old leopard transfer rib spatial phone calm indicate online fire caution review' });
    await bridge.call('training:start');
    const s = await new Promise<Awaited<ReturnType<typeof bridge.call<'state:get'>>>>((resolve) => {
      const off = bridge.onState((st) => {
        if (st.training.status === 'restarting') {
          off();
          resolve(st);
        }
      });
    });
    assert.match(s.training.reason!, /Cannot reach the orchestrator at http:\/\/127\.0\.0\.1:9 \(.+\)\. Check the address in Settings/);
    assert.equal(controller.workerPid, null, 'no worker is started without an orchestrator');
    const stopped = await bridge.call('training:stop');
    assert.equal(stopped.training.status, 'stopped');
  } finally {
    bridge.close();
  }
});
