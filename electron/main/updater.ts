// The auto-updater in the app: electron-updater's own autoUpdater (Electron's net, the system's
// proxy; on Linux the AppImage or, for the deb, the deb updater) driven by the UpdateController
// of electron/core/updater.ts. It reads the feed from app-update.yml, which electron-builder
// writes into the package from the `publish` config of electron-builder.config.ts (the generic
// provider: an https folder, an S3 bucket behind it, holding latest-*.yml and the artifacts).
// An unpackaged app, or a package without app-update.yml (an AppImage run unpacked, a deb built
// without publish), has no updates: the caller gets null and the bridge says so.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { app } from 'electron';
import type { MainLogger } from 'electron-log';
import electronUpdater from 'electron-updater';
import { UpdateController } from '../core/updater.ts';

export function createUpdates(log: MainLogger): UpdateController | null {
  if (!app.isPackaged) {
    log.info('updates: off (not a packaged app)');
    return null;
  }
  if (!existsSync(join(process.resourcesPath, 'app-update.yml'))) {
    log.warn('updates: off (the package has no app-update.yml: built without a publish config)');
    return null;
  }
  // electron-updater is CommonJS: its autoUpdater is a getter on the module object, made on first use.
  const { autoUpdater } = electronUpdater;
  const scoped = log.scope('updater');
  autoUpdater.logger = scoped;
  // Linux: an AppImage updates only when started as one (APPIMAGE set); a deb knows its package type.
  if (!autoUpdater.isUpdaterActive()) {
    log.warn('updates: off (this kind of package cannot update itself)');
    return null;
  }
  return new UpdateController({ updater: autoUpdater, log: (level, message) => scoped[level](message) });
}
