// electron-updater itself, run under plain Node: the tests drive the real updater (its generic
// provider, staged rollouts, sha512 verification and download cache) against a local HTTP
// server, and `tah app` can use the same. electron-updater needs two things from Electron, and
// this file gives it Node's instead, as electron-builder's own tests do:
//  - an AppAdapter (the app's version, name and folders, and its quit and relaunch): NodeAppAdapter,
//    whose folders are any you choose and whose quit and relaunch are recorded (and passed on);
//  - an HTTP executor: AppUpdater makes Electron's `net` one only when it builds its own adapter,
//    and leaves the `httpExecutor` field null when it is given one; NodeUpdater puts
//    NodeHttpExecutor (builder-util-runtime's HttpExecutor over node:http/https) there.
// NodeUpdater extends electron-updater's BaseUpdater, the base of its Linux and Windows updaters:
// check, staging, download and the cache are BaseUpdater's own code. Only the two steps that are
// an OS's are its: which file of the release to download (by extension, as DebUpdater does), and
// installing, which here hands the verified file to a callback and never runs an installer.
import { mkdir, writeFile } from 'node:fs/promises';
import { type ClientRequest, type IncomingMessage, type RequestOptions, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { type DownloadOptions, HttpExecutor, configureRequestOptions, configureRequestUrl, newError } from 'builder-util-runtime';
import { BaseUpdater, type Logger } from 'electron-updater';
import type { AppAdapter } from 'electron-updater/out/AppAdapter.js';
import type { DownloadExecutorResult, DownloadUpdateOptions } from 'electron-updater/out/AppUpdater.js';
import type { InstallOptions } from 'electron-updater/out/BaseUpdater.js';

/** builder-util-runtime's HTTP client over node:http and node:https (Electron's uses `net`). */
export class NodeHttpExecutor extends HttpExecutor<ClientRequest> {
  createRequest(options: RequestOptions, callback: (response: IncomingMessage) => void): ClientRequest {
    return (options.protocol === 'http:' ? httpRequest : httpsRequest)(options, callback);
  }

  /**
   * Downloads `url` to `destination`, verifying options.sha512 on the way (HttpExecutor's pipes:
   * a mismatch rejects with ERR_CHECKSUM_MISMATCH). The same as ElectronHttpExecutor.download,
   * which the base class leaves to its subclasses.
   */
  download(url: URL, destination: string, options: DownloadOptions): Promise<string> {
    return options.cancellationToken.createPromise<string>((resolve, reject, onCancel) => {
      const requestOptions: RequestOptions = { headers: options.headers ?? undefined };
      configureRequestUrl(url, requestOptions);
      configureRequestOptions(requestOptions);
      this.doDownload(requestOptions, { destination, options, onCancel, callback: (e) => (e ? reject(e) : resolve(destination)), responseHandler: null }, 0);
    });
  }
}

export interface NodeAppAdapterOptions {
  version: string;
  name?: string;
  /** Where app-update.yml is (writeAppUpdateConfig). */
  appUpdateConfigPath: string;
  /** Where the per-install staging id (.updaterId) is kept. */
  userDataPath: string;
  /** The parent of the download cache (`<baseCachePath>/<updaterCacheDirName>/pending`). */
  baseCachePath: string;
  /** Called after the call is recorded; a real app exits or restarts there. */
  onQuit?: () => void;
  onRelaunch?: () => void;
}

/** The app as electron-updater sees it, in Node. Counts as packaged: electron-updater checks only then. */
export class NodeAppAdapter implements AppAdapter {
  readonly version: string;
  readonly name: string;
  readonly isPackaged = true;
  readonly appUpdateConfigPath: string;
  readonly userDataPath: string;
  readonly baseCachePath: string;
  /** 'quit' and 'relaunch', in the order they were asked for. */
  readonly calls: ('quit' | 'relaunch')[] = [];
  private readonly quitHandlers: ((exitCode: number) => void)[] = [];

  constructor(private readonly opts: NodeAppAdapterOptions) {
    this.version = opts.version;
    this.name = opts.name ?? 'train-at-home';
    this.appUpdateConfigPath = opts.appUpdateConfigPath;
    this.userDataPath = opts.userDataPath;
    this.baseCachePath = opts.baseCachePath;
  }

  whenReady(): Promise<void> {
    return Promise.resolve();
  }

  relaunch(): void {
    this.calls.push('relaunch');
    this.opts.onRelaunch?.();
  }

  /** As Electron's app.quit: the 'quit' handlers run (electron-updater installs on quit there). */
  quit(): void {
    this.calls.push('quit');
    for (const h of this.quitHandlers.splice(0)) h(0);
    this.opts.onQuit?.();
  }

  onQuit(handler: (exitCode: number) => void): void {
    this.quitHandlers.push(handler);
  }
}

export interface NodeUpdaterOptions {
  /** Which of the release's files to download, by extension (default AppImage, the Linux app's). */
  fileExtension?: string;
  /** Installs the verified file; absent: installing is refused with an error. Tests record it. */
  install?: (file: string) => void;
}

/** electron-updater's BaseUpdater in Node: a real check and a verified download, no OS installer. */
export class NodeUpdater extends BaseUpdater {
  // AppUpdater's field (absent from its .d.ts): null when an adapter is given, so it is set here.
  declare protected httpExecutor: NodeHttpExecutor;
  private readonly fileExtension: string;
  private readonly installFile: ((file: string) => void) | undefined;

  constructor(app: AppAdapter, opts: NodeUpdaterOptions = {}) {
    super(null, app);
    this.httpExecutor = new NodeHttpExecutor();
    this.fileExtension = opts.fileExtension ?? 'AppImage';
    this.installFile = opts.install;
  }

  /** @private electron-updater's hook: the release's file for this system, downloaded into the cache and verified. */
  protected doDownloadUpdate(options: DownloadUpdateOptions): Promise<DownloadExecutorResult> {
    const files = options.updateInfoAndProvider.provider.resolveFiles(options.updateInfoAndProvider.info);
    const ext = `.${this.fileExtension.toLowerCase()}`;
    const fileInfo = files.find((f) => f.url.pathname.toLowerCase().endsWith(ext));
    if (!fileInfo) return Promise.reject(newError(`The release has no ${ext} file`, 'ERR_UPDATER_NO_FILES_PROVIDED'));
    return this.executeDownload({
      fileExtension: this.fileExtension,
      fileInfo,
      downloadUpdateOptions: options,
      task: async (destination, downloadOptions) => {
        await this.httpExecutor.download(fileInfo.url, destination, downloadOptions);
      },
    });
  }

  /** BaseUpdater's, without its call into Electron's own autoUpdater (there is none in Node). */
  override quitAndInstall(isSilent = false, isForceRunAfter = false): void {
    this._logger.info('Install on explicit quitAndInstall');
    if (this.install(isSilent, isSilent ? isForceRunAfter : this.autoRunAppAfterInstall)) setImmediate(() => this.app.quit());
    else this.quitAndInstallCalled = false;
  }

  protected doInstall(options: InstallOptions): boolean {
    const file = this.installerPath;
    if (file === null) {
      this.dispatchError(new Error('No update has been downloaded'));
      return false;
    }
    if (!this.installFile) {
      this.dispatchError(new Error('This build cannot install updates by itself'));
      return false;
    }
    this.installFile(file);
    if (options.isForceRunAfter) this.app.relaunch();
    return true;
  }
}

/** app-update.yml as electron-builder writes it into a package from its `publish` config (generic provider). */
export async function writeAppUpdateConfig(path: string, opts: { url: string; updaterCacheDirName: string; channel?: string }): Promise<void> {
  // JSON strings are valid YAML scalars: no YAML writer needed for three keys.
  const lines = [`provider: generic`, `url: ${JSON.stringify(opts.url)}`, `updaterCacheDirName: ${JSON.stringify(opts.updaterCacheDirName)}`];
  if (opts.channel) lines.push(`channel: ${JSON.stringify(opts.channel)}`);
  await writeFile(path, `${lines.join('\n')}\n`);
}

export interface NodeUpdaterSetup {
  /** Folder for the config, the staging id and the download cache. */
  dir: string;
  version: string;
  /** The generic provider's folder: latest-linux.yml and the files it names. */
  feedUrl: string;
  name?: string;
  logger?: Logger | null;
  onQuit?: () => void;
  onRelaunch?: () => void;
}

/** A NodeUpdater with its adapter, config and folders under `dir`: the updater a test or `tah app` uses. */
export async function createNodeUpdater(setup: NodeUpdaterSetup & NodeUpdaterOptions): Promise<{ updater: NodeUpdater; app: NodeAppAdapter; cacheDir: string }> {
  const name = setup.name ?? 'train-at-home';
  const configPath = join(setup.dir, 'app-update.yml');
  await mkdir(join(setup.dir, 'user-data'), { recursive: true });
  await mkdir(join(setup.dir, 'cache'), { recursive: true });
  await writeAppUpdateConfig(configPath, { url: setup.feedUrl, updaterCacheDirName: `${name}-updater` });
  const app = new NodeAppAdapter({
    version: setup.version,
    name,
    appUpdateConfigPath: configPath,
    userDataPath: join(setup.dir, 'user-data'),
    baseCachePath: join(setup.dir, 'cache'),
    onQuit: setup.onQuit,
    onRelaunch: setup.onRelaunch,
  });
  const updater = new NodeUpdater(app, { fileExtension: setup.fileExtension, install: setup.install });
  if (setup.logger !== undefined) updater.logger = setup.logger;
  return { updater, app, cacheDir: join(setup.dir, 'cache', `${name}-updater`) };
}
