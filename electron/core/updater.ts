// The auto-update flow, apart from Electron: when to check (30 s after start, then 4 h after each
// check), what to download, what people are told when something fails, and when the app may
// restart to install. It drives an updater with the small surface of electron-updater's
// AppUpdater (the real one in the app: electron/main/updater.ts; the same class under Node in the
// tests: updater-node.ts) and turns its events into UpdaterEvents for the pure state machine in
// updater-state.ts, which stays the one source of transitions. Never imports electron.
import type { TrainingStatus, UpdaterState } from '../ipc-contract.ts';
import { type UpdaterEvent, initialUpdaterState, mayInstallNow, nextUpdaterState } from './updater-state.ts';

/** What a release's metadata (latest-*.yml, electron-updater's UpdateInfo) says; unchecked, it came from a server. */
export interface ReleaseInfo {
  version?: unknown;
  files?: unknown;
}

/** The events of electron-updater's AppUpdater this module listens to. */
export interface UpdaterEvents {
  'checking-for-update': () => void;
  'update-available': (info: ReleaseInfo) => void;
  'update-not-available': (info: ReleaseInfo) => void;
  'download-progress': (progress: { percent: number }) => void;
  'update-downloaded': (info: ReleaseInfo) => void;
  error: (error: Error, message?: string) => void;
}

/** The part of electron-updater's AppUpdater the controller uses (a test may hand in its own). */
export interface Updater {
  autoDownload: boolean;
  autoInstallOnAppQuit: boolean;
  allowDowngrade: boolean;
  /** Resolves null when the updater is off (an unpackaged app); rejects, after an 'error' event, when the check fails. */
  checkForUpdates(): Promise<{ isUpdateAvailable: boolean } | null>;
  /** Rejects, after an 'error' event, when the download fails. */
  downloadUpdate(): Promise<unknown>;
  quitAndInstall(isSilent?: boolean, isForceRunAfter?: boolean): void;
  // One overload per event, as electron-updater's typed emitter can be matched against them.
  on(event: 'checking-for-update', listener: UpdaterEvents['checking-for-update']): unknown;
  on(event: 'update-available', listener: UpdaterEvents['update-available']): unknown;
  on(event: 'update-not-available', listener: UpdaterEvents['update-not-available']): unknown;
  on(event: 'download-progress', listener: UpdaterEvents['download-progress']): unknown;
  on(event: 'update-downloaded', listener: UpdaterEvents['update-downloaded']): unknown;
  on(event: 'error', listener: UpdaterEvents['error']): unknown;
  off(event: 'checking-for-update', listener: UpdaterEvents['checking-for-update']): unknown;
  off(event: 'update-available', listener: UpdaterEvents['update-available']): unknown;
  off(event: 'update-not-available', listener: UpdaterEvents['update-not-available']): unknown;
  off(event: 'download-progress', listener: UpdaterEvents['download-progress']): unknown;
  off(event: 'update-downloaded', listener: UpdaterEvents['update-downloaded']): unknown;
  off(event: 'error', listener: UpdaterEvents['error']): unknown;
}

/** The app around the updater: the AppController in the desktop app. */
export interface UpdateHost {
  /** Every event, in order (AppController.updaterEvent, which keeps AppState.updater). */
  updaterEvent(e: UpdaterEvent): void;
  trainingStatus(): TrainingStatus;
  /** Stops training, the work in hand finished or handed back; resolves when the worker has gone. */
  stopTraining(): Promise<void>;
}

/** setTimeout and clearTimeout, injected so that tests need not wait hours. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface UpdateControllerOptions {
  updater: Updater;
  now?: () => number;
  timers?: Timers;
  /** The first check, after start(): late enough not to slow the app's start. */
  firstCheckDelayMs?: number;
  /** The time from the end of one scheduled check to the next. */
  intervalMs?: number;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export const FIRST_CHECK_DELAY_MS = 30_000;
export const CHECK_INTERVAL_MS = 4 * 60 * 60 * 1000;

