// What the tray icon and its menu show for a given app state. Pure: the glue turns the model into
// Electron's Tray and Menu (a macOS template icon is `<icon>Template.png`) and maps each action to
// the controller's call, so every state's menu is testable without a desktop.
import type { AppState, TrainingStatus } from '../ipc-contract.ts';
import { isUserPause } from './power-policy.ts';
import { mayInstallNow } from './updater-state.ts';

export type TrayAction = 'start' | 'stop' | 'pause-hour' | 'pause-until-ac' | 'resume' | 'open' | 'quit' | 'install-update';
export interface TrayItem {
  label: string;
  action?: TrayAction;
  enabled: boolean;
  type?: 'normal' | 'separator';
}
export interface TrayModel {
  icon: 'idle' | 'training' | 'paused' | 'error';
  /** macOS menu-bar title (short, e.g. "1.2k tok/s"); '' elsewhere */
  title: string;
  tooltip: string;
  items: TrayItem[];
}

// Windows cuts tray tooltips at 127 characters; keep them whole everywhere.
const TOOLTIP_MAX = 127;
const SEPARATOR: TrayItem = { label: '', type: 'separator', enabled: false };
/** Statuses in which there is a training to stop. */
const RUNNING: readonly TrainingStatus[] = ['starting', 'training', 'restarting', 'paused'];

export function trayModel(state: AppState, platform: NodeJS.Platform): TrayModel {
  const { training } = state;
  const blocker = startBlocker(state);
  const status = statusLine(state, blocker);
  const items: TrayItem[] = [{ label: status, enabled: false }];

  if (RUNNING.includes(training.status)) items.push({ label: 'Stop training', action: 'stop', enabled: true });
  // Stopped or in error: Start, unless setup is unfinished; while stopping: Start, not yet.
  else items.push({ label: 'Start training', action: 'start', enabled: training.status !== 'stopping' && blocker === null });

  // Pausing makes sense only for a training under way. "Until plugged in" stays in the menu so it
  // does not jump around, but is disabled on mains power, where the pause would end at once.
  if (training.status === 'training' || training.status === 'starting') {
    items.push({ label: 'Pause for 1 hour', action: 'pause-hour', enabled: true });
    items.push({ label: 'Pause until plugged in', action: 'pause-until-ac', enabled: state.power.onBattery });
  }
  // Only the user's own pauses can be resumed; battery, heat or idle pauses end by themselves.
  if (training.status === 'paused' && isUserPause(training.pauseReason)) items.push({ label: 'Resume training', action: 'resume', enabled: true });

  items.push(SEPARATOR);
  if (state.updater.status === 'ready') {
    const version = withV(state.updater.version);
    // Installing restarts the app: offered while training only as a hint to stop first.
    items.push(
      mayInstallNow(state.updater, training.status).ok
        ? { label: `Restart to update to ${version}`, action: 'install-update', enabled: true }
        : { label: `Update to ${version} ready: stop training to install`, action: 'install-update', enabled: false },
    );
  }
  items.push({ label: 'Open Train at Home', action: 'open', enabled: true });
  items.push(SEPARATOR);
  items.push({ label: 'Quit', action: 'quit', enabled: true });

  return {
    icon: iconFor(training.status),
    title: platform === 'darwin' && training.status === 'training' ? `${compactRate(training.tokensPerS)} tok/s` : '',
    tooltip: truncate(`Train at Home — ${status}`, TOOLTIP_MAX),
    items,
  };
}

/** Why Start cannot be offered yet, in words for the status line; null when it can. */
function startBlocker(state: AppState): string | null {
  if (!state.settings.onboarded) return 'Finish setting up to start';
  if (state.wallet === null) return 'Set up your wallet to start';
  return null;
}

function statusLine(state: AppState, blocker: string | null): string {
  const t = state.training;
  switch (t.status) {
    case 'stopped':
      return blocker ?? 'Not training';
    case 'starting':
      return 'Starting…';
    case 'training': {
      // StageInfo.stage counts from 0 (as the orchestrator does); people count from 1.
      const where = t.stage ? `Training stage ${t.stage.stage + 1} of ${t.stage.stageCount}` : 'Training';
      return `${where} · ${integer.format(Number.isFinite(t.tokensPerS) ? t.tokensPerS : 0)} tokens/s`;
    }
    case 'paused':
      return t.reason ?? 'Paused';
    case 'stopping':
      return 'Stopping…';
    case 'restarting':
      return t.reason ?? 'Restarting…';
    case 'error':
      return t.reason ?? 'Training stopped because of an error';
  }
}

function iconFor(status: TrainingStatus): TrayModel['icon'] {
  switch (status) {
    case 'starting':
    case 'training':
      return 'training';
    case 'paused':
    case 'stopping':
      return 'paused';
    case 'error':
    case 'restarting':
      return 'error';
    case 'stopped':
      return 'idle';
  }
}

// A fixed locale: the menu reads the same on every machine, and tests stay deterministic.
const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 950 → "950", 12345 → "12.3k", 2_500_000 → "2.5M": short enough for the macOS menu bar. */
export function compactRate(n: number): string {
  const v = Math.round(Math.max(0, Number.isFinite(n) ? n : 0));
  if (v < 1000) return String(v);
  const k = Math.round(v / 100) / 10;
  if (k < 1000) return `${trimZero(k)}k`;
  return `${trimZero(Math.round(v / 100_000) / 10)}M`;
}

function trimZero(x: number): string {
  return x.toFixed(1).replace(/\.0$/, '');
}

function withV(version: string): string {
  return version.startsWith('v') ? version : `v${version}`;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
