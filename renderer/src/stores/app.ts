// The app's state as main pushes it (AppState), the bridge it came from, and every action the UI
// can take on it. Each action goes through `act`, which records the controller's error sentence
// under the action's key, so that the screen shows it next to the control that caused it, and
// never lets a rejection escape unhandled.
import { create } from 'zustand';
import type { AppState, Bridge, SettingsPatch } from '../../../electron/ipc-contract.ts';
import { isConnectionLost, messageOf, mode, openBridge } from '../bridge.ts';

export type ActionKey =
  | 'update'
  | 'start'
  | 'stop'
  | 'pause'
  | 'resume'
  | 'hardware'
  | 'walletCreate'
  | 'walletImport'
  | 'confirmBackup'
  | 'payout'
  | 'reveal'
  | 'walletExport'
  | 'settings'
  | 'plaintext'
  | 'onboard'
  | 'diagnostics'
  | 'notice';

export type Connection = 'connecting' | 'open' | 'lost' | 'failed';

interface AppStore {
  bridge: Bridge | null;
  state: AppState | null;
  connection: Connection;
  connectionError: string | null;
  /** The last error of each action, until it is tried again or cleared. */
  errors: Partial<Record<ActionKey, string>>;
  busy: Partial<Record<ActionKey, boolean>>;
  /** When the last state push arrived (the connection watchdog reads it). */
  lastPushAt: number;
}

export const useApp = create<AppStore>(() => ({
  bridge: null,
  state: null,
  connection: 'connecting',
  connectionError: null,
  errors: {},
  busy: {},
  lastPushAt: 0,
}));

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

let unsubscribe: (() => void) | null = null;
let watchdog: number | undefined;

/** Opens the bridge, subscribes to state pushes and reads the first state. */
export async function connect(): Promise<void> {
  useApp.setState({ connection: 'connecting', connectionError: null });
  try {
    const bridge = await openBridge();
    unsubscribe?.();
    unsubscribe = bridge.onState((state) => useApp.setState({ state, lastPushAt: Date.now() }));
    const state = await bridge.call('state:get');
    useApp.setState({ bridge, state, connection: 'open', lastPushAt: Date.now() });
    if (mode.kind === 'browser') startWatchdog();
  } catch (e) {
    useApp.setState({ connection: 'failed', connectionError: messageOf(e) });
  }
}

/**
 * In a browser the WebSocket may close (the host stopped) without the client saying so; main pushes
 * at least every few seconds, so a long silence is checked with a cheap call.
 */
function startWatchdog(): void {
  window.clearInterval(watchdog);
  watchdog = window.setInterval(() => {
    const { bridge, lastPushAt, connection } = useApp.getState();
    if (!bridge || connection !== 'open' || Date.now() - lastPushAt < 12_000) return;
    bridge.call('state:get').then(
      (state) => useApp.setState({ state, lastPushAt: Date.now() }),
      (e: unknown) => {
        if (isConnectionLost(e)) useApp.setState({ connection: 'lost', connectionError: messageOf(e) });
      },
    );
  }, 5_000);
}

function setKey<K extends 'errors' | 'busy'>(field: K, key: ActionKey, value: AppStore[K][ActionKey] | undefined): void {
  useApp.setState((s) => {
    const next = { ...s[field] };
    if (value === undefined) delete next[key];
    else next[key] = value;
    return { [field]: next } as Pick<AppStore, K>;
  });
}

/** Forget every action's error (on navigation: an old message would not be next to its control). */
export function clearErrors(): void {
  useApp.setState({ errors: {} });
}

export function clearError(key: ActionKey): void {
  if (useApp.getState().errors[key] !== undefined) setKey('errors', key, undefined);
}

