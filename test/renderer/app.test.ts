/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// (DOM types: the functions given to waitForFunction run in the page.)
// The real renderer in a real browser (Debian's Chromium driven by playwright-core) against the
// real backend: the app's controllers in the browser host, with a real training worker process,
// joining a real local swarm (orchestrator, a miner and a validator per stage, as processes). A
// person's path through the app: onboarding, Start, the stage and the counters moving, the loss
// chart growing, earnings once an epoch closes, the network page, Stop. Then the run's public
// dashboard, served by the orchestrator, against the orchestrator's own API. Every screen is
// photographed in light and dark (test-artifacts/screenshots, or $TAH_TEST_ARTIFACTS); with
// TAH_UPDATE_DOCS=1 the same pictures replace those in docs/screenshots. Any console error or
// uncaught error in the page fails the test.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { LocalSwarm } from '../../cli/swarm/local-swarm.ts';
import { AppController } from '../../electron/core/app.ts';
import { nodeAppWorld } from '../../electron/browser-host/node-world.ts';
import { type BrowserHost, startBrowserHost } from '../../electron/browser-host/server.ts';
import { DashboardSchema } from '../../orchestrator-client/protocol.ts';
import { keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { RENDERER_JS_BUDGET_GZ, buildRenderer } from '../../scripts/build-renderer.ts';
import { tempDir } from '../cli/run-tah.ts';
import { type SwarmCase, caseSpec } from '../cli/swarm/helpers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ARTIFACTS = process.env.TAH_TEST_ARTIFACTS ?? join(ROOT, 'test-artifacts');
const SHOTS = join(ARTIFACTS, 'screenshots');
const DOCS_SHOTS = join(ROOT, 'docs', 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// CI installs Debian's chromium (.ci/run); elsewhere the file says what is missing instead of failing.
const noBrowser = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;

const CASE: SwarmCase = { preset: 'tiny', stages: 2, samples: 4, rows: 2, rounds: 400, seed: 3, lr: 1e-2 };
const EPOCH = 3;

let dir = '';
let cleanup: () => Promise<void> = async () => {};
let swarm: LocalSwarm;
let controller: AppController;
let host: BrowserHost;
let browser: Browser;
let context: BrowserContext;
let page: Page;
/** Console errors and uncaught errors of every page, with the page they came from. */
const pageErrors: string[] = [];

function watch(p: Page): Page {
  p.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`${p.url()}: console.error: ${m.text()}`);
  });
  p.on('pageerror', (e) => pageErrors.push(`${p.url()}: uncaught: ${e.message}`));
  return p;
}

/** The screen as it is, in light and in dark. */
async function shoot(p: Page, name: string): Promise<void> {
  await mkdir(SHOTS, { recursive: true });
  for (const scheme of ['light', 'dark'] as const) {
    await p.emulateMedia({ colorScheme: scheme });
    await p.screenshot({ path: join(SHOTS, `${name}-${scheme}.png`), fullPage: true });
  }
  await p.emulateMedia({ colorScheme: 'light' });
}

const byId = (p: Page, id: string) => p.getByTestId(id);
const numberIn = async (p: Page, id: string): Promise<number> => Number(((await byId(p, id).first().textContent()) ?? '').replace(/[^\d.]/g, '') || 'NaN');
const attr = async (p: Page, id: string, name: string): Promise<number> => Number(await byId(p, id).first().getAttribute(name));

before(async () => {
  if (noBrowser) return;
  await ready();
  ({ dir, cleanup } = await tempDir('tah-renderer-'));
  const built = await buildRenderer(join(dir, 'renderer'));
  console.log(`# renderer bundle: ${(built.jsBytes / 1024).toFixed(0)} KB of JavaScript, ${(built.jsGzipBytes / 1024).toFixed(0)} KB gzipped (budget ${RENDERER_JS_BUDGET_GZ / 1024} KB)`);
  assert.ok(built.jsGzipBytes < RENDERER_JS_BUDGET_GZ, `the renderer's JavaScript is ${built.jsGzipBytes} bytes gzipped`);

  swarm = new LocalSwarm({ dir: join(dir, 'swarm'), spec: caseSpec(CASE, { heartbeat_timeout_s: 5, lease_ttl_s: 20, validation: { epoch_rounds: EPOCH } }), threadsPerMiner: 1, uiDir: built.dir });
  await swarm.start();
  for (let s = 0; s < CASE.stages; s++) await swarm.addValidator();
  await swarm.addMiner();

  controller = new AppController(await nodeAppWorld({ dataDir: join(dir, 'app'), tune: { cores: 2 } }));
  await controller.init();
  host = await startBrowserHost({ controller, staticDir: built.dir });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  context = await browser.newContext({ viewport: { width: 1100, height: 760 }, colorScheme: 'light' });
  page = watch(await context.newPage());
});

after(async () => {
  await browser?.close();
  await host?.close();
  await controller?.dispose();
  await swarm?.close();
  await cleanup();
});

