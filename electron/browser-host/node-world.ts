// The app's world in plain Node, for the browser host: the same settings, wallet, logs and worker
// as the desktop app, with Node stand-ins where Electron has the real thing. Node cannot reach the
// OS keychain, so the key is kept as a private file once the user agrees (as on Linux without a
// keyring); files are saved to <data>/exports instead of through a save dialog; nothing keeps the
// system awake.
import { mkdir } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import log from 'electron-log/node';
import type { AppWorld, PowerSource } from '../core/app.ts';
import { polledPower } from '../core/battery.ts';
import { checkHardware } from '../core/hardware.ts';
import { configureLog, logFiles, workerLog } from '../core/logs.ts';
import { nodeWorkerSpawner } from '../core/node-worker.ts';
import { SettingsStore } from '../core/settings.ts';
import { type SecretBox, WalletStore } from '../core/wallet.ts';

/** No OS keyring in plain Node: the key is stored as it is, which the wallet allows only with consent. */
export const plaintextBox: SecretBox = {
  protection: () => 'plaintext',
  encrypt: (plain) => Buffer.from(plain, 'utf8'),
  decrypt: (data) => data.toString('utf8'),
};

export interface NodeWorldOptions {
  dataDir: string;
  version?: string;
  power?: PowerSource;
  box?: SecretBox;
  env?: NodeJS.ProcessEnv;
  /** Extra environment for the worker process. */
  workerEnv?: NodeJS.ProcessEnv;
  /** Overrides for the tests (shorter delays). */
  tune?: Partial<Pick<AppWorld, 'backoffMs' | 'stopGraceMs' | 'powerPollMs' | 'healthTimeoutMs' | 'cores'>>;
}

export async function nodeAppWorld(opts: NodeWorldOptions): Promise<AppWorld> {
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  const logDir = join(opts.dataDir, 'logs');
  configureLog(log, { dir: logDir, consoleLevel: false });
  const worker = workerLog(log);
  const { store: settings, notice } = await SettingsStore.open(join(opts.dataDir, 'settings.json'), { env: opts.env });
  if (notice) log.warn(notice.message);
  const wallet = new WalletStore({ dir: join(opts.dataDir, 'wallet'), box: opts.box ?? plaintextBox, allowPlaintext: () => settings.get().allowPlaintextKey });
  const exports = join(opts.dataDir, 'exports');
  return {
    version: opts.version ?? '0.0.0-dev',
    cores: availableParallelism(),
    memoryBytes: totalmem(),
    settings,
    wallet,
    spawnWorker: nodeWorkerSpawner({ env: opts.workerEnv, onOutput: (line, stream) => (stream === 'stderr' ? worker.warn(line) : worker.info(line)) }),
    power: opts.power ?? polledPower(),
    keepAwake: { start: () => log.info('training: the system should stay awake'), stop: () => undefined },
    dialogs: {
      saveFile: async ({ defaultName }) => {
        await mkdir(exports, { recursive: true, mode: 0o700 });
        return join(exports, defaultName);
      },
    },
    checkHardware: () => checkHardware({ dataDir: opts.dataDir }),
    logFiles: logFiles(logDir),
    log: (level, message) => log[level](message),
    notices: notice ? [notice] : [],
    ...opts.tune,
  };
}
