// The power source and keep-awake of the app: Electron's powerMonitor (battery/AC, sleep, idle
// time, macOS thermal state) and powerSaveBlocker, plus the battery's charge read by battery.ts.
import { powerMonitor, powerSaveBlocker } from 'electron';
import type { KeepAwake, PowerSource } from '../core/app.ts';
import { type BatteryReading, readBattery } from '../core/battery.ts';

export function electronPower(): PowerSource {
  let battery: BatteryReading = { onBattery: null, percent: null };
  const listeners = new Set<(e: 'change' | 'suspend' | 'resume') => void>();
  const emit = (e: 'change' | 'suspend' | 'resume') => {
    for (const l of listeners) l(e);
  };
  const refresh = () =>
    void readBattery().then((b) => {
      const changed = b.percent !== battery.percent;
      battery = b;
      if (changed) emit('change');
    });
  refresh();
  setInterval(refresh, 60_000).unref();
  for (const event of ['on-ac', 'on-battery', 'thermal-state-change', 'speed-limit-change'] as const) {
    powerMonitor.on(event as 'on-ac', () => {
      refresh();
      emit('change');
    });
  }
  powerMonitor.on('suspend', () => emit('suspend'));
  powerMonitor.on('resume', () => emit('resume'));
  return {
    read: () => ({
      onBattery: powerMonitor.isOnBatteryPower(),
      batteryPercent: battery.percent,
      thermal: process.platform === 'darwin' ? powerMonitor.getCurrentThermalState() : 'unknown',
      idleSeconds: powerMonitor.getSystemIdleTime(),
    }),
    subscribe: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
}

/** Keeps the app from being suspended while it trains (the display may still sleep). */
export function electronKeepAwake(): KeepAwake {
  let id: number | null = null;
  return {
    start: () => {
      if (id === null) id = powerSaveBlocker.start('prevent-app-suspension');
    },
    stop: () => {
      if (id !== null) powerSaveBlocker.stop(id);
      id = null;
    },
  };
}
