// The desktop app's bridge, the one source of truth for it: every call the renderer may make to the
// main process (its argument schema and its result type) and the state main pushes back. Used by
// the Electron main process, the preload, the browser host (the same controllers served over a
// WebSocket) and the renderer. Nothing else names a channel or copies these types.
import { z } from 'zod';
import type { Dashboard, MinerRewards } from '../orchestrator-client/protocol.ts';
import type { MinerState } from '../worker/miner/replica.ts';
import { CHANNELS, type Channel, STATE_EVENT } from './ipc-names.ts';

export { CHANNELS, type Channel, STATE_EVENT };

// ---- settings ----

const httpUrl = z
  .string()
  .trim()
  .max(2000)
  .refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'an http:// or https:// address, e.g. https://orchestrator.example.org');

export const SettingsSchema = z.object({
  /** The swarm's orchestrator. */
  orchestratorUrl: httpUrl,
  /** The run to join; null: the orchestrator's newest active run. */
  runId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dot, dash or underscore, at most 64').nullable(),
  /** CPU threads the training may use; null: all cores but one. */
  threads: z.number().int().min(1).max(512).nullable(),
  /** Use the GPU (CUDA, Apple's CoreML) where there is one; off: CPU only. */
  useGpu: z.boolean(),
  /** Train on battery power too (default off: pause on battery). */
  runOnBattery: z.boolean(),
  /** With runOnBattery: pause when the battery falls below this percentage. */
  minBatteryPercent: z.number().int().min(0).max(100),
  /** Train only while nobody uses the computer. */
  onlyWhenIdle: z.boolean(),
  /** With onlyWhenIdle: minutes without keyboard or mouse before the computer counts as idle. */
  idleMinutes: z.number().int().min(1).max(720),
  startAtLogin: z.boolean(),
  startMinimised: z.boolean(),
  /** Start training as soon as the app starts (when onboarding is done). */
  autoStart: z.boolean(),
  /** Linux without a keyring: the user agreed to keep the key unencrypted (file readable only by them). */
  allowPlaintextKey: z.boolean(),
  /** Onboarding (hardware check, wallet, settings) is done; until then the app stays paused. */
  onboarded: z.boolean(),
});
export type Settings = z.infer<typeof SettingsSchema>;
/** What the renderer may change in one call; unknown keys are refused. */
export const SettingsPatchSchema = SettingsSchema.partial().strict();
export type SettingsPatch = z.infer<typeof SettingsPatchSchema>;

// ---- power ----

/** macOS's thermal state (Electron's powerMonitor); 'unknown' elsewhere. */
export const THERMAL_STATES = ['unknown', 'nominal', 'fair', 'serious', 'critical'] as const;
export type ThermalState = (typeof THERMAL_STATES)[number];

/** A pause the user asked for: for a while, or until the computer is on mains power. */
export type UserPause = { kind: 'until'; until: number } | { kind: 'until-ac' };

/** What the power policy reads (electron/core/power-policy.ts). */
export interface PowerInputs {
  now: number;
  onBattery: boolean;
  /** 0–100; null when unknown or there is no battery. */
  batteryPercent: number | null;
  /** Seconds since the last keyboard or mouse input. */
  idleSeconds: number;
  thermal: ThermalState;
  /** The system is going to sleep or asleep. */
  suspended: boolean;
  pause: UserPause | null;
  settings: Pick<Settings, 'runOnBattery' | 'minBatteryPercent' | 'onlyWhenIdle' | 'idleMinutes'>;
}

export type PauseReason = 'user' | 'until-ac' | 'on-battery' | 'battery-low' | 'not-idle' | 'thermal' | 'suspended';

export type PowerDecision =
  /** throttle: run with half the threads (the machine is warm). */
  | { run: true; throttle: boolean }
  | { run: false; reason: PauseReason; message: string; /** When the pause ends by itself (a timed pause). */ until?: number };

// ---- wallet ----

export interface WalletInfo {
  /** The hotkey's SS58 address. */
  address: string;
  /** 0x-prefixed hex. */
  publicKey: string;
  /** The coldkey address rewards are paid to; null until set. */
  payoutAddress: string | null;
  /** The user confirmed they wrote the mnemonic down. */
  backedUp: boolean;
  /** How the key is kept at rest: encrypted by the OS keychain/keyring, or a file readable only by the user. */
  protection: 'os' | 'plaintext';
}

