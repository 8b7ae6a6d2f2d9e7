// The auto-updater's state as the app shows it, driven by the updater's events. Pure: the
// UpdateController (updater.ts) turns electron-updater's events into these, and both it and the
// AppController (AppState.updater) apply them here: the one place transitions are decided.
// Events arrive out of order or twice in practice (a manual check racing a scheduled one), so an
// event that makes no sense in the current state leaves it unchanged instead of throwing.
import type { TrainingState, UpdaterState } from '../ipc-contract.ts';

export type UpdaterEvent =
  | { type: 'check' }
  | { type: 'not-available'; at: number }
  | { type: 'available'; version: string }
  | { type: 'progress'; percent: number }
  | { type: 'downloaded'; version: string }
  | { type: 'error'; message: string };

export const initialUpdaterState: UpdaterState = { status: 'idle', lastChecked: null };

export function nextUpdaterState(state: UpdaterState, event: UpdaterEvent): UpdaterState {
  switch (event.type) {
    case 'check':
      // Already busy or done: a second check would only restart what is under way or lose the download.
      return state.status === 'idle' || state.status === 'error' || state.status === 'available' ? { status: 'checking' } : state;
    case 'not-available':
      return state.status === 'checking' ? { status: 'idle', lastChecked: event.at } : state;
    case 'available':
      return state.status === 'checking' ? { status: 'available', version: event.version } : state;
    case 'progress': {
      if (state.status === 'available') return { status: 'downloading', version: state.version, percent: clampPercent(event.percent, 0) };
      if (state.status === 'downloading') return { ...state, percent: clampPercent(event.percent, state.percent) };
      return state;
    }
    case 'downloaded':
      return state.status === 'available' || state.status === 'downloading' ? { status: 'ready', version: event.version } : state;
    case 'error':
      // A failed re-check must not hide an update that is already downloaded and waiting.
      return state.status === 'ready' ? state : { status: 'error', message: event.message };
  }
}

/** 0–100; a NaN (or otherwise unusable) figure keeps the last one shown. */
function clampPercent(percent: number, previous: number): number {
  if (Number.isNaN(percent)) return previous;
  return Math.min(100, Math.max(0, percent));
}

/**
 * Whether "Restart to update" may run now. Installing quits and restarts the app, which would
 * drop the work in hand, so it is refused until training is stopped: the app never restarts
 * under a running training without the user's say.
 */
export function mayInstallNow(updater: UpdaterState, training: TrainingState['status']): { ok: true } | { ok: false; message: string } {
  if (updater.status !== 'ready') return { ok: false, message: 'No update is ready to install yet.' };
  if (training === 'training' || training === 'starting' || training === 'stopping' || training === 'restarting') {
    return { ok: false, message: `Stop training first: installing version ${updater.version} restarts Train at Home.` };
  }
  return { ok: true };
}