test('onboarding: the hardware verdict, a new wallet with its backup step, a payout address, the swarm; until then nothing trains', { skip: noBrowser }, async () => {
  await page.goto(host.url);
  await byId(page, 'onboarding').waitFor();
  await byId(page, 'hardware-verdict').waitFor();
  await shoot(page, 'onboarding');
  assert.match((await byId(page, 'hardware-verdict').textContent()) ?? '', /\S/);
  await byId(page, 'hardware-continue').click();

  // This machine has no keyring: the app asks before keeping the key in a file.
  await byId(page, 'plaintext-consent').check();
  await byId(page, 'wallet-create').click();
  const words = ((await byId(page, 'mnemonic-words').textContent()) ?? '').trim().split(/\s+/).filter((w) => /^[a-z]+$/.test(w));
  assert.equal(words.length, 12, `the recovery phrase is shown: ${words.join(' ')}`);
  await byId(page, 'backup-confirm').click();

  // A malformed payout address is refused where it was typed; a good one is kept.
  await byId(page, 'payout-input').fill('not-an-address');
  await byId(page, 'payout-save').click();
  await page.getByText(/SS58|address/i).first().waitFor();
  const coldkey = keypairFromSeed(new Uint8Array(32).fill(42)).address;
  await byId(page, 'payout-input').fill(coldkey);
  await byId(page, 'payout-save').click();

  await byId(page, 'orchestrator-url').fill(swarm.url);
  await byId(page, 'onboarding-finish').click();
  await byId(page, 'start-stop').waitFor();

  const s = controller.state();
  assert.equal(s.settings.onboarded, true);
  assert.equal(s.settings.orchestratorUrl, swarm.url);
  assert.equal(s.wallet?.payoutAddress, coldkey);
  assert.equal(s.wallet?.backedUp, true);
  assert.equal(s.training.status, 'stopped', 'onboarding does not start training by itself');
});

test('Start: the stage appears in the pipeline picture, the token count rises, the loss chart grows', { skip: noBrowser }, async () => {
  assert.equal((await byId(page, 'start-stop').textContent())?.trim(), 'Start');
  await byId(page, 'start-stop').click();
  await page.waitForFunction(() => /training/i.test(document.querySelector('[data-testid="status-line"]')?.textContent ?? ''), undefined, { timeout: 60_000 });
  await page.waitForFunction(() => /stage 2 of 2/i.test(document.querySelector('[data-testid="stage-label"]')?.textContent ?? ''), undefined, { timeout: 30_000 });
  assert.equal((await byId(page, 'start-stop').textContent())?.trim(), 'Stop');
  assert.equal(controller.state().training.stage?.stage, 1);

  const tokens = await numberIn(page, 'tokens-count');
  await page.waitForFunction((before) => Number((document.querySelector('[data-testid="tokens-count"]')?.textContent ?? '').replace(/[^\d.]/g, '')) > before, tokens, { timeout: 60_000 });
  const points = await attr(page, 'loss-chart', 'data-points');
  await page.waitForFunction((before) => Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points')) > before, points, { timeout: 60_000 });
  assert.ok(Number.isFinite(await numberIn(page, 'loss-value')), 'a loss is shown');
  // A few more points, so that the picture shows curves rather than a segment.
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points')) >= 6, undefined, { timeout: 60_000 });
  await shoot(page, 'home');

  // First paint of the home screen, as the browser measured it (printed, not asserted).
  await page.reload();
  await byId(page, 'start-stop').waitFor();
  const paint = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);
  console.log(`# first contentful paint of the home screen: ${paint === null ? 'not reported' : `${paint.toFixed(0)} ms`}`);
});

test('Earnings: once an epoch closes, its line is there with the share and the checks', { skip: noBrowser }, async () => {
  const hotkey = controller.state().wallet!.address;
  // The orchestrator closes an epoch every EPOCH rounds; wait for the first one that pays this app.
  const deadline = Date.now() + 120_000;
  while ((await swarm.client.rewards(swarm.runId, hotkey)).epochs.length === 0) {
    assert.ok(Date.now() < deadline, 'no epoch closed within 2 minutes');
    await new Promise((r) => setTimeout(r, 500));
  }
  const ledger = await swarm.client.rewards(swarm.runId, hotkey);
  await byId(page, 'nav-earnings').click();
  await byId(page, 'earnings-table').waitFor();
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="earnings-row"]').length >= n, ledger.epochs.length, { timeout: 20_000 });
  const first = ((await byId(page, 'earnings-row').first().textContent()) ?? '').replace(/\s+/g, ' ');
  const share = `${(ledger.epochs[0].share * 100).toFixed(1)}`;
  assert.ok(first.includes(share), `the first epoch's share ${share} % is shown: ${first}`);
  await byId(page, 'earnings-pending').waitFor();
  await shoot(page, 'earnings');
});