const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.(); // a pending check never keeps a process alive
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class UpdateController {
  private current: UpdaterState = initialUpdaterState;
  private host: UpdateHost | null = null;
  private readonly updater: Updater;
  private readonly now: () => number;
  private readonly timers: Timers;
  private timer: unknown = null;
  private running = false;
  private checking: Promise<void> | null = null;
  private downloading: Promise<void> | null = null;
  private installing: Promise<void> | null = null;
  /** 'error' events seen, so that a promise's rejection after its own event is not reported twice. */
  private errors = 0;
  private lastError: unknown = null;
  /** The last 'update-available' carried metadata this module refuses: nothing is downloaded. */
  private refused = false;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly opts: UpdateControllerOptions) {
    this.updater = opts.updater;
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? realTimers;
    // The controller starts the download itself: only metadata that passed its checks is
    // downloaded, and a failed download is caught here (electron-updater's own auto-download
    // leaves its promise's rejection unhandled, which ends a Node process).
    this.updater.autoDownload = false;
    // Installing when the user quits restarts nothing: quitting stops the training first anyway.
    this.updater.autoInstallOnAppQuit = true;
    this.updater.allowDowngrade = false;
    this.listen('checking-for-update', () => this.feed({ type: 'check' }));
    this.listen('update-not-available', () => this.feed({ type: 'not-available', at: this.now() }));
    this.listen('update-available', (info) => {
      const problem = releaseProblem(info);
      if (problem) {
        this.refused = true;
        this.log('warn', `update metadata refused: ${problem}`);
        this.feed({ type: 'error', message: invalidMetadata(problem) });
      } else this.feed({ type: 'available', version: info.version as string });
    });
    this.listen('download-progress', (p) => this.feed({ type: 'progress', percent: Number(p?.percent) }));
    this.listen('update-downloaded', (info) => this.feed({ type: 'downloaded', version: String(info?.version) }));
    this.listen('error', (e) => {
      this.errors++;
      this.lastError = e;
      this.log('warn', `updater: ${firstLine(errorMessage(e))}`);
      this.feed({ type: 'error', message: describeUpdateError(e) });
    });
  }

  /** The updater's state as the app shows it. */
  get state(): UpdaterState {
    return this.current;
  }

  /** Connects the app: its events from now on, its training status and its way to stop training. */
  attach(host: UpdateHost): void {
    this.host = host;
  }

  /** Checks after the first delay, then 4 h after every check. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(this.opts.firstCheckDelayMs ?? FIRST_CHECK_DELAY_MS);
  }

  /** Stops the schedule (a check or download under way finishes by itself). */
  stop(): void {
    this.running = false;
    this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Stops the schedule and lets go of the updater's events. */
  dispose(): void {
    this.stop();
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /**
   * Asks the server now; resolves with the state once the check is done (a download it starts
   * goes on in the background). Never rejects: a failure is the 'error' state, with its message.
   */
  async check(): Promise<UpdaterState> {
    // Downloading or downloaded: a check would at best find the same update again.
    if (this.downloading || this.current.status === 'downloading' || this.current.status === 'ready') return this.current;
    this.checking ??= this.runCheck().finally(() => (this.checking = null));
    await this.checking;
    return this.current;
  }

  /** Resolves when no check and no download is under way (tests; a clean shutdown). */
  async settled(): Promise<void> {
    while (this.checking || this.downloading) await (this.checking ?? this.downloading);
  }

  /**
   * "Restart to update": quits, installs and starts the new version. Refused while training
   * unless the user confirmed; then the training is stopped first (the work in hand finished or
   * handed back) and only then the app restarts. Throws a sentence for people when it cannot.
   */
  installNow(opts: { confirmTraining: boolean }): Promise<void> {
    this.installing ??= this.install(opts).finally(() => (this.installing = null));
    return this.installing;
  }

  private async install(opts: { confirmTraining: boolean }): Promise<void> {
    const state = this.current;
    if (state.status !== 'ready') throw new Error('No update is ready to install yet.');
    const training = this.host?.trainingStatus() ?? 'stopped';
    const verdict = mayInstallNow(state, training);
    if (!verdict.ok) {
      if (!opts.confirmTraining) throw new Error(`${verdict.message} Or confirm the restart: the training then stops first, its work in hand finished or handed back.`);
      this.log('info', `installing ${state.version}: stopping the training first`);
      await this.host!.stopTraining();
    }
    this.log('info', `restarting to install ${state.version}`);
    const errorsBefore = this.errors;
    try {
      this.updater.quitAndInstall(true, true);
    } catch (e) {
      throw new Error(`Version ${state.version} could not be installed (${firstLine(errorMessage(e))}).`, { cause: e });
    }
    // electron-updater reports a failed install as an 'error' event, not as an exception.
    if (this.errors !== errorsBefore) throw new Error(`Version ${state.version} could not be installed (${firstLine(errorMessage(this.lastError))}).`);
  }

  private async runCheck(): Promise<void> {
    this.refused = false;
    const errorsBefore = this.errors;
    let result: { isUpdateAvailable: boolean } | null;
    try {
      result = await this.updater.checkForUpdates();
    } catch (e) {
      if (this.errors === errorsBefore) this.feed({ type: 'error', message: describeUpdateError(e) });
      return;
    }
    if (result === null) {
      this.log('info', 'updates are off in this build (the app is not packaged)');
      return;
    }
    if (result.isUpdateAvailable && !this.refused && this.current.status === 'available') this.startDownload();
  }

  private startDownload(): void {
    const errorsBefore = this.errors;
    this.downloading = this.updater
      .downloadUpdate()
      .then(
        () => undefined,
        (e: unknown) => {
          if (this.errors === errorsBefore) this.feed({ type: 'error', message: describeUpdateError(e) });
        },
      )
      .finally(() => (this.downloading = null));
  }

  private schedule(ms: number): void {
    this.timers.clearTimeout(this.timer);
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      // The next check counts from the end of this one, so that checks never pile up.
      void this.check().finally(() => {
        if (this.running) this.schedule(this.opts.intervalMs ?? CHECK_INTERVAL_MS);
      });
    }, ms);
  }

  private feed(e: UpdaterEvent): void {
    this.current = nextUpdaterState(this.current, e);
    try {
      this.host?.updaterEvent(e);
    } catch (err) {
      // Called from inside electron-updater's event emitter: a throw here would break its flow.
      this.log('error', `updater event ${e.type}: ${errorMessage(err)}`);
    }
  }

  private listen<E extends keyof UpdaterEvents>(event: E, listener: UpdaterEvents[E]): void {
    // The overloads above, seen as the one signature they share.
    const u = this.updater as unknown as { on(e: E, l: UpdaterEvents[E]): unknown; off(e: E, l: UpdaterEvents[E]): unknown };
    u.on(event, listener);
    this.unsubscribe.push(() => u.off(event, listener));
  }

  private log(level: 'info' | 'warn' | 'error', message: string): void {
    this.opts.log?.(level, message);
  }
}

