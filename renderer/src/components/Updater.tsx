// The auto-updater's state (AppState.updater) as one short line in the footer.
import type { UpdaterState } from '../../../electron/ipc-contract.ts';
import { formatTime } from '../format.ts';

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
      return `Update ${u.version} ready: it installs when the app restarts`;
    case 'error':
      return `Update check failed: ${u.message}`;
  }
}

export function Updater({ updater, version }: { updater: UpdaterState; version: string }) {
  return (
    <p className={`updater updater-${updater.status}`} data-testid="updater-status" data-status={updater.status}>
      Train at Home {version} · {describe(updater)}
    </p>
  );
}
