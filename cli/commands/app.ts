// `tah app`: the desktop app without Electron — its controllers (training worker, power policy,
// wallet, settings, logs) in this process, the UI served to a browser on loopback, the bridge over
// a WebSocket. For development, and for machines where Electron cannot run.
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { int } from '../args.ts';
import { uiDir } from './built-ui.ts';
import { makeOutput, onInterrupt } from '../output.ts';
import type { Guard } from './wallet.ts';

interface AppFlags {
  dataDir?: string;
  port?: number;
  ui?: string;
  json?: boolean;
}

export function registerAppCommand(program: Command, guarded: Guard): void {
  program
    .command('app')
    .description('run the desktop app in a browser: its training controls, wallet and settings, served on 127.0.0.1')
    .option('--data-dir <dir>', 'settings, wallet and logs (default: $TAH_HOME/app, TAH_HOME defaulting to ~/.tah)')
    .option('--port <n>', 'port on 127.0.0.1 (default: any free port)', int(1))
    .option('--ui <dir>', 'the built renderer to serve (default: dist/renderer)')
    .option('--json', 'one JSON object per line')
    .action(guarded(async (o: AppFlags) => runApp(o)));
}

async function runApp(o: AppFlags): Promise<void> {
  const out = makeOutput(o.json ?? false);
  const [{ tahHome }, { nodeAppWorld }, { AppController }, { startBrowserHost }] = await Promise.all([
    import('../../orchestrator-client/wallet.ts'),
    import('../../electron/browser-host/node-world.ts'),
    import('../../electron/core/app.ts'),
    import('../../electron/browser-host/server.ts'),
  ]);
  const dataDir = o.dataDir ? resolve(o.dataDir) : join(tahHome(), 'app');
  const controller = new AppController(await nodeAppWorld({ dataDir }));
  await controller.init();
  const host = await startBrowserHost({ controller, port: o.port, staticDir: uiDir(o.ui) });
  out.event('listening', { url: host.url, data_dir: dataDir });
  if (!out.json) out.note(`Train at Home is running at ${host.url}\nsettings, wallet and logs in ${dataDir}; Ctrl-C stops training and quits`);
  let last = '';
  controller.onState((s) => {
    const line = `${s.training.status}${s.training.reason ? `: ${s.training.reason}` : ''}`;
    if (line === last) return;
    last = line;
    if (out.json) out.event('state', { status: s.training.status, reason: s.training.reason, stage: s.training.stage, tokens_per_s: s.training.tokensPerS });
    else out.note(`training ${line}`);
  });
  await new Promise<void>((done) => {
    onInterrupt(out, 'stopping: finishing the task in hand (Ctrl-C again to quit at once)', () => done(), ['SIGINT', 'SIGTERM']);
  });
  await controller.dispose();
  await host.close();
  out.summary({ ok: true, data_dir: dataDir }, 'stopped');
}
