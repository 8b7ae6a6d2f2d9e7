// The battery's charge, which Electron does not report to the main process: read from Linux's
// sysfs or macOS's `pmset -g batt`. Also the browser host's whole power source, since plain Node
// has no powerMonitor.
import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PowerSnapshot, PowerSource } from './app.ts';

export interface BatteryReading {
  /** On battery power; null when it cannot be told (e.g. a desktop without power-supply files). */
  onBattery: boolean | null;
  /** 0–100, or null without a battery. */
  percent: number | null;
}

/** From /sys/class/power_supply/<name>/{type,online,capacity,status}, one record per supply. */
export function batteryFromSysfs(supplies: { type?: string; online?: string; capacity?: string; status?: string }[]): BatteryReading {
  const mains = supplies.filter((s) => s.type?.trim() === 'Mains' || s.type?.trim() === 'USB');
  const batteries = supplies.filter((s) => s.type?.trim() === 'Battery');
  if (batteries.length === 0) return { onBattery: mains.length ? false : null, percent: null };
  const percents = batteries.map((b) => Number(b.capacity)).filter((n) => Number.isFinite(n) && n >= 0 && n <= 100);
  const percent = percents.length ? Math.round(percents.reduce((a, b) => a + b, 0) / percents.length) : null;
  const pluggedIn = mains.some((m) => m.online?.trim() === '1');
  const discharging = batteries.some((b) => b.status?.trim() === 'Discharging');
  return { onBattery: mains.length ? !pluggedIn : discharging, percent };
}

/** From `pmset -g batt`: "Now drawing from 'Battery Power'" and " -InternalBattery-0 (id=…)	85%; discharging; …". */
export function batteryFromPmset(text: string): BatteryReading {
  const source = /drawing from '([^']+)'/.exec(text)?.[1];
  const percent = /\t(\d{1,3})%;/.exec(text)?.[1];
  return { onBattery: source === undefined ? null : source === 'Battery Power', percent: percent === undefined ? null : Math.min(100, Number(percent)) };
}

export async function readBattery(platform: NodeJS.Platform = process.platform): Promise<BatteryReading> {
  try {
    if (platform === 'darwin') return batteryFromPmset((await promisify(execFile)('pmset', ['-g', 'batt'], { timeout: 3000 })).stdout);
    if (platform === 'linux') {
      const root = '/sys/class/power_supply';
      const names = await readdir(root).catch(() => [] as string[]);
      const read = (n: string, f: string) => readFile(join(root, n, f), 'utf8').catch(() => undefined);
      return batteryFromSysfs(await Promise.all(names.map(async (n) => ({ type: await read(n, 'type'), online: await read(n, 'online'), capacity: await read(n, 'capacity'), status: await read(n, 'status') }))));
    }
  } catch {
    // unknown, below
  }
  return { onBattery: null, percent: null };
}

/**
 * A power source for plain Node (the browser host): the battery, polled. Node cannot see idle
 * time, sleep or the thermal state, so those read as "in use", "awake" and unknown.
 */
export function polledPower(opts: { read?: () => Promise<BatteryReading>; pollMs?: number } = {}): PowerSource & { stop(): void } {
  let last: BatteryReading = { onBattery: null, percent: null };
  const listeners = new Set<(e: 'change') => void>();
  const poll = async () => {
    const next = await (opts.read ?? readBattery)();
    const changed = next.onBattery !== last.onBattery || next.percent !== last.percent;
    last = next;
    if (changed) for (const l of listeners) l('change');
  };
  void poll();
  const timer = setInterval(() => void poll(), opts.pollMs ?? 10_000);
  timer.unref();
  return {
    read: (): PowerSnapshot => ({ onBattery: last.onBattery ?? false, batteryPercent: last.percent, thermal: 'unknown', idleSeconds: 0 }),
    subscribe: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    stop: () => clearInterval(timer),
  };
}
