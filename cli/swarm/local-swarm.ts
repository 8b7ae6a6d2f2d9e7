// A whole swarm on this machine, each part its own process, as on separate computers: one
// orchestrator (SQLite and a local blob directory in the working folder) and miners, each with
// its own wallet. The host starts, kills and restarts them and reads their JSON events; tests use
// the same class to inject failures (SIGKILL a miner mid-round, restart the orchestrator).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { OrchestratorClient } from '../../orchestrator-client/client.ts';
import type { RunStatus } from '../../orchestrator-client/protocol.ts';
import { keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { createWallet } from '../../orchestrator-client/wallet.ts';
import { openDatabase } from '../../orchestrator/db/open.ts';
import { MINER_NODE_FLAGS } from '../../worker/miner/host.ts';

const TAH = fileURLToPath(new URL('../../bin/tah.js', import.meta.url));

export interface LocalSwarmOptions {
  /** Working folder: database, blobs, wallets, logs. */
  dir: string;
  /** The run to create (a RunSpec as JSON-able object). */
  spec: { id: string } & Record<string, unknown>;
  /** CPU threads of each miner's ONNX Runtime sessions. */
  threadsPerMiner: number;
  onMinerEvent?: (miner: number, event: Record<string, unknown>) => void;
  onMinerExit?: (miner: number, code: number | null, signal: NodeJS.Signals | null) => void;
  onValidatorEvent?: (validator: number, event: Record<string, unknown>) => void;
  /** Extra environment for the child processes. */
  env?: NodeJS.ProcessEnv;
  /** The orchestrator's --part-mib: uploads that may be larger go in parts of this many MiB. */
  partMib?: number;
  /** The port the orchestrator should listen on; when it is taken, any free one (default: any). */
  port?: number;
  /** The built renderer the orchestrator serves as the run's public dashboard (default: dist/renderer when built). */
  uiDir?: string;
  /** Miners and validators move blobs over HTTP as remote ones do, not through the store's directory. */
  blobsOverHttp?: boolean;
  /**
   * waitFinished gives up when no round has finished for this long (or ten times the slowest
   * round so far, if longer), saying what was unfinished (default 180 s: a demo round takes
   * seconds; a swarm that stalls should say so, not hang).
   */
  stallMs?: number;
}

interface MinerProcess {
  child: ChildProcess;
  exited: Promise<void>;
  /** The stage the orchestrator gave it first; rejected if it exits before. */
  assigned: Promise<number>;
  hotkey?: string;
}

export class LocalSwarm {
  url = '';
  /** The run's public page, where the orchestrator serves one; null otherwise. */
  dashboardUrl: string | null = null;
  private port = 0;
  private operator = '';
  private orchestrator: ChildProcess | null = null;
  private orchestratorExited: Promise<void> = Promise.resolve();
  readonly miners: MinerProcess[] = [];
  readonly validators: MinerProcess[] = [];
  private statusClient: OrchestratorClient | null = null;
  private stderrTail: string[] = [];

  constructor(private readonly opts: LocalSwarmOptions) {
    this.port = opts.port ?? 0;
  }

  get runId(): string {
    return this.opts.spec.id;
  }

  private spawnTah(args: string[], label: string, extraEnv: NodeJS.ProcessEnv = {}): ChildProcess {
    const env = { ...process.env, ...this.opts.env, ...extraEnv };
    // A host run by node's test runner must not pass its marker on: the children are plain tah.
    delete env.NODE_TEST_CONTEXT;
    // TAH_CHILD_NODE_FLAGS: extra node flags for every child, e.g. `--cpu-prof --cpu-prof-dir=prof`
    // to profile a swarm (node refuses --cpu-prof in NODE_OPTIONS).
    const extra = (env.TAH_CHILD_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
    // The IPC channel carries nothing: it closes when this host is gone, however it ended, and the
    // child then stops too (cli/host.ts), so no part of a swarm outlives the host that started it.
    const child = spawn(process.execPath, [...extra, ...(args[0] === 'miner' || args[0] === 'validator' ? MINER_NODE_FLAGS : []), TAH, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env });
    child.channel?.unref();
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.stderrTail.push(`${label}: ${line}`);
      if (this.stderrTail.length > 40) this.stderrTail.shift();
    });
    return child;
  }

  /** The last lines the children wrote to stderr (for error messages). */
  get recentErrors(): string[] {
    return [...this.stderrTail];
  }

  /** The host's signed client of the orchestrator (status, flags, attribution). */
  get client(): OrchestratorClient {
    if (!this.statusClient) throw new Error('the swarm has not started');
    return this.statusClient;
  }

  /** The operator's hotkey file: `tah checkpoint … --wallet` with it may list, export and roll back. */
  get operatorWallet(): string {
    return join(this.opts.dir, 'wallets', 'operator.json');
  }

  async start(): Promise<void> {
    await mkdir(join(this.opts.dir, 'wallets'), { recursive: true });
    await writeFile(join(this.opts.dir, 'run.json'), JSON.stringify(this.opts.spec, null, 2));
    this.operator = (await createWallet(this.operatorWallet, { overwrite: true })).address;
    try {
      await this.startOrchestrator();
    } catch (e) {
      if (this.port === 0 || !/EADDRINUSE/.test((e as Error).message)) throw e;
      this.port = 0;
      await this.startOrchestrator();
    }
    await ready();
    // The host's own key, for reading the run's status (a signed request like any other).
    this.statusClient = new OrchestratorClient({ baseUrl: this.url, keypair: keypairFromSeed(new Uint8Array(32).fill(7)), attempts: 20, maxDelayMs: 1000 });
  }

  /** Starts (or restarts, on the same port and database) the orchestrator process. */
  async startOrchestrator(): Promise<void> {
    const d = this.opts.dir;
    const child = this.spawnTah(
      ['orchestrator', '--db', `sqlite:${join(d, 'orchestrator.db')}`, '--storage', `local:${join(d, 'blobs')}`, '--port', String(this.port), '--run', join(d, 'run.json'), '--operator', this.operator, '--log-level', 'warn', '--json', ...(this.opts.partMib !== undefined ? ['--part-mib', String(this.opts.partMib)] : []), ...(this.opts.uiDir ? ['--ui', this.opts.uiDir] : [])],
      'orchestrator',
    );
    this.orchestrator = child;
    this.orchestratorExited = new Promise((r) => child.once('exit', () => r()));
    this.url = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        try {
          const e = JSON.parse(line) as { event?: string; url?: string; dashboard?: string | null; summary?: boolean; error?: string };
          if (e.event === 'listening' && e.url) {
            this.dashboardUrl = e.dashboard ? `${e.dashboard.replace(/\/$/, '')}/runs/${encodeURIComponent(this.runId)}` : null;
            resolve(e.url);
          }
          if (e.summary && e.error) reject(new Error(`the orchestrator did not start: ${e.error}`));
        } catch {
          // not a JSON line
        }
      });
      child.once('exit', (code) => reject(new Error(`the orchestrator exited (code ${code}) before listening: ${this.stderrTail.slice(-3).join(' | ')}`)));
    });
    this.port = Number(new URL(this.url).port);
  }

  async killOrchestrator(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.orchestrator?.kill(signal);
    await this.orchestratorExited;
    this.orchestrator = null;
  }

  /** Starts another miner process; `env` adds to its environment (e.g. TAH_FAULTS); returns its index. */
  addMiner(env: NodeJS.ProcessEnv = {}, extraArgs: string[] = []): Promise<number> {
    return this.addParticipant('miner', env, extraArgs);
  }

  /** Starts another validator process (the orchestrator gives it the stage with the fewest); returns its index. */
  addValidator(env: NodeJS.ProcessEnv = {}): Promise<number> {
    return this.addParticipant('validator', env, []);
  }

  private async addParticipant(role: 'miner' | 'validator', env: NodeJS.ProcessEnv, extraArgs: string[]): Promise<number> {
    const list = role === 'miner' ? this.miners : this.validators;
    const i = list.length;
    const wallet = join(this.opts.dir, 'wallets', `${role}-${i}.json`);
    const created = await createWallet(wallet, { overwrite: true });
    const child = this.spawnTah([role, '--orchestrator', this.url, '--wallet', wallet, '--threads', String(this.opts.threadsPerMiner), '--run', this.runId, ...(this.opts.blobsOverHttp ? [] : ['--local-store', join(this.opts.dir, 'blobs')]), '--json', ...extraArgs], `${role}-${i}`, env);
    const exited = new Promise<void>((r) =>
      child.once('exit', (code, signal) => {
        if (role === 'miner') this.opts.onMinerExit?.(i, code, signal);
        r();
      }),
    );
    let onAssigned = (_stage: number): void => {};
    const assigned = new Promise<number>((resolve, reject) => {
      onAssigned = resolve;
      void exited.then(() => reject(new Error(`${role} ${i} exited before it was given a stage: ${this.stderrTail.slice(-3).join(' | ')}`)));
    });
    // Nobody need wait for it (a swarm that is only closed); its rejection is then no error.
    assigned.catch(() => {});
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const event = JSON.parse(line) as Record<string, unknown>;
        if (event.event === 'assigned' && typeof event.stage === 'number') onAssigned(event.stage);
        if (role === 'miner') this.opts.onMinerEvent?.(i, event);
        else this.opts.onValidatorEvent?.(i, event);
      } catch {
        // not a JSON line
      }
    });
    list.push({ child, exited, assigned, hotkey: created.address });
    return i;
  }

  /** The stage miner `i` was first given, once it has one; rejects if it exits first. */
  minerAssigned(i: number): Promise<number> {
    return this.miners[i].assigned;
  }

  killMiner(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.miners[i].child.kill(signal);
    return this.miners[i].exited;
  }

  status(): Promise<RunStatus> {
    return this.statusClient!.runStatus(this.runId);
  }

  /**
   * Polls the run until it is finished; `onTick` sees each status. Throws when every miner has
   * exited, or when no round has finished for `stallMs` or ten times the slowest round so far
   * (saying what was left unfinished).
   */
  async waitFinished(onTick?: (s: RunStatus) => void, pollMs = 500, shouldStop?: () => boolean): Promise<RunStatus> {
    const minStallMs = this.opts.stallMs ?? 180_000;
    let rounds = -1;
    let since = Date.now();
    // A large model's rounds may take minutes: stalled means ten times the slowest round so far.
    let slowest = 0;
    for (;;) {
      const s = await this.status();
      onTick?.(s);
      if (s.status !== 'active' || shouldStop?.()) return s;
      if (this.miners.length > 0 && this.miners.every((m) => m.child.exitCode !== null || m.child.signalCode !== null)) {
        throw new Error(`every miner exited before the run finished: ${this.stderrTail.slice(-5).join(' | ')}`);
      }
      if (s.rounds_done !== rounds) {
        if (rounds >= 0) slowest = Math.max(slowest, Date.now() - since);
        [rounds, since] = [s.rounds_done, Date.now()];
      } else if (Date.now() - since > Math.max(minStallMs, 10 * slowest)) throw new Error(await this.stallReport(s, Date.now() - since));
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** Why a stalled run is stuck, as far as its database and the miners' last words tell. */
  private async stallReport(s: RunStatus, stallMs: number): Promise<string> {
    const lines = [`no round finished in ${Math.round(stallMs / 1000)} s (rounds done: ${s.rounds_done})`];
    lines.push(`miners: ${s.miners.map((m) => `${m.hotkey.slice(0, 8)} stage ${m.stage ?? '-'} v${m.version} ${m.status}`).join('; ')}`);
    try {
      const { db, close } = await openDatabase(`sqlite:${join(this.opts.dir, 'orchestrator.db')}`);
      try {
        const open = await db
          .selectFrom('work_items')
          .select(['round', 'stage', 'direction', 'status', 'sample_id', 'leased_to', 'required_hotkey', 'not_hotkey', 'attempts', 'lease_expires'])
          .where('run_id', '=', this.runId)
          .where('status', '!=', 'done')
          .orderBy('round')
          .orderBy('stage')
          .limit(30)
          .execute();
        const who = (h: string | null): string => h?.slice(0, 8) ?? '-';
        lines.push(`unfinished work (${open.length}${open.length === 30 ? '+' : ''}):`);
        for (const w of open) lines.push(`  r${w.round} stage ${w.stage} ${w.direction} ${w.sample_id} ${w.status} leased_to=${who(w.leased_to)} required=${who(w.required_hotkey)} not=${who(w.not_hotkey)} attempts=${w.attempts} expires_in=${w.lease_expires === null ? '-' : Number(w.lease_expires) - Date.now()}ms`);
        const storing = await db.selectFrom('snapshots').select(['stage', 'rounds', 'holder']).where('run_id', '=', this.runId).where('status', '=', 'assigned').execute();
        for (const x of storing) lines.push(`  the state of stage ${x.stage} after ${x.rounds} rounds: not stored yet, asked of ${who(x.holder)}`);
      } finally {
        await close();
      }
    } catch (e) {
      lines.push(`(the database could not be read: ${(e as Error).message})`);
    }
    lines.push('recent errors:', ...this.stderrTail.slice(-10));
    return lines.join('\n');
  }

  /** Stops the miners (they hand back their work) and validators, then the orchestrator. */
  async close(): Promise<void> {
    const everyone = [...this.miners, ...this.validators];
    for (const m of everyone) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGTERM');
    const all = Promise.all(everyone.map((m) => m.exited));
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000).unref());
    if ((await Promise.race([all, timeout])) === 'timeout') for (const m of everyone) m.child.kill('SIGKILL');
    await all;
    if (this.orchestrator) await this.killOrchestrator('SIGTERM');
  }
}
