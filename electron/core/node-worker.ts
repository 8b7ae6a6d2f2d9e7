// The training worker as a Node child process: how the browser host and the tests run it (the
// desktop app uses Electron's utilityProcess in electron/main/ instead). Same entry, same messages.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { MINER_NODE_FLAGS } from '../../worker/miner/host.ts';
import type { SpawnWorker, WorkerProcess } from './worker-host.ts';

/** The worker's entry: the TypeScript source, or its bundle beside the bundled CLI (scripts/build-cli.ts). */
export const WORKER_ENTRY = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../worker/entry.ts' : '../worker/entry.mjs', import.meta.url));

export interface NodeWorkerOptions {
  entry?: string;
  /** Node flags; the default runs a TypeScript entry through tsx. */
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  /** Each line the worker writes to stdout or stderr. */
  onOutput?: (line: string, stream: 'stdout' | 'stderr') => void;
}

export function nodeWorkerSpawner(opts: NodeWorkerOptions = {}): SpawnWorker {
  return () => {
    const env = { ...process.env, ...opts.env };
    // A host run by node's test runner must not pass its marker on.
    delete env.NODE_TEST_CONTEXT;
    const entry = opts.entry ?? WORKER_ENTRY;
    const child = fork(entry, [], {
      execArgv: opts.execArgv ?? [...(entry.endsWith('.ts') ? ['--import', 'tsx'] : []), ...MINER_NODE_FLAGS],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env,
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      createInterface({ input: child[stream]! }).on('line', (line) => opts.onOutput?.(line, stream));
    }
    const worker: WorkerProcess = {
      get pid() {
        return child.pid;
      },
      postMessage: (m) => {
        if (child.connected) child.send(m);
      },
      onMessage: (listener) => child.on('message', listener),
      onExit: (listener) =>
        child.once('exit', (code, signal) => listener(signal ? `signal ${signal}` : `exit code ${code}`, code === 0)),
      kill: () => child.kill('SIGKILL'),
    };
    // A failed spawn (e.g. no such entry) ends as an exit too; the error itself only goes to the log.
    child.on('error', (e) => opts.onOutput?.(`worker process error: ${e.message}`, 'stderr'));
    return worker;
  };
}