test('Network, Settings and Logs show what the orchestrator and the main process offer', { skip: noBrowser }, async () => {
  await byId(page, 'nav-network').click();
  await byId(page, 'network-stages').waitFor();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="network-stage-row"]').length === 2, undefined, { timeout: 20_000 });
  await shoot(page, 'network');

  await byId(page, 'nav-settings').click();
  await byId(page, 'settings-save').waitFor();
  await shoot(page, 'settings');

  await byId(page, 'nav-logs').click();
  await byId(page, 'logs-view').waitFor();
  await shoot(page, 'logs');
});

test('Stop by keyboard: the button says Start again, the status says stopped, the worker process is gone; every screen fits an 800×600 window and names its controls', { skip: noBrowser }, async () => {
  await byId(page, 'nav-home').click();
  // By keyboard, as someone without a mouse would.
  await byId(page, 'start-stop').focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('[data-testid="start-stop"]')?.textContent?.trim() === 'Start', undefined, { timeout: 30_000 });
  const s = controller.state();
  assert.equal(s.training.status, 'stopped');
  assert.equal(controller.workerPid, null);
  await page.waitForFunction(() => /stopped/i.test(document.querySelector('[data-testid="status-line"]')?.textContent ?? ''), undefined, { timeout: 10_000 });
  await shoot(page, 'home-stopped');

  // The smallest window the app allows (800×600): every screen fits its width.
  await page.setViewportSize({ width: 800, height: 600 });
  for (const nav of ['nav-home', 'nav-earnings', 'nav-network', 'nav-settings', 'nav-logs']) {
    await byId(page, nav).click();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${nav}: ${overflow} px wider than an 800 px window`);
    // Every control has a name a screen reader can say (its label, aria-label or text).
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('button, input, select, textarea, a[href]')]
        .filter((el) => {
          const labels = (el as HTMLInputElement).labels;
          const text = (el.getAttribute('aria-label') ?? el.getAttribute('title') ?? '') + (labels ? [...labels].map((l) => l.textContent).join('') : '') + (el.getAttribute('aria-labelledby') ? 'x' : '') + (el.textContent ?? '');
          return text.trim() === '';
        })
        .map((el) => el.outerHTML.slice(0, 120)),
    );
    assert.deepEqual(unnamed, [], `${nav}: controls without a name`);
  }
  await byId(page, 'nav-home').click();
  await shoot(page, 'home-800x600');
  await page.setViewportSize({ width: 1100, height: 760 });
});

test("the run's public dashboard, served by the orchestrator, shows the orchestrator's own numbers", { skip: noBrowser }, async () => {
  assert.ok(swarm.dashboardUrl, 'the orchestrator serves the dashboard');
  const dash = watch(await context.newPage());
  try {
    await dash.goto(swarm.dashboardUrl);
    await byId(dash, 'network-stages').waitFor();
    await dash.waitForFunction(() => document.querySelectorAll('[data-testid="network-stage-row"]').length === 2, undefined, { timeout: 20_000 });
    const api = DashboardSchema.parse(await (await fetch(`${swarm.url}/v1/runs/${swarm.runId}/dashboard`)).json());
    const run = await swarm.client.run(swarm.runId);
    assert.deepEqual(
      api.stages.map((s) => s.miners),
      run.miners_per_stage,
    );
    // The page polls; compare once it shows what the API says now.
    await dash.waitForFunction(
      (expected) => JSON.stringify([...document.querySelectorAll('[data-testid="network-stage-row"]')].map((r) => [Number(r.getAttribute('data-stage')), Number(r.getAttribute('data-miners'))])) === expected,
      JSON.stringify(api.stages.map((s) => [s.stage, s.miners])),
      { timeout: 15_000 },
    );
    // The top contributors are the newest closed epoch's largest shares, as the ledger has them
    // (read again if an epoch closed between the two reads).
    for (let attempt = 0; ; attempt++) {
      const ledger = (await swarm.client.epochs(swarm.runId)).epochs.at(-1);
      const top = DashboardSchema.parse(await (await fetch(`${swarm.url}/v1/runs/${swarm.runId}/dashboard`)).json()).top;
      if (attempt < 3 && top[0]?.epoch !== ledger?.epoch) continue;
      assert.ok(ledger, 'an epoch has closed');
      // Equal shares may come in either order.
      const byKey = (rows: [number, string, number][]) => rows.sort((a, b) => (a[1] < b[1] ? -1 : 1));
      assert.deepEqual(
        byKey(top.map((t) => [t.epoch, t.hotkey, t.share])),
        byKey(ledger.top.map((t) => [ledger.epoch, t.hotkey, t.share])),
      );
      break;
    }
    const rounds = ((await byId(dash, 'network-rounds').textContent()) ?? '').replace(/\s+/g, ' ');
    assert.match(rounds, /\d/);
    await shoot(dash, 'dashboard');
  } finally {
    await dash.close();
  }
});

test('no console error and no uncaught error in any page', { skip: noBrowser }, async () => {
  assert.deepEqual(pageErrors, []);
  if (process.env.TAH_UPDATE_DOCS === '1') {
    await mkdir(DOCS_SHOTS, { recursive: true });
    for (const f of await readdir(SHOTS)) await copyFile(join(SHOTS, f), join(DOCS_SHOTS, f));
  }
});
