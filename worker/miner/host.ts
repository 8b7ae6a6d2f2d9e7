// The miner's message interface to a host process: the desktop app runs the miner loop in a
// utility process and talks to it only through these messages (the same shape over Electron's
// parentPort, a worker_threads port or a test's MessageChannel). One contract for both ends.
import type { Hardware } from '../../orchestrator-client/protocol.ts';
import type { MinerEvent } from './miner.ts';

/**
 * Node flags for a process that runs a miner (a host passes them when it starts one). A miner
 * holds few JavaScript objects but streams large tensors through buffers, and V8 sizes the heap
 * by the objects: by default it ran a full collection after every ~30 MB of buffers, several
 * per round, a fifth of the miner's CPU. Measured on the demo swarm (6 miners, 2 cores): 4,900 →
 * 5,850 tokens/s. Heap sizes are fixed at start-up, so these cannot be set from inside.
 */
export const MINER_NODE_FLAGS = ['--initial-old-space-size=256'] as const;

/** Host → miner. */
export type HostMessage =
  | {
      type: 'start';
      orchestrator: string;
      /** The hotkey's 32-byte seed, hex; the host keeps the wallet file, the miner only the key. */
      seedHex: string;
      hardware: Hardware;
      runId?: string;
      device?: string;
      threads?: number;
    }
  | { type: 'stop' };

/** Miner → host: its events, and the end of the loop. */
export type MinerMessage = MinerEvent | { type: 'ended'; result: 'finished' | 'stopped' | 'failed'; error?: string };

/** The two calls a port offers, as worker_threads' MessagePort and Electron's parentPort do. */
export interface Port<In, Out> {
  postMessage(message: Out): void;
  on(event: 'message', listener: (message: In) => void): unknown;
}

/** Checks a message from the host (it crossed a process boundary) and says what is wrong. */
export function parseHostMessage(value: unknown): HostMessage {
  const v = value as Record<string, unknown> | null;
  if (typeof v !== 'object' || v === null) throw new Error('host message: not an object');
  if (v.type === 'stop') return { type: 'stop' };
  if (v.type !== 'start') throw new Error(`host message: unknown type ${JSON.stringify(v.type)}`);
  if (typeof v.orchestrator !== 'string' || !/^https?:\/\//.test(v.orchestrator)) throw new Error('host message: start needs an http(s) orchestrator URL');
  if (typeof v.seedHex !== 'string' || !/^(0x)?[0-9a-fA-F]{64}$/.test(v.seedHex)) throw new Error('host message: start needs a 32-byte hex seed');
  const h = v.hardware as Record<string, unknown> | undefined;
  if (typeof h !== 'object' || h === null) throw new Error('host message: start needs a hardware report');
  if (v.threads !== undefined && (!Number.isInteger(v.threads) || (v.threads as number) < 1)) throw new Error('host message: threads must be a positive integer');
  return v as unknown as HostMessage;
}

/**
 * Serves one miner over `port`: waits for 'start', runs the loop, forwards every event, stops on
 * 'stop', and always ends with an 'ended' message. The engine comes in through `run` so that this
 * file stays free of native modules.
 */
export function serveMiner(
  port: Port<unknown, MinerMessage>,
  run: (start: Extract<HostMessage, { type: 'start' }>, onEvent: (e: MinerEvent) => void) => { done: Promise<'finished' | 'stopped'>; stop: () => void },
): Promise<void> {
  return new Promise((resolve) => {
    let current: { stop: () => void } | null = null;
    port.on('message', (raw) => {
      let msg: HostMessage;
      try {
        msg = parseHostMessage(raw);
      } catch (e) {
        port.postMessage({ type: 'error', message: (e as Error).message, recoverable: true });
        return;
      }
      if (msg.type === 'stop') {
        current?.stop();
        if (!current) {
          port.postMessage({ type: 'ended', result: 'stopped' });
          resolve();
        }
        return;
      }
      if (current) {
        port.postMessage({ type: 'error', message: 'host message: the miner is already running', recoverable: true });
        return;
      }
      const r = run(msg, (e) => port.postMessage(e));
      current = r;
      r.done.then(
        (result) => port.postMessage({ type: 'ended', result }),
        (e: Error) => port.postMessage({ type: 'ended', result: 'failed', error: e.message }),
      ).finally(() => resolve());
    });
  });
}
