// `tah bench orchestrator`: signed lease → complete round trips per second, and their latency,
// against a real orchestrator running in a child process (its own event loop and core, as in
// production) while this process plays many miners. A round trip is timed from the lease request
// to the complete response; the upload of the output to its presigned URL in between is timed on
// its own and left out of the round trip.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OrchestratorClient, OrchestratorError } from '../../orchestrator-client/client.ts';
import type { Hardware, Lease } from '../../orchestrator-client/protocol.ts';
import { type Keypair, keypairFromSeed, ready } from '../../orchestrator-client/signing.ts';
import { evenStages } from '../../orchestrator/runs.ts';
import { blobSha256, uploadToUrl } from '../../orchestrator-client/transfer.ts';
import { encodeSafetensors } from '../../worker/checkpoint/safetensors.ts';
import { PRESET_NAMES, loadPreset } from '../../worker/model/config.ts';
import type { Output } from '../output.ts';

const TAH_BIN = fileURLToPath(new URL('../../bin/tah.js', import.meta.url));

/** What the issue asks of one machine: round trips per second at least, p99 below. */
export const GOAL = { round_trips_per_s: 2000, p99_ms: 50 } as const;
/** Bytes each miner uploads as its activation or gradient. */
/** Miners in flight at once unless --concurrency says otherwise (see the comment in benchOrchestratorCommand). */
export const DEFAULT_CONCURRENCY = 8;

export interface BenchOrchestratorFlags {
  miners: number;
  seconds: number;
  stages: number;
  concurrency?: number;
  /** Samples in each round of the run (default: twice the miners, at least 1,000). */
  samplesPerRound?: number;
  /** A database URL for the orchestrator (default: SQLite in a temporary folder). */
  db?: string;
  /** Profile the orchestrator process (V8 CPU profile) and report where its time goes. */
  profile?: boolean;
}

const HARDWARE: Hardware = { device: 'cpu', cores: 2, memory_bytes: 8 * 2 ** 30, tokens_per_s: 1000 };

/** A fixed 32-byte seed per name, so the same miners sign every run. */
const seed = (name: string): Uint8Array => new Uint8Array(createHash('sha256').update(`tah-bench-orchestrator/${name}`).digest());

/** The p-quantile (0..1) of ascending values, nearest rank; NaN when there are none. */
export function quantile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

const ascending = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);

// ---- the orchestrator child process ----

interface Server {
  url: string;
  child: ChildProcess;
  stderrTail: () => string;
  stop(): Promise<void>;
}