export const MnemonicArgSchema = z.object({ mnemonic: z.string().max(1000) }).strict();
export const PayoutArgSchema = z.object({ address: z.string().max(100).nullable() }).strict();

// ---- hardware ----

export interface HardwareReport {
  platform: string;
  arch: string;
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  /** Free space for the user (not root's reserve) where the app keeps its data; null: unknown. */
  freeDiskBytes: number | null;
  gpus: { name: string; memoryBytes: number | null; vendor: string }[];
  /** ok: meets the minimums; cpu-only: runs, on the CPU; insufficient: below the minimums. */
  verdict: 'ok' | 'cpu-only' | 'insufficient';
  /** Plain sentences: what was found and what it means. */
  reasons: string[];
}

// ---- updates (the state the updater shows; electron/core/updater-state.ts) ----

export type UpdaterState =
  | { status: 'idle'; lastChecked: number | null }
  | { status: 'checking' }
  | { status: 'available'; version: string }
  | { status: 'downloading'; version: string; percent: number }
  | { status: 'ready'; version: string }
  | { status: 'error'; message: string };

// ---- training ----

export type TrainingStatus =
  /** Not asked to train. */
  | 'stopped'
  /** Asked to train, but the power policy or the user paused it (see reason). */
  | 'paused'
  | 'starting'
  | 'training'
  /** Finishing or handing back the work in hand. */
  | 'stopping'
  /** The worker ended unexpectedly and is started again after a delay (see reason). */
  | 'restarting'
  /** Cannot train until the user acts (see reason). */
  | 'error';

export interface StageInfo {
  runId: string;
  stage: number;
  stageCount: number;
  /** First and last layer this machine holds. */
  layers: [number, number];
  params: number;
}

export interface TrainingState {
  status: TrainingStatus;
  /** Why paused, restarting or in error, in words for the user; null otherwise. */
  reason: string | null;
  pauseReason: PauseReason | null;
  /** The worker's own state (forward, backward, share…) while it runs. */
  minerState: MinerState | null;
  stage: StageInfo | null;
  /** Rounds the stage has applied. */
  round: number;
  tokensPerS: number;
  items: number;
  /** Tokens this computer processed since the app started, over every worker run. */
  tokens: number;
  loss: number | null;
  /** Recent samples for the charts, oldest first (at most HISTORY_POINTS). */
  history: { t: number; tokensPerS: number; loss: number | null }[];
  /** When the current training session started (uptime); null when not training. */
  since: number | null;
  restarts: number;
  lastCrash: { at: number; reason: string } | null;
}

export const HISTORY_POINTS = 300;

/** Training before the first Start: nothing assigned, nothing measured. */
export function idleTraining(): TrainingState {
  return { status: 'stopped', reason: null, pauseReason: null, minerState: null, stage: null, round: 0, tokensPerS: 0, items: 0, tokens: 0, loss: null, history: [], since: null, restarts: 0, lastCrash: null };
}

/** A message for the user that stays until dismissed (e.g. settings were reset). */
export interface Notice {
  id: string;
  level: 'info' | 'warning' | 'error';
  message: string;
}

export interface AppState {
  version: string;
  training: TrainingState;
  power: { onBattery: boolean; batteryPercent: number | null; thermal: ThermalState; idleSeconds: number; decision: PowerDecision; pause: UserPause | null };
  wallet: WalletInfo | null;
  /** Why there is no wallet or it cannot be opened (e.g. no keyring and no consent); null otherwise. */
  walletProblem: string | null;
  /** How a key written now would be kept: 'plaintext' where there is no keyring (a wallet then needs Settings.allowPlaintextKey). */
  keyStorage: 'os' | 'plaintext';
  settings: Settings;
  hardware: HardwareReport | null;
  updater: UpdaterState;
  notices: Notice[];
}

// ---- calls ----

const none = z.tuple([]);
const one = <T extends z.ZodType>(t: T) => z.tuple([t]);

/**
 * Every call: its arguments as a zod tuple (checked by main before anything runs) and its result
 * type. Results cross as { ok, value } / { ok: false, error } (bridgeResult) so that the renderer
 * sees the controller's own message, not the transport's wrapping.
 */
