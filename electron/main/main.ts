// The Electron main process: thin glue between Electron and the controllers in electron/core.
// One instance only; a hardened window (window.ts); the bridge's calls checked and dispatched; the
// tray; training in a utility process; power events from powerMonitor; the key in safeStorage;
// logs through electron-log. Closing the window keeps training in the tray; Quit stops the
// training properly (the work in hand is finished or handed back) before the app exits.
import type { BrowserWindow} from 'electron';
import { type WebFrameMain, app, autoUpdater as electronAutoUpdater, dialog, ipcMain } from 'electron';
import log from 'electron-log/main';
import { availableParallelism, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppController } from '../core/app.ts';
import { dispatch } from '../core/dispatch.ts';
import { checkHardware } from '../core/hardware.ts';
import { setLinuxAutostart } from '../core/login-item.ts';
import { configureLog, logFiles, workerLog } from '../core/logs.ts';
import { SettingsStore } from '../core/settings.ts';
import type { TrayAction } from '../core/tray-model.ts';
import { WalletStore } from '../core/wallet.ts';
import { CHANNELS, STATE_EVENT } from '../ipc-contract.ts';
import { electronKeepAwake, electronPower } from './power.ts';
import { safeStorageBox } from './secrets.ts';
import { createTray } from './tray.ts';
import { createUpdates } from './updater.ts';
import { APP_ORIGIN, createMainWindow, registerAppScheme, serveRenderer } from './window.ts';
import { utilityWorkerSpawner } from './worker-process.ts';

// The bundle's layout (scripts/build-app.ts): main.js, preload.cjs, worker.js, renderer/, tray/.
const here = dirname(fileURLToPath(import.meta.url));
const STARTED_HIDDEN = process.argv.includes('--hidden');

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  registerAppScheme();
  void main();
}

/** Only the app's own page may call the bridge. */
function trusted(frame: WebFrameMain | null): boolean {
  return frame !== null && frame.url.startsWith(`${APP_ORIGIN}/`);
}

async function main(): Promise<void> {
  await app.whenReady();
  configureLog(log, { dir: app.getPath('logs') });
  log.info(`Train at Home ${app.getVersion()} starting (Electron ${process.versions.electron}, ${process.platform} ${process.arch})`);
  process.on('uncaughtException', (e) => log.error('uncaught exception:', e));
  process.on('unhandledRejection', (e) => log.error('unhandled rejection:', e));

  const dataDir = app.getPath('userData');
  const { store: settings, notice } = await SettingsStore.open(join(dataDir, 'settings.json'));
  const worker = workerLog(log);
  const updates = createUpdates(log);
  const controller = new AppController({
    version: app.getVersion(),
    cores: availableParallelism(),
    memoryBytes: totalmem(),
    settings,
    wallet: new WalletStore({ dir: join(dataDir, 'wallet'), box: safeStorageBox(), allowPlaintext: () => settings.get().allowPlaintextKey }),
    spawnWorker: utilityWorkerSpawner(join(here, 'worker.js'), (line) => worker.info(line)),
    power: electronPower(),
    keepAwake: electronKeepAwake(),
    dialogs: {
      saveFile: async ({ title, defaultName }) => {
        const r = await dialog.showSaveDialog({ title, defaultPath: join(app.getPath('documents'), defaultName) });
        return r.canceled || !r.filePath ? null : r.filePath;
      },
    },
    checkHardware: () => checkHardware({ dataDir }),
    logFiles: logFiles(app.getPath('logs')),
    log: (level, message) => log[level](message),
    setLoginItem: (open) => {
      if (process.platform === 'linux') {
        setLinuxAutostart({ id: 'train-at-home', name: 'Train at Home', executable: process.env.APPIMAGE ?? process.execPath, args: ['--hidden'], enabled: open }).catch((e: Error) => log.warn(`start at login: ${e.message}`));
      } else app.setLoginItemSettings({ openAtLogin: open, args: ['--hidden'] });
    },
    notices: notice ? [notice] : [],
    updates: updates ?? undefined,
  });

  serveRenderer(join(here, 'renderer'));
  for (const channel of CHANNELS) {
    ipcMain.handle(channel, (event, ...args: unknown[]) => {
      if (!trusted(event.senderFrame)) return { ok: false, error: 'refused: the call did not come from the app' };
      return dispatch(controller, channel, args, (m) => log.warn(m));
    });
  }

  let win: BrowserWindow | null = null;
  const showWindow = () => {
    if (!win || win.isDestroyed()) {
      win = createMainWindow({ preload: join(here, 'preload.cjs'), show: true });
      win.on('closed', () => (win = null));
    } else {
      if (win.isMinimized()) win.restore();
      win.show();
      win.focus();
    }
  };
  app.on('second-instance', showWindow);
  app.on('activate', showWindow);
  // Closing the window keeps the app (and its training) in the tray.
  app.on('window-all-closed', () => undefined);

  let quitting = false;
  const quit = () => app.quit();
  // "Restart to update" stopped the training before it quit (core/updater.ts): let the updater's
  // quit through, as the macOS and Windows installers expect, instead of holding it for dispose().
  electronAutoUpdater.on('before-quit-for-update', () => {
    quitting = true;
    // The new version may start before this process has gone: it must not find the lock taken.
    app.releaseSingleInstanceLock();
    void controller.dispose();
  });
  app.on('before-quit', (event) => {
    if (quitting) return;
    event.preventDefault();
    quitting = true;
    log.info('quitting: stopping the training first');
    controller.dispose().finally(() => app.exit(0));
  });

  const onAction = (action: TrayAction) => {
    const calls: Partial<Record<TrayAction, () => Promise<unknown>>> = {
      start: () => controller.handle('training:start', []),
      stop: () => controller.handle('training:stop', []),
      'pause-hour': () => controller.handle('training:pause', [{ minutes: 60 }]),
      'pause-until-ac': () => controller.handle('training:pause', [{ untilAc: true }]),
      resume: () => controller.handle('training:resume', []),
      // The tray offers it only when no training runs; otherwise the window asks to confirm.
      'install-update': () => controller.handle('updater:install', [{ confirmTraining: false }]),
    };
    if (action === 'open') showWindow();
    else if (action === 'quit') quit();
    else calls[action]?.().catch((e: Error) => {
      log.warn(`tray ${action}: ${e.message}`);
      showWindow();
    });
  };
  const tray = createTray({ iconDir: join(here, 'tray'), onAction });
  controller.onState((state) => {
    tray.update(state);
    if (win && !win.isDestroyed()) win.webContents.send(STATE_EVENT, state);
  });
  await controller.init();
  tray.update(controller.state());
  if (!(STARTED_HIDDEN || settings.get().startMinimised)) showWindow();
}
