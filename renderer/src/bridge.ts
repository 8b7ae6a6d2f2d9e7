// How this page reaches the app, decided once at boot: Electron's preload (window.tah), the
// browser host's WebSocket (the page address carries the bridge token), or neither — then the page
// is the orchestrator's public dashboard and shows only the network. The token is kept here in
// memory and in the address (the router keeps the query string), so that reloads work.
import type { Bridge } from '../../electron/ipc-contract.ts';
import { connectBridge } from '../../electron/browser-host/client.ts';

declare global {
  interface Window {
    /** The preload's bridge, in Electron only. */
    tah?: Bridge;
  }
}

export type Mode = { kind: 'electron'; bridge: Bridge } | { kind: 'browser'; token: string } | { kind: 'dashboard' };

function detect(): Mode {
  if (window.tah) return { kind: 'electron', bridge: window.tah };
  const token = new URLSearchParams(window.location.search).get('token');
  if (token) return { kind: 'browser', token };
  return { kind: 'dashboard' };
}

export const mode: Mode = detect();

/** The query string every in-app address keeps ("?token=…" in a browser, "" elsewhere). */
export function keptQuery(): string {
  return mode.kind === 'browser' ? `?token=${encodeURIComponent(mode.token)}` : '';
}

/** Opens the bridge: at once in Electron, over the WebSocket in a browser. */
export async function openBridge(): Promise<Bridge> {
  if (mode.kind === 'electron') return mode.bridge;
  if (mode.kind === 'browser') {
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    return connectBridge(`${scheme}://${window.location.host}/bridge?token=${encodeURIComponent(mode.token)}`);
  }
  throw new Error('This page has no connection to the app: it shows the public network dashboard only.');
}

/** The controller's own sentence from a rejected call. */
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return typeof e === 'string' ? e : 'Something went wrong.';
}

/** Errors that mean the bridge itself is gone (the browser host stopped), not a refused call. */
export function isConnectionLost(e: unknown): boolean {
  return /connection to the app (was|is) closed/.test(messageOf(e));
}
