// The tray: for each training status, the status line, which actions the menu offers and whether
// they are enabled, the icon, the macOS title and the tooltip.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AppState, type PauseReason, type Settings, type TrainingState, type TrainingStatus, type UpdaterState, idleTraining } from '../../../electron/ipc-contract.ts';
import { defaultSettings } from '../../../electron/core/settings.ts';
import { compactRate, trayModel, type TrayAction, type TrayModel } from '../../../electron/core/tray-model.ts';

const SETTINGS: Settings = { ...defaultSettings({}), orchestratorUrl: 'https://orchestrator.example.org', minBatteryPercent: 20, onboarded: true };

type Fixture = Partial<Omit<AppState, 'training' | 'power' | 'settings'>> & {
  training?: Partial<TrainingState>;
  power?: Partial<AppState['power']>;
  settings?: Partial<Settings>;
};

/** A ready-to-train app (onboarded, wallet set up, stopped), with `patch` on top. */
function app(patch: Fixture = {}): AppState {
  const { training, power, settings, ...rest } = patch;
  return {
    version: '1.0.0',
    wallet: { address: '5Fxyz', publicKey: '0x00', payoutAddress: null, backedUp: true, protection: 'os' },
    walletProblem: null,
    keyStorage: 'os',
    hardware: null,
    updater: { status: 'idle', lastChecked: null },
    notices: [],
    ...rest,
    training: { ...idleTraining(), ...training },
    power: { onBattery: false, batteryPercent: null, thermal: 'nominal', idleSeconds: 0, decision: { run: true, throttle: false }, pause: null, ...power },
    settings: { ...SETTINGS, ...settings },
  };
}

const STAGE = { runId: 'r1', stage: 1, stageCount: 3, layers: [4, 7] as [number, number], params: 1_000_000 };
const PAUSED_BATTERY = 'Paused: this computer is on battery. Training resumes on mains power (change this in Settings).';

/** The menu's action items, as "action" (enabled) or "(action)" (disabled). */
function actions(m: TrayModel): string[] {
  return m.items.filter((i) => i.action !== undefined).map((i) => (i.enabled ? i.action! : `(${i.action})`));
}

type Case = { name: string; state: AppState; status: string; icon: TrayModel['icon']; actions: string[] };

const CASES: Case[] = [
  { name: 'stopped', state: app(), status: 'Not training', icon: 'idle', actions: ['start', 'open', 'quit'] },
  { name: 'stopped, no wallet', state: app({ wallet: null }), status: 'Set up your wallet to start', icon: 'idle', actions: ['(start)', 'open', 'quit'] },
  { name: 'stopped, not onboarded', state: app({ wallet: null, settings: { onboarded: false } }), status: 'Finish setting up to start', icon: 'idle', actions: ['(start)', 'open', 'quit'] },
  { name: 'starting', state: app({ training: { status: 'starting' } }), status: 'Starting…', icon: 'training', actions: ['stop', 'pause-hour', '(pause-until-ac)', 'open', 'quit'] },
  {
    name: 'training on AC',
    state: app({ training: { status: 'training', stage: STAGE, tokensPerS: 1234.4 } }),
    status: 'Training stage 2 of 3 · 1,234 tokens/s',
    icon: 'training',
    actions: ['stop', 'pause-hour', '(pause-until-ac)', 'open', 'quit'],
  },
  {
    name: 'training on battery',
    state: app({ training: { status: 'training', stage: STAGE, tokensPerS: 950 }, power: { onBattery: true, batteryPercent: 70 }, settings: { runOnBattery: true } }),
    status: 'Training stage 2 of 3 · 950 tokens/s',
    icon: 'training',
    actions: ['stop', 'pause-hour', 'pause-until-ac', 'open', 'quit'],
  },
  { name: 'training, stage not yet known', state: app({ training: { status: 'training', tokensPerS: 0 } }), status: 'Training · 0 tokens/s', icon: 'training', actions: ['stop', 'pause-hour', '(pause-until-ac)', 'open', 'quit'] },
  {
    name: 'paused by the user',
    state: app({ training: { status: 'paused', pauseReason: 'user', reason: 'Paused for 1 hour, until 14:05.' } }),
    status: 'Paused for 1 hour, until 14:05.',
    icon: 'paused',
    actions: ['stop', 'resume', 'open', 'quit'],
  },
  {
    name: 'paused until plugged in',
    state: app({ training: { status: 'paused', pauseReason: 'until-ac', reason: 'Paused until this computer is plugged in to mains power.' }, power: { onBattery: true } }),
    status: 'Paused until this computer is plugged in to mains power.',
    icon: 'paused',
    actions: ['stop', 'resume', 'open', 'quit'],
  },
  {
    name: 'paused on battery',
    state: app({ training: { status: 'paused', pauseReason: 'on-battery', reason: PAUSED_BATTERY }, power: { onBattery: true } }),
    status: PAUSED_BATTERY,
    icon: 'paused',
    actions: ['stop', 'open', 'quit'],
  },
  { name: 'stopping', state: app({ training: { status: 'stopping' } }), status: 'Stopping…', icon: 'paused', actions: ['(start)', 'open', 'quit'] },
  {
    name: 'restarting',
    state: app({ training: { status: 'restarting', reason: 'The training stopped unexpectedly; starting it again in 30 seconds.' } }),
    status: 'The training stopped unexpectedly; starting it again in 30 seconds.',
    icon: 'error',
    actions: ['stop', 'open', 'quit'],
  },
  {
    name: 'error',
    state: app({ training: { status: 'error', reason: 'The orchestrator refused this wallet.' } }),
    status: 'The orchestrator refused this wallet.',
    icon: 'error',
    actions: ['start', 'open', 'quit'],
  },
  { name: 'error without a reason, no wallet', state: app({ wallet: null, training: { status: 'error' } }), status: 'Training stopped because of an error', icon: 'error', actions: ['(start)', 'open', 'quit'] },
];

