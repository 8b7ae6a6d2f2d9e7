// Runs the miner loop in a separate process and keeps it running: the desktop app forks it as an
// Electron utility process, the browser host and the tests as a Node child process (the spawn
// function says which). Crashes are restarted after a growing delay with the reason kept for the
// user; stop() lets the miner finish or hand back the work in hand before the process goes.
import type { HostMessage, MinerMessage } from '../../worker/miner/host.ts';

export type StartMessage = Extract<HostMessage, { type: 'start' }>;

/** One worker process, as both Electron's UtilityProcess and Node's ChildProcess can offer it. */
export interface WorkerProcess {
  readonly pid: number | undefined;
  postMessage(message: HostMessage): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Called once, when the process has gone; `how` says why in words ("exit code 1", "signal SIGKILL"). */
  onExit(listener: (how: string, clean: boolean) => void): void;
  kill(): void;
}

export type SpawnWorker = () => WorkerProcess;

export type WorkerHostStatus =
  /** No process and none wanted. */
  | 'idle'
  /** Preparing the start message or waiting for the miner to join. */
  | 'starting'
  /** The miner has its stage and works. */
  | 'running'
  /** Told to stop: finishing or handing back the work in hand. */
  | 'stopping'
  /** Ended unexpectedly; starts again at retryAt. */
  | 'waiting';

export interface WorkerHostOptions {
  spawn: SpawnWorker;
  /** Every message the miner sends (its events and its end). */
  onMessage: (message: MinerMessage) => void;
  /** After every change of status, failure or retry time. */
  onChange: () => void;
  /** A line for the log. */
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
  now?: () => number;
  /** Delays before the 1st, 2nd, … restart after consecutive failures; the last one repeats. */
  backoffMs?: number[];
  /** How long a stopping miner may take before its process is killed. */
  stopGraceMs?: number;
  /** A worker that ran this long before failing counts as healthy: the next delay starts over. */
  healthyAfterMs?: number;
}

const DEFAULT_BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000, 60_000];

export class WorkerHost {
  status: WorkerHostStatus = 'idle';
  /** The last unexpected end, for the user. */
  lastFailure: { at: number; reason: string } | null = null;
  restarts = 0;
  /** When a waiting host starts the worker again. */
  retryAt: number | null = null;

  private process: WorkerProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private prepare: (() => Promise<StartMessage>) | null = null;
  private failures = 0;
  private startedAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Bumped by every start and stop, so that a late answer of an older attempt is ignored. */
  private attempt = 0;
  private readonly now: () => number;

  constructor(private readonly opts: WorkerHostOptions) {
    this.now = opts.now ?? Date.now;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /**
   * Keeps a worker running until stop(): `prepare` makes its start message (the key, the
   * orchestrator; it may check that the orchestrator answers) and is called again for every
   * restart. A failing prepare counts as a failed start.
   */
  start(prepare: () => Promise<StartMessage>): void {
    this.prepare = prepare;
    if (this.status === 'running' || this.status === 'starting') return;
    if (this.status === 'stopping') return; // launched again when the stopping process has gone
    this.failures = 0;
    this.launch();
  }

  /** Asks the miner to finish or hand back its work; resolves when its process has gone. */
  async stop(): Promise<void> {
    this.prepare = null;
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.retryAt = null;
    const p = this.process;
    if (!p) {
      this.setStatus('idle');
      return;
    }
    if (this.status !== 'stopping') {
      this.setStatus('stopping');
      p.postMessage({ type: 'stop' });
    }
    const grace = setTimeout(() => {
      this.opts.log?.('warn', `the training worker did not stop within ${(this.opts.stopGraceMs ?? 20_000) / 1000} s; ending it`);
      p.kill();
    }, this.opts.stopGraceMs ?? 20_000);
    try {
      await this.exited;
    } finally {
      clearTimeout(grace);
    }
  }

  private setStatus(s: WorkerHostStatus): void {
    this.status = s;
    this.opts.onChange();
  }

  private launch(): void {
    const prepare = this.prepare;
    if (!prepare) return;
    const attempt = ++this.attempt;
    clearTimeout(this.retryTimer);
    this.retryAt = null;
    this.startedAt = 0;
    this.setStatus('starting');
    prepare().then(
      (start) => {
        if (attempt !== this.attempt) return;
        this.spawn(start);
      },
      (e: Error) => {
        if (attempt !== this.attempt) return;
        this.failed(e.message);
      },
    );
  }

  private spawn(start: StartMessage): void {
    let p: WorkerProcess;
    try {
      p = this.opts.spawn();
    } catch (e) {
      this.failed(`the training worker could not be started: ${(e as Error).message}`);
      return;
    }
    this.process = p;
    this.startedAt = this.now();
    let ended: Extract<MinerMessage, { type: 'ended' }> | null = null;
    let lastError: string | null = null;
    this.exited = new Promise((resolve) => {
      p.onExit((how, clean) => {
        this.process = null;
        resolve();
        const wasStopping = this.status === 'stopping';
        if (wasStopping || ended?.result === 'stopped' || ended?.result === 'finished') {
          this.opts.log?.('info', `training worker ended (${ended?.result ?? how})`);
          this.setStatus('idle');
          // start() while it was stopping: the user wants it again.
          if (wasStopping && this.prepare) this.launch();
          return;
        }
        const reason = ended?.result === 'failed' ? ended.error ?? 'failed' : `the training worker stopped unexpectedly (${how}${clean ? '' : lastError ? `; last error: ${lastError}` : ''})`;
        this.failed(reason);
      });
    });
    p.onMessage((raw) => {
      const m = raw as MinerMessage;
      if (typeof m !== 'object' || m === null || typeof m.type !== 'string') return;
      if (m.type === 'ended') ended = m;
      if (m.type === 'error') lastError = m.message;
      if (m.type === 'assigned' && this.status === 'starting') this.setStatus('running');
      this.opts.onMessage(m);
    });
    p.postMessage(start);
  }

  private failed(reason: string): void {
    this.lastFailure = { at: this.now(), reason };
    this.opts.log?.('error', `training worker: ${reason}`);
    if (!this.prepare) {
      this.setStatus('idle');
      return;
    }
    if (this.startedAt && this.now() - this.startedAt >= (this.opts.healthyAfterMs ?? 120_000)) this.failures = 0;
    const delays = this.opts.backoffMs ?? DEFAULT_BACKOFF_MS;
    const delay = delays[Math.min(this.failures, delays.length - 1)];
    this.failures++;
    this.restarts++;
    this.retryAt = this.now() + delay;
    this.retryTimer = setTimeout(() => this.launch(), delay);
    this.setStatus('waiting');
  }
}
