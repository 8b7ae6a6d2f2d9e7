// The auto-updater's state (AppState.updater) as one short line in the footer, with what the
// user can do about it: check now, or restart into a downloaded update. Restarting never
// interrupts training silently: while training, the app asks first, and main stops training
// (finishing or handing back the work in hand) before it restarts.
import { useState } from 'react';
import type { TrainingStatus, UpdaterState } from '../../../electron/ipc-contract.ts';
import { formatTime } from '../format.ts';
import { actions, useApp } from '../stores/app.ts';
import { ErrorText } from './ErrorText.tsx';

function describe(u: UpdaterState): string {
  switch (u.status) {
    case 'idle':
      return u.lastChecked === null ? 'Up to date' : `Up to date (checked ${formatTime(u.lastChecked)})`;
    case 'checking':
      return 'Checking for updates…';
    case 'available':
      return `Update ${u.version} available`;
    case 'downloading':
      return `Downloading update ${u.version}: ${Math.round(u.percent)} %`;
    case 'ready':
      return `Update ${u.version} is ready`;
    case 'error':
      // Main's message is already a whole sentence.
      return u.message;
  }
}

const BUSY: TrainingStatus[] = ['starting', 'training', 'stopping', 'restarting'];

export function Updater({ updater, version, training }: { updater: UpdaterState; version: string; training: TrainingStatus }) {
  const busy = useApp((s) => !!s.busy.update);
  const error = useApp((s) => s.errors.update);
  const [confirming, setConfirming] = useState(false);
  const trains = BUSY.includes(training);
  return (
    <div className={`updater updater-${updater.status}`} data-testid="updater-status" data-status={updater.status}>
      <span>
        Train at Home {version} · {describe(updater)}
      </span>
      {updater.status === 'ready' &&
        (confirming ? (
          <span className="updater-confirm" role="group" aria-label="Restart to update while training">
            Training stops first (the work in hand is finished or handed back).
            <button type="button" data-testid="update-confirm" disabled={busy} onClick={() => void actions.installUpdate(true)}>
              Stop and restart
            </button>
            <button type="button" data-testid="update-cancel" onClick={() => setConfirming(false)}>
              Not now
            </button>
          </span>
        ) : (
          <button type="button" data-testid="update-install" disabled={busy} onClick={() => (trains ? setConfirming(true) : void actions.installUpdate(false))}>
            Restart to update
          </button>
        ))}
      {(updater.status === 'idle' || updater.status === 'error') && (
        <button type="button" className="link-button" data-testid="update-check" disabled={busy} onClick={() => void actions.checkForUpdates()}>
          Check now
        </button>
      )}
      <ErrorText testid="update-error" message={error} />
    </div>
  );
}