for (const c of CASES) {
  test(`tray: ${c.name}`, () => {
    const m = trayModel(c.state, 'linux');
    assert.deepEqual(m.items[0], { label: c.status, enabled: false });
    assert.equal(m.tooltip, `Train at Home — ${c.status}`);
    assert.equal(m.icon, c.icon);
    assert.equal(m.title, '');
    assert.deepEqual(actions(m), c.actions);
  });
}

test('tray: menu layout (separators, labels)', () => {
  const m = trayModel(app({ training: { status: 'training', stage: STAGE, tokensPerS: 10 } }), 'win32');
  assert.deepEqual(
    m.items.map((i) => (i.type === 'separator' ? '---' : i.label)),
    ['Training stage 2 of 3 · 10 tokens/s', 'Stop training', 'Pause for 1 hour', 'Pause until plugged in', '---', 'Open Train at Home', '---', 'Quit'],
  );
});

test('tray: the macOS title shows the rate while training, nothing otherwise', () => {
  const training = app({ training: { status: 'training', tokensPerS: 12345 } });
  assert.equal(trayModel(training, 'darwin').title, '12.3k tok/s');
  assert.equal(trayModel(training, 'win32').title, '');
  assert.equal(trayModel(training, 'linux').title, '');
  for (const status of ['stopped', 'paused', 'starting', 'stopping', 'restarting', 'error'] as TrainingStatus[]) {
    assert.equal(trayModel(app({ training: { status, tokensPerS: 500 } }), 'darwin').title, '', status);
  }
});

test('compactRate', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [0.4, '0'],
    [950, '950'],
    [999.4, '999'],
    [999.6, '1k'],
    [1000, '1k'],
    [1234, '1.2k'],
    [12345, '12.3k'],
    [999_949, '999.9k'],
    [999_950, '1M'],
    [2_500_000, '2.5M'],
    [-5, '0'],
    [NaN, '0'],
  ];
  for (const [n, want] of cases) assert.equal(compactRate(n), want, String(n));
});

