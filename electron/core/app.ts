// The desktop app's main-process logic, behind the bridge: it answers every call of the IPC
// contract and keeps one AppState that the window, the tray and the browser host show. It owns
// the decision to train (the user's Start, the power policy, the wallet and onboarding) and keeps
// the worker process in line with it. Its world comes in as arguments (settings and wallet
// stores, power source, process spawner, dialogs), so it runs the same under Electron and Node.
import { randomBytes } from 'node:crypto';
import type { Dashboard, MinerRewards } from '../../orchestrator-client/protocol.ts';
import { OrchestratorClient } from '../../orchestrator-client/client.ts';
import { keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import type { MinerMessage } from '../../worker/miner/host.ts';
import {
  type AppState,
  type CallArgs,
  type CallResult,
  type Channel,
  HISTORY_POINTS,
  idleTraining,
  type HardwareReport,
  type Notice,
  type PowerDecision,
  type ThermalState,
  type TrainingState,
  type UpdaterState,
  type UserPause,
  type WalletInfo,
} from '../ipc-contract.ts';
import { exportDiagnostics, recentLogLines } from './diagnostics.ts';
import { decidePower, threadsFor, userPauseExpired } from './power-policy.ts';
import type { SettingsStore } from './settings.ts';
import type { UpdateController } from './updater.ts';
import { type UpdaterEvent, initialUpdaterState, nextUpdaterState } from './updater-state.ts';
import type { WalletStore } from './wallet.ts';
import { type SpawnWorker, type StartMessage, WorkerHost } from './worker-host.ts';

export interface PowerSnapshot {
  onBattery: boolean;
  batteryPercent: number | null;
  thermal: ThermalState;
  idleSeconds: number;
}

/** The machine's power state: Electron's powerMonitor in the app. */
export interface PowerSource {
  read(): PowerSnapshot;
  /** 'change': battery, AC or thermal state changed; 'suspend' / 'resume': the system sleeps or wakes. */
  subscribe(listener: (event: 'change' | 'suspend' | 'resume') => void): () => void;
}

/** Keeps the system from sleeping while training (Electron's powerSaveBlocker). */
export interface KeepAwake {
  start(): void;
  stop(): void;
}

/** Where the user wants a file saved; null when they cancel. */
export interface Dialogs {
  saveFile(opts: { title: string; defaultName: string }): Promise<string | null>;
}

export interface AppWorld {
  version: string;
  cores: number;
  memoryBytes: number;
  settings: SettingsStore;
  wallet: WalletStore;
  spawnWorker: SpawnWorker;
  power: PowerSource;
  keepAwake: KeepAwake;
  dialogs: Dialogs;
  checkHardware: () => Promise<HardwareReport>;
  /** Log files for diagnostics. */
  logFiles: string[];
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** Start at login (Electron's app.setLoginItemSettings); absent where there is no such thing. */
  setLoginItem?: (open: boolean) => void;
  /** Notices from start-up (e.g. the settings file was damaged and reset). */
  notices?: Notice[];
  /** The auto-updater (electron/core/updater.ts); absent where the build has none (unpackaged, the browser host). */
  updates?: UpdateController;
  now?: () => number;
  /** How often idle time and battery level are read (they have no events). */
  powerPollMs?: number;
  /** How long a check that the orchestrator answers may take before a start gives up. */
  healthTimeoutMs?: number;
  /** Passed to the worker host (tests shorten them). */
  backoffMs?: number[];
  stopGraceMs?: number;
}

/** Training settings that the running worker was started with; a change restarts it. */
const WORKER_SETTINGS = ['orchestratorUrl', 'runId', 'useGpu', 'threads'] as const;

export class AppController {
  private wanted = false;
  private pause: UserPause | null = null;
  private suspended = false;
  private walletInfo: WalletInfo | null = null;
  private walletProblem: string | null = null;
  private hardware: HardwareReport | null = null;
  private updater: UpdaterState = initialUpdaterState;
  private notices: Notice[];
  /** What the worker reported; status, reason and the crash fields are derived in state(). */
  private training: TrainingState = idleTraining();
  /** The threads and settings the running worker was started with. */
  private runningWith: { threads: number; key: string } | null = null;
  private readonly host: WorkerHost;
  private readonly listeners = new Set<(s: AppState) => void>();
  private readonly unsubscribe: (() => void)[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private emitTimer: NodeJS.Timeout | undefined;
  private awake = false;
  private lastSample = 0;
  private tokensBefore = 0;
  private readonly now: () => number;

  constructor(private readonly world: AppWorld) {
    this.now = world.now ?? Date.now;
    this.notices = [...(world.notices ?? [])];
    this.host = new WorkerHost({
      spawn: world.spawnWorker,
      onMessage: (m) => this.onWorkerMessage(m),
      onChange: () => this.changed(),
      log: world.log,
      now: this.now,
      backoffMs: world.backoffMs,
      stopGraceMs: world.stopGraceMs,
    });
  }

  /** Reads the wallet, subscribes to power and settings, checks the hardware, and auto-starts if asked. */
  async init(): Promise<void> {
    await ready();
    await this.refreshWallet();
    this.unsubscribe.push(
      this.world.power.subscribe((event) => {
        if (event === 'suspend') this.suspended = true;
        if (event === 'resume') this.suspended = false;
        this.evaluate();
      }),
      this.world.settings.onChange(() => this.evaluate()),
    );
    this.pollTimer = setInterval(() => this.evaluate(), this.world.powerPollMs ?? 5_000);
    this.pollTimer.unref?.();
    void this.world.checkHardware().then(
      (h) => {
        this.hardware = h;
        this.changed();
      },
      (e: Error) => this.world.log('warn', `hardware check failed: ${e.message}`),
    );
    const s = this.world.settings.get();
    if (s.autoStart && s.onboarded && this.walletInfo) this.wanted = true;
    this.evaluate();
    this.world.updates?.attach({
      updaterEvent: (e) => this.updaterEvent(e),
      trainingStatus: () => this.state().training.status,
      stopTraining: () => this.stopTraining(),
    });
    this.world.updates?.start();
  }

  /** Stops training (finishing or handing back the work in hand) and lets go of everything. */
  async dispose(): Promise<void> {
    this.world.updates?.stop();
    this.wanted = false;
    clearInterval(this.pollTimer);
    for (const u of this.unsubscribe.splice(0)) u();
    await this.host.stop();
    this.setAwake(false);
    clearTimeout(this.emitTimer);
  }

  onState(listener: (s: AppState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The worker's process id while one runs (for the tests that kill it). */
  get workerPid(): number | null {
    return this.host.pid ?? null;
  }

  /** Feeds the auto-updater's events in (electron-updater in the app). */
  updaterEvent(e: UpdaterEvent): void {
    this.updater = nextUpdaterState(this.updater, e);
    this.changed();
  }

  // ---- calls ----

  /** Answers one call of the contract; the arguments were checked by parseCall. */
  async handle<C extends Channel>(channel: C, args: CallArgs<C>): Promise<CallResult<C>> {
    return (await this.answer(channel, args as unknown[])) as CallResult<C>;
  }

  private async answer(channel: Channel, args: unknown[]): Promise<unknown> {
    switch (channel) {
      case 'state:get':
        return this.state();
      case 'training:start':
        return this.start();
      case 'training:stop':
        this.wanted = false;
        this.pause = null;
        this.evaluate();
        return this.state();
      case 'training:pause': {
        const a = args[0] as { minutes: number } | { untilAc: true };
        this.pause = 'minutes' in a ? { kind: 'until', until: this.now() + a.minutes * 60_000 } : { kind: 'until-ac' };
        this.evaluate();
        return this.state();
      }
      case 'training:resume':
        this.pause = null;
        this.evaluate();
        return this.state();
      case 'wallet:create': {
        const created = await this.world.wallet.create();
        await this.refreshWallet();
        return created;
      }
      case 'wallet:import': {
        const info = await this.world.wallet.import((args[0] as { mnemonic: string }).mnemonic);
        await this.refreshWallet();
        return info;
      }
      case 'wallet:set-payout': {
        const info = await this.world.wallet.setPayout((args[0] as { address: string | null }).address);
        await this.refreshWallet();
        return info;
      }
      case 'wallet:reveal-mnemonic':
        return { mnemonic: await this.world.wallet.revealMnemonic() };
      case 'wallet:confirm-backup': {
        const info = await this.world.wallet.confirmBackup();
        await this.refreshWallet();
        return info;
      }
      case 'wallet:export': {
        if (!this.walletInfo) throw new Error('There is no wallet to export yet.');
        const path = await this.world.dialogs.saveFile({ title: 'Save a backup of your hotkey', defaultName: 'train-at-home-hotkey.json' });
        if (!path) return null;
        await this.world.wallet.exportKeyfile(path);
        this.world.log('info', `hotkey exported to ${path}`);
        return { path };
      }
      case 'settings:update': {
        const settings = await this.world.settings.update(args[0]);
        if ('startAtLogin' in (args[0] as object)) this.world.setLoginItem?.(settings.startAtLogin);
        if ('allowPlaintextKey' in (args[0] as object)) await this.refreshWallet();
        return settings;
      }
      case 'hardware:check':
        this.hardware = await this.world.checkHardware();
        this.changed();
        return this.hardware;
      case 'earnings:get':
        return this.earnings();
      case 'network:get':
        return this.network();
      case 'logs:recent':
        return { lines: await recentLogLines(this.world.logFiles) };
      case 'diagnostics:export': {
        const stamp = new Date(this.now()).toISOString().slice(0, 19).replace(/[:T]/g, '-');
        const path = await this.world.dialogs.saveFile({ title: 'Save diagnostics', defaultName: `train-at-home-diagnostics-${stamp}.json` });
        if (!path) return null;
        const written = await exportDiagnostics({ path, appVersion: this.world.version, settings: this.world.settings.get(), state: this.state(), hardware: this.hardware, logFiles: this.world.logFiles, now: this.now });
        return { path: written.path };
      }
      case 'notice:dismiss':
        this.notices = this.notices.filter((n) => n.id !== args[0]);
        this.changed();
        return this.state();
      case 'updater:check':
        await this.updates().check();
        return this.updater;
      case 'updater:install':
        // Refused while training unless confirmed; then training stops first (updater.ts).
        await this.updates().installNow(args[0] as { confirmTraining: boolean });
        return this.state();
    }
  }

  private updates(): UpdateController {
    if (!this.world.updates) throw new Error('Updates are not available in this build.');
    return this.world.updates;
  }

  /** Stops training for an update: resolves once the worker has finished or handed back its work and gone. */
  private async stopTraining(): Promise<void> {
    this.wanted = false;
    this.pause = null;
    this.evaluate();
    await this.host.stop();
    this.changed();
  }

  private async start(): Promise<AppState> {
    const blocked = this.blocked();
    if (blocked) throw new Error(blocked);
    this.wanted = true;
    this.evaluate();
    return this.state();
  }

  /** Why training cannot start at all, or null. */
  private blocked(): string | null {
    if (this.walletProblem) return this.walletProblem;
    if (!this.walletInfo) return 'Create or import a wallet first: it is how the swarm knows and pays this computer.';
    if (!this.world.settings.get().onboarded) return 'Finish setting up the app first.';
    return null;
  }

  private async earnings(): Promise<MinerRewards | null> {
    const runId = this.training.stage?.runId ?? this.world.settings.get().runId;
    if (!this.walletInfo || !runId) return null;
    const client = new OrchestratorClient({ baseUrl: this.world.settings.get().orchestratorUrl, keypair: keypairFromSeed(await this.world.wallet.seed()), attempts: 1, timeoutMs: 10_000 });
    return client.rewards(runId, this.walletInfo.address);
  }

  /** The run this app joins (or the orchestrator's newest), as its public dashboard shows it. */
  private async network(): Promise<Dashboard> {
    const runId = this.training.stage?.runId ?? this.world.settings.get().runId;
    // A public read: any key signs it, so the app shows the swarm before it has a wallet.
    const keypair = this.walletInfo ? keypairFromSeed(await this.world.wallet.seed()) : keypairFromSeed(randomBytes(32));
    const client = new OrchestratorClient({ baseUrl: this.world.settings.get().orchestratorUrl, keypair, attempts: 1, timeoutMs: 10_000 });
    return client.dashboard(runId ?? undefined);
  }

  private async refreshWallet(): Promise<void> {
    try {
      this.walletInfo = await this.world.wallet.info();
      this.walletProblem = null;
    } catch (e) {
      this.walletInfo = null;
      this.walletProblem = (e as Error).message;
    }
    this.changed();
  }

  // ---- the decision to train ----

  private powerSnapshot(): PowerSnapshot {
    try {
      return this.world.power.read();
    } catch (e) {
      this.world.log('warn', `cannot read the power state: ${(e as Error).message}`);
      return { onBattery: false, batteryPercent: null, thermal: 'unknown', idleSeconds: 0 };
    }
  }

  private decision(p: PowerSnapshot = this.powerSnapshot()): PowerDecision {
    const s = this.world.settings.get();
    return decidePower({ now: this.now(), ...p, suspended: this.suspended, pause: this.pause, settings: s });
  }

  /** Brings the worker in line with what is wanted; called after every change of input. */
  private evaluate(): void {
    const p = this.powerSnapshot();
    if (this.pause && userPauseExpired(this.pause, this.now(), p.onBattery)) this.pause = null;
    const decision = this.decision(p);
    const s = this.world.settings.get();
    const run = this.wanted && decision.run && this.blocked() === null;
    if (!run) {
      if (this.host.status !== 'idle') void this.stopWorker();
    } else {
      const threads = threadsFor(s.threads, this.world.cores, decision.run && decision.throttle);
      const key = JSON.stringify(WORKER_SETTINGS.map((k) => s[k]));
      const active = this.host.status !== 'idle';
      if (active && this.runningWith && (this.runningWith.threads !== threads || this.runningWith.key !== key)) {
        // New caps or another orchestrator: restart the worker with them (it hands its work back first).
        this.world.log('info', `restarting the training worker with ${threads} threads`);
        void this.stopWorker().then(() => this.evaluate());
      } else if (!active || this.host.status === 'stopping') {
        this.runningWith = { threads, key };
        this.host.start(() => this.prepare(threads));
      }
    }
    this.changed();
  }

  private async stopWorker(): Promise<void> {
    this.runningWith = null;
    await this.host.stop();
  }

  /** The worker's start message: the key, and only once the orchestrator answers. */
  private async prepare(threads: number): Promise<StartMessage> {
    const s = this.world.settings.get();
    const seed = await this.world.wallet.seed();
    const keypair = keypairFromSeed(seed);
    const client = new OrchestratorClient({ baseUrl: s.orchestratorUrl, keypair, attempts: 1, timeoutMs: this.world.healthTimeoutMs ?? 5_000 });
    try {
      await client.health();
    } catch (e) {
      throw new Error(`Cannot reach the orchestrator at ${s.orchestratorUrl} (${(e as Error).message.replace(/^cannot reach the orchestrator at \S+ /, '').replace(/^\((.*)\)$/, '$1')}). Check the address in Settings and the internet connection.`, { cause: e });
    }
    const gpu = s.useGpu ? this.hardware?.gpus[0] : undefined;
    return {
      type: 'start',
      orchestrator: s.orchestratorUrl,
      seedHex: Buffer.from(seed).toString('hex'),
      hardware: { device: gpu?.vendor === 'nvidia' ? 'cuda' : gpu?.vendor === 'apple' ? 'coreml' : 'cpu', cores: threads, memory_bytes: this.world.memoryBytes, tokens_per_s: 0 },
      ...(s.runId ? { runId: s.runId } : {}),
      device: s.useGpu ? 'auto' : 'cpu',
      threads,
    };
  }

  private onWorkerMessage(m: MinerMessage): void {
    const t = this.training;
    switch (m.type) {
      case 'assigned':
        t.stage = { runId: m.run_id, stage: m.stage, stageCount: m.stage_count, layers: m.layers, params: m.params };
        t.since ??= this.now();
        // A new worker counts from zero: what earlier ones did stays in the total.
        this.tokensBefore = t.tokens;
        break;
      case 'status':
        t.minerState = m.state;
        t.round = m.version;
        break;
      case 'applied':
        t.round = m.version;
        break;
      case 'loss':
        t.loss = m.loss;
        break;
      case 'throughput': {
        t.tokensPerS = m.tokens_per_s;
        t.items = m.items;
        t.tokens = this.tokensBefore + m.tokens;
        const now = this.now();
        if (now - this.lastSample >= 2_000) {
          this.lastSample = now;
          t.history.push({ t: now, tokensPerS: m.tokens_per_s, loss: t.loss });
          if (t.history.length > HISTORY_POINTS) t.history.splice(0, t.history.length - HISTORY_POINTS);
        }
        break;
      }
      case 'error':
        this.world.log(m.recoverable ? 'warn' : 'error', `worker: ${m.message}`);
        break;
      case 'ended':
        if (m.result === 'finished') {
          this.wanted = false;
          this.addNotice({ id: 'run-finished', level: 'info', message: 'The training run has finished. Thank you! Press Start to join the next one.' });
        }
        break;
      default:
    }
    this.changed();
  }

  private addNotice(n: Notice): void {
    this.notices = [...this.notices.filter((x) => x.id !== n.id), n];
  }

  // ---- state ----

  state(): AppState {
    const p = this.powerSnapshot();
    const decision = this.decision(p);
    const h = this.host;
    let status: TrainingState['status'];
    let reason: string | null = null;
    const blocked = this.blocked();
    if (!this.wanted) status = h.status === 'idle' ? 'stopped' : 'stopping';
    else if (blocked) [status, reason] = ['error', blocked];
    else if (!decision.run) [status, reason] = [h.status === 'idle' ? 'paused' : 'stopping', decision.message];
    else if (h.status === 'running') status = 'training';
    else if (h.status === 'waiting') {
      const inS = Math.max(0, Math.ceil(((h.retryAt ?? 0) - this.now()) / 1000));
      [status, reason] = ['restarting', `${h.lastFailure?.reason ?? 'The training worker stopped'} Trying again in ${inS} s.`];
    } else if (h.status === 'stopping') status = 'stopping';
    else status = 'starting';
    return {
      version: this.world.version,
      training: {
        ...this.training,
        history: [...this.training.history],
        restarts: h.restarts,
        lastCrash: h.lastFailure,
        status,
        reason,
        pauseReason: decision.run ? null : decision.reason,
      },
      power: { ...p, decision, pause: this.pause },
      wallet: this.walletInfo,
      walletProblem: this.walletProblem,
      keyStorage: this.world.wallet.keyStorage(),
      settings: this.world.settings.get(),
      hardware: this.hardware,
      updater: this.updater,
      notices: [...this.notices],
    };
  }

  private setAwake(on: boolean): void {
    if (on === this.awake) return;
    this.awake = on;
    if (on) this.world.keepAwake.start();
    else this.world.keepAwake.stop();
  }

  /** Something changed: keep the system awake while training, and push the state (coalesced). */
  private changed(): void {
    const h = this.host.status;
    this.setAwake(h === 'running' || h === 'starting');
    if (h === 'idle') {
      this.training.since = null;
      this.training.minerState = null;
      this.training.tokensPerS = 0;
    }
    if (this.emitTimer || this.listeners.size === 0) return;
    this.emitTimer = setTimeout(() => {
      this.emitTimer = undefined;
      const s = this.state();
      for (const l of this.listeners) l(s);
    }, 50);
  }
}
