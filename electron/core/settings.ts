// The app's settings: one JSON file in the user's data folder, read once at start and rewritten
// (atomically) on every change. A damaged file never stops the app: it is kept aside for whoever
// wants to look at it and the defaults take its place, with a notice for the user.
import { open as openFile, rename, stat } from 'node:fs/promises';
import { writeFileAtomic } from '../../orchestrator-client/files.ts';
import { type Notice, type Settings, SettingsPatchSchema, SettingsSchema } from '../ipc-contract.ts';

/** The local swarm (`tah swarm`), for development; packaged builds set TAH_ORCHESTRATOR. */
const LOCAL_ORCHESTRATOR = 'http://127.0.0.1:8080';
/** Settings are a few hundred bytes; anything much bigger is not ours. */
export const MAX_SETTINGS_BYTES = 1024 * 1024;

export function defaultSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  // An unusable TAH_ORCHESTRATOR must not make every settings file look damaged (defaults fill gaps).
  const fromEnv = env.TAH_ORCHESTRATOR ? SettingsSchema.shape.orchestratorUrl.safeParse(env.TAH_ORCHESTRATOR) : null;
  return {
    orchestratorUrl: fromEnv?.success ? fromEnv.data : LOCAL_ORCHESTRATOR,
    runId: null,
    threads: null,
    useGpu: true,
    runOnBattery: false,
    minBatteryPercent: 40,
    onlyWhenIdle: false,
    idleMinutes: 5,
    startAtLogin: false,
    startMinimised: false,
    autoStart: false,
    allowPlaintextKey: false,
    onboarded: false,
  };
}

export type SettingsListener = (settings: Settings, previous: Settings) => void;

export interface SettingsOpenOptions {
  env?: NodeJS.ProcessEnv;
  /** Clock for the backup's name (tests). */
  now?: () => number;
}

const WRITE_OPTIONS = { mode: 0o600, createParents: 0o700 } as const;

export class SettingsStore {
  private current: Settings;
  private readonly listeners = new Set<SettingsListener>();
  /** Updates run one after another, so the file always holds the last value in memory. */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    initial: Settings,
  ) {
    this.current = initial;
  }

  static async open(path: string, opts: SettingsOpenOptions = {}): Promise<{ store: SettingsStore; notice: Notice | null }> {
    const defaults = defaultSettings(opts.env);
    const raw = await readLimited(path);
    if (raw === null) return { store: new SettingsStore(path, defaults), notice: null };

    const settings = raw === 'too-big' ? null : parseSettings(raw, defaults);
    if (settings) return { store: new SettingsStore(path, settings), notice: null };

    const backup = await backUp(path, opts.now ?? Date.now);
    await writeFileAtomic(path, serialize(defaults), WRITE_OPTIONS);
    const notice: Notice = {
      id: 'settings-reset',
      level: 'warning',
      message: `The settings file was damaged, so the default settings are in use. The damaged file was kept as ${backup}.`,
    };
    return { store: new SettingsStore(path, defaults), notice };
  }

  get(): Settings {
    return { ...this.current };
  }

  /**
   * Checks `patch`, then applies it on top of the newest settings and saves them. A patch that
   * does not pass changes nothing. Listeners run after the file is written; if one throws, the
   * others still run and the first error is thrown afterwards (the settings are saved by then).
   */
  async update(patch: unknown): Promise<Settings> {
    const parsed = SettingsPatchSchema.safeParse(patch);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
      throw new Error(`The settings were not saved: ${why.join('; ')}.`);
    }
    // `{ runId: undefined }` passes a partial schema; it means "no change", not "unset".
    const changes = Object.fromEntries(Object.entries(parsed.data).filter(([, v]) => v !== undefined)) as Partial<Settings>;

    const run = this.tail.then(async () => {
      const previous = this.current;
      const next: Settings = { ...previous, ...changes };
      if (sameSettings(previous, next)) return { ...next };
      await writeFileAtomic(this.path, serialize(next), WRITE_OPTIONS);
      this.current = next;
      notify(this.listeners, next, previous);
      return { ...next };
    });
    this.tail = run.catch(() => {});
    return run;
  }

  /** Calls `listener` after every saved change; returns the unsubscribe function. */
  onChange(listener: SettingsListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }
}

/** The file's text; null when there is none; 'too-big' past MAX_SETTINGS_BYTES (not read). */
async function readLimited(path: string): Promise<string | null | 'too-big'> {
  let fh;
  try {
    fh = await openFile(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`Could not read the settings file ${path} (${(e as Error).message}).`, { cause: e });
  }
  try {
    const { size } = await fh.stat();
    if (size > MAX_SETTINGS_BYTES) return 'too-big';
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/** The settings in `raw`, over the defaults (older files lack newer keys); null when damaged. */
function parseSettings(raw: string, defaults: Settings): Settings | null {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return null;
  // z.object drops keys it does not know (settings from a newer or older version).
  const result = SettingsSchema.safeParse({ ...defaults, ...json });
  return result.success ? result.data : null;
}

/** Moves the damaged file aside (never deletes it) and returns where it went. */
async function backUp(path: string, now: () => number): Promise<string> {
  const stamp = new Date(now()).toISOString().replaceAll(':', '-');
  let target = `${path}.corrupt-${stamp}`;
  // Two resets within the same millisecond must not overwrite the first backup.
  for (let n = 1; await exists(target); n++) target = `${path}.corrupt-${stamp}-${n}`;
  await rename(path, target);
  return target;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return false;
      throw e;
    },
  );
}

function serialize(s: Settings): string {
  return `${JSON.stringify(s, null, 2)}\n`;
}

function sameSettings(a: Settings, b: Settings): boolean {
  return (Object.keys(b) as (keyof Settings)[]).every((k) => a[k] === b[k]);
}

function notify(listeners: Set<SettingsListener>, next: Settings, previous: Settings): void {
  const failures: unknown[] = [];
  for (const listener of [...listeners]) {
    try {
      listener({ ...next }, { ...previous });
    } catch (e) {
      failures.push(e);
    }
  }
  if (failures.length > 0) throw failures[0];
}