test('tray: "Restart to update" only when an update is ready, and only enabled when training is not running', () => {
  const updaters: UpdaterState[] = [
    { status: 'idle', lastChecked: 1 },
    { status: 'checking' },
    { status: 'available', version: '1.1.0' },
    { status: 'downloading', version: '1.1.0', percent: 50 },
    { status: 'error', message: 'offline' },
  ];
  for (const updater of updaters) assert.ok(!actions(trayModel(app({ updater }), 'linux')).some((a) => a.includes('install-update')), updater.status);

  const ready: UpdaterState = { status: 'ready', version: '1.1.0' };
  const stopped = trayModel(app({ updater: ready }), 'linux');
  assert.deepEqual(
    stopped.items.find((i) => i.action === 'install-update'),
    { label: 'Restart to update to v1.1.0', action: 'install-update', enabled: true },
  );
  assert.equal(trayModel(app({ updater: { status: 'ready', version: 'v1.1.0' } }), 'linux').items.find((i) => i.action === 'install-update')?.label, 'Restart to update to v1.1.0');

  const training = trayModel(app({ updater: ready, training: { status: 'training' } }), 'linux');
  const item = training.items.find((i) => i.action === 'install-update');
  assert.equal(item?.enabled, false);
  assert.match(item!.label, /stop training/);
});

test('tray: long reasons are cut in the tooltip (Windows keeps 127 characters)', () => {
  const reason = 'x'.repeat(300);
  const m = trayModel(app({ training: { status: 'error', reason } }), 'win32');
  assert.equal(m.tooltip.length, 127);
  assert.ok(m.tooltip.endsWith('…'));
  assert.equal(m.items[0].label, reason);
});

// ---- no action enabled that the state forbids, over every combination ----

const ALL_STATUSES: TrainingStatus[] = ['stopped', 'paused', 'starting', 'training', 'stopping', 'restarting', 'error'];
const PAUSE_REASONS: (PauseReason | null)[] = [null, 'user', 'until-ac', 'on-battery', 'battery-low', 'not-idle', 'thermal', 'suspended'];

/** Whether an action may be enabled, stated from the spec. */
function allowed(action: TrayAction, s: AppState): boolean {
  const t = s.training.status;
  const ready = s.settings.onboarded && s.wallet !== null;
  switch (action) {
    case 'start':
      return (t === 'stopped' || t === 'error') && ready;
    case 'stop':
      return t === 'starting' || t === 'training' || t === 'restarting' || t === 'paused';
    case 'pause-hour':
      return t === 'starting' || t === 'training';
    case 'pause-until-ac':
      return (t === 'starting' || t === 'training') && s.power.onBattery;
    case 'resume':
      return t === 'paused' && (s.training.pauseReason === 'user' || s.training.pauseReason === 'until-ac');
    case 'install-update':
      return s.updater.status === 'ready' && !['training', 'starting', 'stopping', 'restarting'].includes(t);
    case 'open':
    case 'quit':
      return true;
  }
}

test('tray: every enabled action is one the state allows, and the essential ones are there', () => {
  for (const status of ALL_STATUSES)
    for (const pauseReason of PAUSE_REASONS)
      for (const onBattery of [false, true])
        for (const wallet of [true, false])
          for (const onboarded of [true, false])
            for (const updater of [{ status: 'idle', lastChecked: null }, { status: 'ready', version: '2.0.0' }] as UpdaterState[])
              for (const platform of ['darwin', 'win32', 'linux'] as NodeJS.Platform[]) {
                const s = app({ training: { status, pauseReason }, power: { onBattery }, settings: { onboarded }, updater, ...(wallet ? {} : { wallet: null }) });
                const m = trayModel(s, platform);
                const where = JSON.stringify({ status, pauseReason, onBattery, wallet, onboarded, updater: updater.status, platform });
                const enabled = m.items.filter((i) => i.enabled && i.action !== undefined).map((i) => i.action!);
                for (const a of enabled) assert.ok(allowed(a, s), `${a} enabled: ${where}`);
                // Everything allowed is offered and enabled (Start is greyed, not hidden, when blocked).
                for (const a of ['start', 'stop', 'pause-hour', 'pause-until-ac', 'resume', 'install-update', 'open', 'quit'] as TrayAction[]) {
                  if (allowed(a, s)) assert.ok(enabled.includes(a), `${a} missing: ${where}`);
                }
                // Exactly one of Start and Stop, and the status line first.
                assert.equal(m.items.filter((i) => i.action === 'start' || i.action === 'stop').length, 1, where);
                assert.equal(m.items[0].enabled, false);
                assert.equal(m.items[0].action, undefined);
                assert.equal(m.items.at(-1)?.action, 'quit');
                assert.ok(m.items[0].label.length > 0);
              }
});
