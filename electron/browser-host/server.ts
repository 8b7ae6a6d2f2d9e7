// The browser host: the app's main-process controllers served to a browser, for development and
// for tests on machines without Electron. The renderer's files come over HTTP and the bridge over
// a WebSocket, with the same contract, checks and dispatch as Electron's IPC. It listens on
// loopback only, and a random token in the page's address guards the bridge: without it, any web
// page the user opens could drive the app through ws://127.0.0.1.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { STATE_EVENT } from '../ipc-contract.ts';
import type { AppController } from '../core/app.ts';
import { dispatch } from '../core/dispatch.ts';
import { resolveStaticFile } from '../../orchestrator-client/static-files.ts';

/** Client → host. */
export interface BridgeRequest {
  id: number;
  channel: string;
  args: unknown[];
}
/** Host → client: an answer, or the state event. */
export type BridgeReply = { id: number; result: { ok: true; value: unknown } | { ok: false; error: string } } | { event: typeof STATE_EVENT; state: unknown };

export const BRIDGE_PATH = '/bridge';
const MAX_MESSAGE_BYTES = 64 * 1024;


export interface BrowserHostOptions {
  controller: AppController;
  /** The built renderer (index.html and its assets); absent: a page that says how to build it. */
  staticDir?: string;
  port?: number;
  log?: (message: string) => void;
}

export interface BrowserHost {
  /** The page to open, token included. */
  url: string;
  /** The bridge's WebSocket address, token included. */
  bridgeUrl: string;
  close(): Promise<void>;
}

export async function startBrowserHost(opts: BrowserHostOptions): Promise<BrowserHost> {
  const token = randomBytes(18).toString('base64url');
  const server: Server = createServer((req, res) => {
    serveStatic(opts.staticDir, req, res).catch((e: Error) => {
      opts.log?.(`browser host: ${e.message}`);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const origin = req.headers.origin;
    const own = `http://${req.headers.host}`;
    if (url.pathname !== BRIDGE_PATH || url.searchParams.get('token') !== token || (origin !== undefined && origin !== own)) {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveBridge(ws, opts));
  });
  await new Promise<void>((r, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => r());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    bridgeUrl: `ws://127.0.0.1:${port}${BRIDGE_PATH}?token=${token}`,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function serveBridge(ws: WebSocket, opts: BrowserHostOptions): void {
  const send = (m: BridgeReply): void => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
  };
  const off = opts.controller.onState((state) => send({ event: STATE_EVENT, state }));
  ws.on('close', off);
  ws.on('error', (e) => opts.log?.(`browser host: bridge socket: ${e.message}`));
  ws.on('message', (data) => {
    let req: BridgeRequest;
    try {
      req = JSON.parse(String(data)) as BridgeRequest;
      if (typeof req !== 'object' || req === null || !Number.isSafeInteger(req.id)) throw new Error('not a bridge request');
    } catch (e) {
      send({ id: -1, result: { ok: false, error: `malformed bridge message: ${(e as Error).message}` } });
      return;
    }
    void dispatch(opts.controller, req.channel, req.args, opts.log).then((result) => send({ id: req.id, result }));
  });
}

async function serveStatic(dir: string | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const headers = {
    'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws://127.0.0.1:*; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  };
  if (!dir) {
    res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><meta charset="utf-8"><title>Train at Home</title><p>The app\'s interface is not built. Build the renderer, then open this page again.</p>');
    return;
  }
  const found = await resolveStaticFile(dir, new URL(req.url ?? '/', 'http://localhost').pathname);
  if (found.status !== 200) {
    res.writeHead(found.status, headers).end();
    return;
  }
  res.writeHead(200, { ...headers, 'content-type': found.type, 'content-length': found.size });
  if (req.method === 'HEAD') res.end();
  else createReadStream(found.file).pipe(res);
}