/** Runs one bridge call for an action: busy while it runs, its error recorded, never thrown. */
export async function act<T>(key: ActionKey, fn: (bridge: Bridge) => Promise<T>): Promise<Outcome<T>> {
  const { bridge } = useApp.getState();
  if (!bridge) {
    const error = 'Not connected to the app yet.';
    setKey('errors', key, error);
    return { ok: false, error };
  }
  setKey('busy', key, true);
  setKey('errors', key, undefined);
  try {
    const value = await fn(bridge);
    return { ok: true, value };
  } catch (e) {
    const error = messageOf(e);
    setKey('errors', key, error);
    if (isConnectionLost(e)) useApp.setState({ connection: 'lost', connectionError: error });
    return { ok: false, error };
  } finally {
    setKey('busy', key, undefined);
  }
}

/** A read for a store of its own (earnings, network, logs): its error is that store's to show. */
export async function query<T>(fn: (bridge: Bridge) => Promise<T>): Promise<Outcome<T>> {
  const { bridge } = useApp.getState();
  if (!bridge) return { ok: false, error: 'Not connected to the app yet.' };
  try {
    return { ok: true, value: await fn(bridge) };
  } catch (e) {
    if (isConnectionLost(e)) useApp.setState({ connection: 'lost', connectionError: messageOf(e) });
    return { ok: false, error: messageOf(e) };
  }
}

/** Calls that answer with the whole state: apply it at once rather than wait for the push. */
async function actState(key: ActionKey, fn: (bridge: Bridge) => Promise<AppState>): Promise<Outcome<AppState>> {
  const r = await act(key, fn);
  if (r.ok) useApp.setState({ state: r.value });
  return r;
}

export const actions = {
  start: () => actState('start', (b) => b.call('training:start')),
  stop: () => actState('stop', (b) => b.call('training:stop')),
  pauseFor: (minutes: number) => actState('pause', (b) => b.call('training:pause', { minutes })),
  pauseUntilAc: () => actState('pause', (b) => b.call('training:pause', { untilAc: true })),
  resume: () => actState('resume', (b) => b.call('training:resume')),
  dismissNotice: (id: string) => actState('notice', (b) => b.call('notice:dismiss', id)),
  checkHardware: () => act('hardware', (b) => b.call('hardware:check')),
  createWallet: () => act('walletCreate', (b) => b.call('wallet:create')),
  importWallet: (mnemonic: string) => act('walletImport', (b) => b.call('wallet:import', { mnemonic })),
  confirmBackup: () => act('confirmBackup', (b) => b.call('wallet:confirm-backup')),
  setPayout: (address: string | null) => act('payout', (b) => b.call('wallet:set-payout', { address })),
  revealMnemonic: () => act('reveal', (b) => b.call('wallet:reveal-mnemonic')),
  exportWallet: () => act('walletExport', (b) => b.call('wallet:export')),
  exportDiagnostics: () => act('diagnostics', (b) => b.call('diagnostics:export')),
  checkForUpdates: () => act('update', (b) => b.call('updater:check')),
  /** Restart into the downloaded update; `confirmTraining`: the user agreed to stop training for it. */
  installUpdate: (confirmTraining: boolean) => actState('update', (b) => b.call('updater:install', { confirmTraining })),
  /** A settings change; `key` says whose control shows its error. */
  updateSettings: async (patch: SettingsPatch, key: ActionKey = 'settings') => {
    const r = await act(key, (b) => b.call('settings:update', patch));
    if (r.ok) useApp.setState((s) => (s.state ? { state: { ...s.state, settings: r.value } } : {}));
    return r;
  },
};

/** Whether the button offers Stop: from Start until the worker has fully stopped. */
export function wantsToTrain(state: AppState): boolean {
  return state.training.status !== 'stopped';
}

/** The user pressed Stop and the worker is winding down ('stopping' with no pause behind it). */
export function isWindingDown(state: AppState): boolean {
  return state.training.status === 'stopping' && state.training.reason === null;
}

/** The wallet cannot be stored or opened because there is no OS keyring (and no consent yet). */
export function isKeyringProblem(message: string | null | undefined): boolean {
  return !!message && /keyring/i.test(message);
}
