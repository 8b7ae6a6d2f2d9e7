// The training worker as an Electron utility process (a Node process that Electron starts and
// sandboxes from the window): the WorkerProcess the worker host drives.
import { utilityProcess } from 'electron';
import { createInterface } from 'node:readline';
import { MINER_NODE_FLAGS } from '../../worker/miner/host.ts';
import type { SpawnWorker } from '../core/worker-host.ts';

export function utilityWorkerSpawner(entry: string, onOutput: (line: string) => void): SpawnWorker {
  return () => {
    const child = utilityProcess.fork(entry, [], { serviceName: 'Train at Home training', execArgv: [...MINER_NODE_FLAGS], stdio: 'pipe' });
    for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream }).on('line', onOutput);
    return {
      get pid() {
        return child.pid;
      },
      postMessage: (m) => child.postMessage(m),
      onMessage: (listener) => child.on('message', listener),
      onExit: (listener) => child.once('exit', (code) => listener(`exit code ${code}`, code === 0)),
      kill: () => void child.kill(),
    };
  };
}