/** Starts `tah orchestrator` on a free port and waits for its `listening` event. */
async function startServer(dir: string, db: string, operator: string, nodeArgs: string[]): Promise<Server> {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const args = [...nodeArgs, TAH_BIN, 'orchestrator', '--port', '0', '--json', '--db', db, '--storage', `local:${join(dir, 'blobs')}`, '--operator', operator, '--log-level', 'warn'];
  const child = spawn(process.execPath, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stderrTail = (): string => stderr.trim().split('\n').slice(-3).join(' | ');
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    let summaryError = '';
    const timer = setTimeout(() => reject(new Error(`the orchestrator did not start within 60 s${stderr ? `: ${stderrTail()}` : ''}`)), 60_000);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      buf += s;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let ev: { event?: string; url?: string; summary?: boolean; error?: string };
        try {
          ev = JSON.parse(line);
        } catch {
          continue;
        }
        if (ev.event === 'listening' && typeof ev.url === 'string') {
          clearTimeout(timer);
          resolve(ev.url);
        } else if (ev.summary && ev.error) summaryError = ev.error;
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start the orchestrator: ${e.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the orchestrator exited before listening (${signal ?? `exit ${code}`}): ${summaryError || stderrTail() || 'no message'}`));
    });
  });
  return {
    url,
    child,
    stderrTail,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** CPU seconds (user + system) a process has used, from /proc; null where there is no /proc. */
function processCpuS(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Where a script lives, in a few words: the package, or the project folder and file. */
function codeOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('wasm:')) return 'sr25519 (WebAssembly)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return 'node internals';
  const own = /\/((?:orchestrator|orchestrator-client|cli|worker)\/.+)$/.exec(url);
  return own ? own[1] : url.replace(/^.*\//, '');
}

/** CLOCK_MONOTONIC in microseconds: the clock V8's profiler stamps samples with, in every process. */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * Self time of the server's CPU profile within [fromUs, toUs] (monotonic clock), grouped by code
 * (package or project file) and by function, as shares of the busy time (idle left out).
 */
async function serverProfile(
  profileDir: string,
  fromUs: number,
  toUs: number,
): Promise<{ busy_s: number; by_code: { name: string; share: number }[]; by_function: { name: string; share: number }[] } | undefined> {
  let files: string[];
  try {
    files = (await readdir(profileDir)).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    return undefined;
  }
  if (files.length === 0) return undefined;
  const prof = JSON.parse(await readFile(join(profileDir, files[0]), 'utf8')) as { nodes: ProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] };
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const hits = new Map<number, number>();
  let t = prof.startTime;
  let busyUs = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i];
    const dt = prof.timeDeltas[i + 1] ?? 0;
    if (t < fromUs || t > toUs) continue;
    const node = nodes.get(prof.samples[i]);
    if (!node || node.callFrame.functionName === '(idle)') continue;
    hits.set(node.id, (hits.get(node.id) ?? 0) + 1);
    busyUs += dt;
  }
  const byCode = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let busy = 0;
  for (const [id, n] of hits) {
    const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
    busy += n;
    const code = codeOf(url, functionName);
    byCode.set(code, (byCode.get(code) ?? 0) + n);
    const fn = `${functionName || '(anonymous)'} ${url ? `${code.replace(/^.*\//, '')}${url.startsWith('wasm:') ? '' : `:${lineNumber + 1}`}` : ''}`.trim();
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + n);
  }
  const top = (m: Map<string, number>, count: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([name, k]) => ({ name, share: k / busy }));
  return { busy_s: busyUs / 1e6, by_code: top(byCode, 12), by_function: top(byFunction, 20) };
}

// ---- the miners ----

interface Miner {
  client: OrchestratorClient;
  stage: number;
}

interface Tally {
  roundTripMs: number[];
  leaseMs: number[];
  completeMs: number[];
  uploadMs: number[];
  requests: number;
  signed: number;
  emptyLeases: number;
  errors: Map<string, number>;
}

const newTally = (): Tally => ({ roundTripMs: [], leaseMs: [], completeMs: [], uploadMs: [], requests: 0, signed: 0, emptyLeases: 0, errors: new Map() });

const errorCode = (e: unknown): string => (e instanceof OrchestratorError ? e.code : e instanceof Error && e.message.startsWith('PUT ') ? 'upload' : 'other');

/**
 * A FIFO of miners free to ask for work. A miner that got no work waits the server's
 * retry_after_ms before it is free again, as a real miner does.
 */
class ReadyQueue {
  private items: number[] = [];
  private head = 0;
  private waiters: ((m: number | null) => void)[] = [];
  private closed = false;

  push(m: number): void {
    if (this.closed) return;
    const w = this.waiters.shift();
    if (w) w(m);
    else this.items.push(m);
  }

  later(m: number, ms: number): void {
    setTimeout(() => this.push(m), ms).unref();
  }

  /** The next free miner, or null once closed. */
  next(): Promise<number | null> {
    if (this.closed) return Promise.resolve(null);
    if (this.head < this.items.length) {
      const m = this.items[this.head++];
      if (this.head > 4096 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve(m);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w(null);
  }
}

/** Calls `fn` on every item, at most `limit` calls at once. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}

export async function benchOrchestratorCommand(flags: BenchOrchestratorFlags, out: Output): Promise<void> {
  const { miners: minerCount, seconds, stages } = flags;
  // Closed loop: `concurrency` miners have a request outstanding at any moment, the rest wait
  // their turn. On two cores 8 is where the orchestrator's one event loop is kept busy (it
  // reaches one core, requests queue at its socket rather than it idling between round trips);
  // 4 leaves it idle part of the time, and beyond 8 the rate stays flat while the latency grows
  // with the queue (16: p99 ~80 ms, 32: ~160 ms, measured).
  const concurrency = Math.min(flags.concurrency ?? DEFAULT_CONCURRENCY, minerCount);
  const preset = PRESET_NAMES.find((p) => loadPreset(p).n_layers >= stages);
  if (!preset) throw new Error(`--stages ${stages}: the largest bundled preset has ${Math.max(...PRESET_NAMES.map((p) => loadPreset(p).n_layers))} layers`);
  const stageLayers = evenStages(loadPreset(preset).n_layers, stages);
  const warmupS = Math.min(2, seconds / 5);
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), node: process.version, platform: `${process.platform}-${process.arch}` };
  const loadBefore = loadavg();
  out.note(
    `bench orchestrator: ${minerCount} miners over ${stages} stages, ${concurrency} in flight, ${warmupS.toFixed(1)} s warm-up + ${seconds} s, ` +
      `on ${machine.cpu} (${machine.cores} cores, Node ${machine.node}, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')})`,
  );

  await ready();
  const dir = await mkdtemp(join(tmpdir(), 'tah-bench-orch-'));
  let server: Server | undefined;
  try {
    const operator = keypairFromSeed(seed('operator'));
    const db = flags.db ?? `sqlite:${join(dir, 'o.db')}`;
    const profileDir = join(dir, 'server-profile');
    server = await startServer(dir, db, operator.address, flags.profile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []);
    const url = server.url;
    out.event('orchestrator', { url, pid: server.child.pid, db: db.replace(/:\/\/([^:@/]+):[^@/]*@/, '://$1:***@') });

    // One client per key; no retries, so every failure is counted and every latency is one try.
    const client = (keypair: Keypair): OrchestratorClient => new OrchestratorClient({ baseUrl: url, keypair, attempts: 1, timeoutMs: 30_000 });
    // Enough samples that no stage runs dry before the end at the rates this machine reaches (a
    // new round is queued only when the whole previous one is done), and no more: a lease costs
    // the server time in proportion to the items of its stage (see the report of this bench).
    const samplesPerRound = flags.samplesPerRound ?? Math.max(1000, minerCount * 2);
    const runId = `bench-${Date.now().toString(36)}`;
    const created = performance.now();
    await client(operator).createRun({
      id: runId,
      preset,
      stages: stageLayers,
      samples_per_round: samplesPerRound,
      lease_ttl_s: 600,
      heartbeat_timeout_s: 3600,
      max_blob_bytes: 1 << 20,
    });
    const createRunS = (performance.now() - created) / 1000;

    // Register every miner, then move the few that concurrent registrations put on the same
    // stage, so the miners are spread evenly (miner i on stage i mod stages).
    const registered = performance.now();
    const miners: Miner[] = Array.from({ length: minerCount }, (_, i) => ({ client: client(keypairFromSeed(seed(`miner-${i}`))), stage: -1 }));
    await eachLimited(miners, concurrency, async (m) => {
      m.stage = (await m.client.register({ role: 'miner', run_id: runId, hardware: HARDWARE })).stage!;
    });
    await eachLimited(miners, concurrency, async (m, i) => {
      if (m.stage !== i % stages) m.stage = (await m.client.move(i % stages)).stage!;
    });
    const perStage = Array.from({ length: stages }, (_, s) => miners.filter((m) => m.stage === s).length);
    const registerS = (performance.now() - registered) / 1000;
    out.event('registered', { run_id: runId, miners: minerCount, miners_per_stage: perStage, samples_per_round: samplesPerRound, create_run_s: createRunS, register_s: registerS });

    // ---- the timed loop ----
    // Real blobs of the run's shapes: the orchestrator checks each upload's header.
    const config = loadPreset(preset);
    const blob = (name: string): Uint8Array => encodeSafetensors({ [name]: { dtype: 'F32', shape: [config.seq_len, config.d_model], data: new Float32Array(config.seq_len * config.d_model).fill(0.5) } });
    const payloads = { activation: blob('activation'), gradient: blob('gradient') };
    const digests = { activation: blobSha256(payloads.activation), gradient: blobSha256(payloads.gradient) };
    const queue = new ReadyQueue();
    for (let i = 0; i < minerCount; i++) queue.push(i);
    const t0 = performance.now();
    const tStart = t0 + warmupS * 1000;
    const tEnd = tStart + seconds * 1000;
    const total = newTally();
    let interval = newTally();
    const inWindow = (t: number): boolean => t >= tStart && t <= tEnd;
    const fail = (e: unknown, t: number): void => {
      if (!inWindow(t)) return;
      const code = errorCode(e);
      total.errors.set(code, (total.errors.get(code) ?? 0) + 1);
      interval.errors.set(code, (interval.errors.get(code) ?? 0) + 1);
    };
    const count = (signed: boolean, t: number): void => {
      if (!inWindow(t)) return;
      total.requests++;
      interval.requests++;
      if (signed) {
        total.signed++;
        interval.signed++;
      }
    };
    let stopping = false;

    const slot = async (): Promise<void> => {
      for (;;) {
        const i = await queue.next();
        if (i === null || stopping) return;
        const m = miners[i];
        const a = performance.now();
        let lease: Lease | null;
        let retryMs: number;
        try {
          const r = await m.client.lease();
          // Only sample work is measured; a round's end (share, reduce, apply) is out of reach of a run this short.
          const task = r.lease;
          lease = task && task.kind === 'work' ? task : null;
          retryMs = r.retry_after_ms;
        } catch (e) {
          const t = performance.now();
          count(true, t);
          fail(e, t);
          queue.later(i, 1000);
          continue;
        }
        const b = performance.now();
        count(true, b);
        if (!lease) {
          if (inWindow(b)) {
            total.emptyLeases++;
            interval.emptyLeases++;
          }
          queue.later(i, retryMs);
          continue;
        }
        try {
          let output: { key: string; bytes: number; sha256: string } | undefined;
          let uploadMs: number | undefined;
          if (lease.output.kind !== 'none') {
            const payload = payloads[lease.output.kind];
            const u0 = performance.now();
            await uploadToUrl(lease.output.url, payload);
            const u1 = performance.now();
            count(false, u1);
            uploadMs = u1 - u0;
            output = { key: lease.output.key, bytes: payload.length, sha256: digests[lease.output.kind] };
          }
          const c = performance.now();
          const lastStage = lease.direction === 'forward' && lease.stage === stages - 1;
          await m.client.complete({ lease_id: lease.id, ...(output ? { output } : {}), ...(lastStage ? { loss: 5.5 } : {}) });
          const d = performance.now();
          count(true, d);
          if (inWindow(d)) {
            for (const tally of [total, interval]) {
              tally.leaseMs.push(b - a);
              tally.completeMs.push(d - c);
              tally.roundTripMs.push(b - a + (d - c));
              if (uploadMs !== undefined) tally.uploadMs.push(uploadMs);
            }
          }
        } catch (e) {
          const t = performance.now();
          count(true, t);
          fail(e, t);
        }
        queue.push(i);
      }
    };

    const serverPid = server.child.pid!;
    let serverCpu0: number | null = null;
    let clientCpu0 = process.cpuUsage();
    const bar = out.progress('bench orchestrator', seconds);
    let lastTick = tStart;
    let tick = 0;
    let ticker: NodeJS.Timeout | undefined;
    const report = (): void => {
      const now = performance.now();
      tick++;
      const dt = (now - lastTick) / 1000;
      lastTick = now;
      const sorted = ascending(interval.roundTripMs);
      const rate = interval.roundTripMs.length / dt;
      const p99 = quantile(sorted, 0.99);
      const errors = [...interval.errors.values()].reduce((x, y) => x + y, 0);
      out.event('interval', { t_s: tick, round_trips_per_s: rate, p50_ms: quantile(sorted, 0.5), p99_ms: p99, requests_per_s: interval.requests / dt, empty_leases: interval.emptyLeases, errors });
      bar.update(tick, `${Math.round(rate)} round trips/s, p99 ${p99.toFixed(1)} ms${errors ? `, ${errors} errors` : ''}`);
      interval = newTally();
    };
    // The measured window opens after the warm-up: CPU counters start there.
    const windowUs = [0, 0];
    const opener = setTimeout(() => {
      windowUs[0] = monotonicUs();
      serverCpu0 = processCpuS(serverPid);
      clientCpu0 = process.cpuUsage();
      lastTick = performance.now();
      interval = newTally();
      ticker = setInterval(() => {
        if (tick < seconds - 1) report();
      }, 1000);
    }, warmupS * 1000);

    const running = Array.from({ length: concurrency }, slot);
    await new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, tEnd - performance.now())).unref());
    const serverCpu1 = processCpuS(serverPid);
    windowUs[1] = monotonicUs();
    const clientCpu = process.cpuUsage(clientCpu0);
    const windowS = (performance.now() - tStart) / 1000;
    stopping = true;
    clearTimeout(opener);
    clearInterval(ticker);
    report();
    queue.close();
    await Promise.all(running);
    bar.stop();
    const loadAfter = loadavg();

    // ---- report ----
    // The server writes its profile as it exits.
    await server.stop();
    const profile = flags.profile ? await serverProfile(profileDir, windowUs[0], windowUs[1]) : undefined;
    if (profile && !out.json) {
      out.note(`where the orchestrator's time goes (its CPU profile over the measured ${windowS.toFixed(1)} s: ${profile.busy_s.toFixed(1)} s busy):`);
      out.note('  by code:');
      for (const g of profile.by_code) out.note(`    ${g.name.padEnd(40)} ${(g.share * 100).toFixed(1).padStart(5)}%`);
      out.note('  by function (self time):');
      for (const f of profile.by_function) out.note(`    ${f.name.padEnd(70)} ${(f.share * 100).toFixed(1).padStart(5)}%`);
    }
    const rt = ascending(total.roundTripMs);
    const up = ascending(total.uploadMs);
    const roundTripsPerS = rt.length / windowS;
    const p50 = quantile(rt, 0.5);
    const p99 = quantile(rt, 0.99);
    const errors = Object.fromEntries([...total.errors].sort((x, y) => y[1] - x[1]));
    const errorCount = [...total.errors.values()].reduce((x, y) => x + y, 0);
    const serverCores = serverCpu0 !== null && serverCpu1 !== null ? (serverCpu1 - serverCpu0) / windowS : null;
    const clientCores = (clientCpu.user + clientCpu.system) / 1e6 / windowS;
    const met = roundTripsPerS >= GOAL.round_trips_per_s && p99 < GOAL.p99_ms;
    out.summary(
      {
        ok: true,
        miners: minerCount,
        stages,
        miners_per_stage: perStage,
        concurrency,
        seconds: windowS,
        warmup_s: warmupS,
        db: flags.db ? 'custom' : 'sqlite',
        round_trips: rt.length,
        round_trips_per_s: roundTripsPerS,
        p50_ms: p50,
        p99_ms: p99,
        lease_p50_ms: quantile(ascending(total.leaseMs), 0.5),
        complete_p50_ms: quantile(ascending(total.completeMs), 0.5),
        requests_per_s: total.requests / windowS,
        signed_requests_per_s: total.signed / windowS,
        uploads: up.length,
        upload_bytes: payloads.activation.length,
        upload_p50_ms: up.length ? quantile(up, 0.5) : null,
        upload_p99_ms: up.length ? quantile(up, 0.99) : null,
        empty_leases: total.emptyLeases,
        errors,
        error_count: errorCount,
        server_cpu_cores: serverCores,
        client_cpu_cores: clientCores,
        goal: { ...GOAL, met },
        machine: { ...machine, loadavg_before: loadBefore, loadavg_after: loadAfter },
        ...(profile ? { server_profile: profile } : {}),
      },
      [
        `${Math.round(roundTripsPerS).toLocaleString('en-US')} lease/complete round trips/s, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms ` +
          `(${minerCount} miners over ${stages} stages, ${concurrency} in flight, ${windowS.toFixed(1)} s)`,
        `${Math.round(total.requests / windowS).toLocaleString('en-US')} requests/s (${Math.round(total.signed / windowS).toLocaleString('en-US')} signed), ` +
          `upload of ${payloads.activation.length} B p50 ${up.length ? quantile(up, 0.5).toFixed(1) : '-'} ms, ${total.emptyLeases} empty leases, ` +
          `${errorCount ? `errors ${JSON.stringify(errors)}` : 'no errors'}`,
        `server ${serverCores === null ? '?' : serverCores.toFixed(2)} cores busy, this process ${clientCores.toFixed(2)} cores; ` +
          `goal ≥ ${GOAL.round_trips_per_s} round trips/s with p99 < ${GOAL.p99_ms} ms: ${met ? 'met' : 'not met'}`,
        `machine ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`,
      ].join('\n'),
    );
  } finally {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
