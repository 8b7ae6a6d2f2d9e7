// The bridge as the renderer sees it in a browser: the same Bridge interface the preload exposes
// in Electron, carried over the browser host's WebSocket. Also what the tests drive the app with.
import type { AppState, Bridge, BridgeResult, CallArgs, CallResult, Channel } from '../ipc-contract.ts';
import { STATE_EVENT } from '../ipc-names.ts';

/** The parts of the standard WebSocket used here (the browser's, or the `ws` package's in Node). */
interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(): void;
  addEventListener(type: 'open' | 'close' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (e: { data: unknown }) => void): void;
}
type SocketConstructor = new (url: string) => SocketLike;

export interface BridgeConnection extends Bridge {
  /** The latest state pushed by the host (null until the first push or call). */
  readonly latest: AppState | null;
  close(): void;
}

export function connectBridge(url: string, Socket: SocketConstructor = (globalThis as unknown as { WebSocket: SocketConstructor }).WebSocket): Promise<BridgeConnection> {
  const ws = new Socket(url);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Set<(s: AppState) => void>();
  let nextId = 1;
  let latest: AppState | null = null;
  let closed = false;

  ws.addEventListener('message', (e) => {
    let m: { id?: number; result?: BridgeResult<unknown>; event?: string; state?: AppState };
    try {
      m = JSON.parse(String(e.data));
    } catch {
      return;
    }
    if (m.event === STATE_EVENT && m.state) {
      latest = m.state;
      for (const l of listeners) l(m.state);
      return;
    }
    const p = m.id !== undefined ? pending.get(m.id) : undefined;
    if (!p || !m.result) return;
    pending.delete(m.id!);
    if (m.result.ok) p.resolve(m.result.value);
    else p.reject(new Error(m.result.error));
  });
  ws.addEventListener('close', () => {
    closed = true;
    for (const p of pending.values()) p.reject(new Error('the connection to the app was closed'));
    pending.clear();
  });

  const connection: BridgeConnection = {
    get latest() {
      return latest;
    },
    call<C extends Channel>(channel: C, ...args: CallArgs<C>): Promise<CallResult<C>> {
      if (closed) return Promise.reject(new Error('the connection to the app is closed'));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        ws.send(JSON.stringify({ id, channel, args }));
      }).then((value) => {
        if (channel === 'state:get') latest = value as AppState;
        return value as CallResult<C>;
      });
    },
    onState(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: () => ws.close(),
  };
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve(connection));
    ws.addEventListener('error', () => reject(new Error(`cannot connect to the app at ${url.replace(/token=[^&]+/, 'token=…')}`)));
  });
}
