// The training worker's process: the miner loop behind the host's message interface. Electron
// starts it as a utility process (messages through process.parentPort); the browser host and the
// tests fork it with Node (messages through process.send). Either way it never shares the main
// process's event loop, so heavy training cannot freeze the app's window or tray.
import { type MinerMessage, type Port, serveMiner } from '../../worker/miner/host.ts';
import { launchMiner } from '../../worker/miner/launch.ts';

interface ParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (e: { data: unknown }) => void): unknown;
}

function hostPort(): Port<unknown, MinerMessage> & { flush(): Promise<void> } {
  const parentPort = (process as { parentPort?: ParentPort }).parentPort;
  if (parentPort) {
    return {
      postMessage: (m) => parentPort.postMessage(m),
      on: (_event, listener) => parentPort.on('message', (e) => listener(e.data)),
      flush: () => new Promise((r) => setImmediate(r)),
    };
  }
  if (!process.send) throw new Error('the training worker must be started by the app (no message channel to a host)');
  let pending: Promise<void> = Promise.resolve();
  return {
    postMessage: (m) => {
      pending = new Promise((r) => process.send!(m, undefined, undefined, () => r()));
    },
    on: (_event, listener) => process.on('message', listener),
    flush: () => pending,
  };
}

const port = hostPort();
await serveMiner(port, launchMiner);
// Everything said (the 'ended' message included) has reached the host: leave now, even if a
// native thread pool would keep the process alive.
await port.flush();
process.exit(0);