// ---- checks and messages ----

/** What is wrong with a release's metadata, in a few words; null when it can be downloaded. */
export function releaseProblem(info: unknown): string | null {
  if (typeof info !== 'object' || info === null) return 'it describes no release';
  const { version, files } = info as ReleaseInfo;
  if (typeof version !== 'string' || !/^\d+\.\d+\.\d+/.test(version)) return 'it names no valid version';
  if (!Array.isArray(files) || files.length === 0) return 'it lists no file to download';
  for (const f of files as unknown[]) {
    const file = f as { url?: unknown; sha512?: unknown } | null;
    if (typeof file?.url !== 'string' || file.url === '') return 'a file has no address';
    // electron-builder always writes sha512; without it the download could not be verified.
    if (typeof file.sha512 !== 'string' || file.sha512 === '') return 'a file has no sha512 checksum';
  }
  return null;
}

const LATER = 'Will try again later.';

function invalidMetadata(detail: string): string {
  return `The update information from the update server is not valid (${detail}). ${LATER}`;
}

/** Node's and Chromium's network failures, in words. */
const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'the connection was cut',
  ECONNABORTED: 'the connection was cut',
  EPIPE: 'the connection was cut',
  ENOTFOUND: 'server not found',
  EAI_AGAIN: 'server not found',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'no route to the server',
  ENETUNREACH: 'no network',
  ENETDOWN: 'no network',
};

/** Metadata that electron-updater could not use, and why. */
const METADATA_CODES: Record<string, string> = {
  ERR_UPDATER_INVALID_UPDATE_INFO: 'it is not readable YAML',
  ERR_UPDATER_INVALID_VERSION: 'it names no valid version',
  ERR_UPDATER_NO_FILES_PROVIDED: 'it lists no file to download',
  ERR_UPDATER_NO_CHECKSUM: 'a file has no checksum',
};

/** A failure of electron-updater as one sentence for people (the details go to the log). */
export function describeUpdateError(e: unknown): string {
  const err = (e ?? {}) as { code?: unknown; statusCode?: unknown; name?: unknown };
  const code = typeof err.code === 'string' ? err.code : '';
  const message = errorMessage(e);
  if (code === 'ERR_CHECKSUM_MISMATCH' || /checksum mismatch/i.test(message)) {
    return `The downloaded update is damaged (checksum mismatch) and was discarded. ${LATER}`;
  }
  if (METADATA_CODES[code]) return invalidMetadata(METADATA_CODES[code]);
  if (code === 'ERR_UPDATER_CHANNEL_FILE_NOT_FOUND') {
    const file = /"([^"]+\.yml)"/.exec(message)?.[1] ?? 'its release list';
    return `The update server has no update information for this system (${file} not found). ${LATER}`;
  }
  if (NETWORK_CODES[code]) return `Could not reach the update server (${NETWORK_CODES[code]}). ${LATER}`;
  // Electron's net module: "net::ERR_CONNECTION_REFUSED", "net::ERR_INTERNET_DISCONNECTED", …
  const net = /net::ERR_([A-Z_]+)/.exec(message);
  if (net) return `Could not reach the update server (${net[1].toLowerCase().replace(/_/g, ' ')}). ${LATER}`;
  if (/timed out/i.test(message)) return `Could not reach the update server (timed out). ${LATER}`;
  if (/socket hang up|aborted by the server/i.test(message)) return `Could not reach the update server (the connection was cut). ${LATER}`;
  // builder-util-runtime: HttpError for the metadata, "Cannot download …, status 503: …" for files.
  const status = typeof err.statusCode === 'number' ? err.statusCode : Number(/status (\d{3})\b/.exec(message)?.[1] ?? NaN);
  if (Number.isInteger(status) && status >= 400) return `Could not reach the update server (it answered ${status}). ${LATER}`;
  return `Updating failed: ${firstLine(message)}. ${LATER}`;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** electron-updater's messages carry whole responses and headers: the first line, shortened, is enough. */
function firstLine(s: string): string {
  const line = s.split('\n', 1)[0].trim().replace(/\.$/, '');
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}