export const CALLS = {
  'state:get': { args: none, result: {} as AppState },
  'training:start': { args: none, result: {} as AppState },
  'training:stop': { args: none, result: {} as AppState },
  'training:pause': { args: one(z.union([z.object({ minutes: z.number().int().min(1).max(7 * 24 * 60) }).strict(), z.object({ untilAc: z.literal(true) }).strict()])), result: {} as AppState },
  'training:resume': { args: none, result: {} as AppState },
  /** A new hotkey; its mnemonic is returned this once for the backup step. */
  'wallet:create': { args: none, result: {} as { wallet: WalletInfo; mnemonic: string } },
  'wallet:import': { args: one(MnemonicArgSchema), result: {} as WalletInfo },
  'wallet:set-payout': { args: one(PayoutArgSchema), result: {} as WalletInfo },
  'wallet:reveal-mnemonic': { args: none, result: {} as { mnemonic: string } },
  'wallet:confirm-backup': { args: none, result: {} as WalletInfo },
  /** Writes the hotkey file (the `tah wallet` / btcli format) where the user chooses; null: cancelled. */
  'wallet:export': { args: none, result: {} as { path: string } | null },
  'settings:update': { args: one(SettingsPatchSchema), result: {} as Settings },
  'hardware:check': { args: none, result: {} as HardwareReport },
  'earnings:get': { args: none, result: {} as MinerRewards | null },
  /** The swarm at a glance (the orchestrator's public dashboard of the run this app joins). */
  'network:get': { args: none, result: {} as Dashboard },
  /** The newest lines of the app's and the worker's logs, redacted, oldest first. */
  'logs:recent': { args: none, result: {} as { lines: string[] } },
  /** Writes one file with logs, redacted settings and a system report; null: cancelled. */
  'diagnostics:export': { args: none, result: {} as { path: string } | null },
  'notice:dismiss': { args: one(z.string().max(100)), result: {} as AppState },
  /** Checks for an update now; the state once the check is done (a download goes on in the background). */
  'updater:check': { args: none, result: {} as UpdaterState },
  /**
   * "Restart to update". Throws while training unless confirmTraining (the user agreed to stop
   * it); then training stops first, its work finished or handed back, and the app restarts.
   */
  'updater:install': { args: one(z.object({ confirmTraining: z.boolean() }).strict()), result: {} as AppState },
} as const satisfies Record<Channel, { args: z.ZodTuple; result: unknown }>;

export type CallArgs<C extends Channel> = z.infer<(typeof CALLS)[C]['args']>;
export type CallResult<C extends Channel> = (typeof CALLS)[C]['result'];

export type BridgeResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** The API the preload exposes as window.tah, and the browser host's client offers too. */
export interface Bridge {
  call<C extends Channel>(channel: C, ...args: CallArgs<C>): Promise<CallResult<C>>;
  /** Calls `listener` with every new state; returns the unsubscribe function. */
  onState(listener: (state: AppState) => void): () => void;
}

/** Checks a call's channel and arguments as they arrive from the renderer; throws a clear error. */
export function parseCall(channel: unknown, args: unknown): { channel: Channel; args: unknown[] } {
  if (typeof channel !== 'string' || !Object.hasOwn(CALLS, channel)) throw new Error(`unknown call ${JSON.stringify(channel)}`);
  const c = channel as Channel;
  if (!Array.isArray(args)) throw new Error(`${c}: the arguments must be a list`);
  const expected = CALLS[c].args.def.items.length;
  if (args.length !== expected) throw new Error(`${c}: takes ${expected === 0 ? 'no argument' : 'one argument'}, got ${args.length}`);
  const parsed = CALLS[c].args.safeParse(args);
  if (!parsed.success) {
    // The path's first element is the argument's index, which says nothing to the reader.
    const where = (path: PropertyKey[]) => path.slice(1).map(String).join('.');
    throw new Error(`${c}: ${parsed.error.issues.map((i) => (where(i.path) ? `${where(i.path)}: ${i.message}` : i.message)).join('; ')}`);
  }
  return { channel: c, args: parsed.data as unknown[] };
}
