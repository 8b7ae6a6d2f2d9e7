// `tah orchestrator`: the swarm's coordinator service, on the embedded default (SQLite and a
// local blob directory) or on PostgreSQL and S3.
import type { Command } from 'commander';
import { positive } from '../args.ts';
import { uiDir } from './built-ui.ts';
import { makeOutput } from '../output.ts';
import type { Guard } from './wallet.ts';

interface OrchestratorFlags {
  db: string;
  storage: string;
  host: string;
  port: number;
  partMib?: number;
  run?: string;
  operator?: string;
  logLevel: string;
  ui?: string | false;
  json?: boolean;
}

export function registerOrchestratorCommand(program: Command, guarded: Guard): void {
  program
    .command('orchestrator')
    .description('run the coordinator service: registry, stage assignment, work leases, storage URLs')
    .option('--db <url>', 'sqlite:PATH or postgres://USER@HOST/DB', 'sqlite:tah-data/orchestrator.db')
    .option('--storage <spec>', 'local:DIR (served by this process) or s3://BUCKET[/PREFIX] (AWS_* variables)', 'local:tah-data/blobs')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free port)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port must be 0-65535, got '${v}'`);
      return n;
    }, 8080)
    .option('--part-mib <n>', 'uploads that may exceed N MiB go in parts of N MiB, several at a time (S3: at least 5; default 64)', positive)
    .option('--run <file>', 'a run specification (JSON) to create at start unless it exists')
    .option('--operator <ss58>', 'the hotkey allowed to call the admin endpoints (default: $TAH_OPERATOR)')
    .option('--log-level <level>', 'structured log level on stderr (fatal, error, warn, info, debug)', 'info')
    .option('--ui <dir>', 'the built renderer to serve at / as the runs\' public dashboard (default: dist/renderer when built)')
    .option('--no-ui', 'serve the API only')
    .option('--json', 'one JSON object per line on stdout')
    .action(
      guarded(async (o: OrchestratorFlags) => {
        const out = makeOutput(o.json ?? false);
        const { startOrchestrator } = await import('../../orchestrator/service.ts');
        const ui = o.ui === false ? undefined : uiDir(o.ui);
        const orch = await startOrchestrator({
          db: o.db,
          storage: o.storage,
          host: o.host,
          port: o.port,
          ...(o.partMib !== undefined ? { partBytes: Math.max(1, Math.round(o.partMib * 2 ** 20)) } : {}),
          runFile: o.run,
          operator: o.operator ?? process.env.TAH_OPERATOR,
          logger: { level: o.logLevel, stream: process.stderr },
          uiDir: ui,
        });
        out.event('listening', { url: orch.url, dashboard: ui ? `${orch.url}/` : null, db: o.db.replace(/:\/\/([^:@/]+):[^@/]*@/, '://$1:***@'), storage: o.storage });
        if (!out.json) process.stdout.write(`orchestrator listening on ${orch.url}\n`);
        await new Promise<void>((resolve) => {
          const stop = (): void => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        await orch.close();
        out.summary({ ok: true, url: orch.url }, 'orchestrator stopped');
      }),
    );
}
