// When training may run on this computer, decided from what the OS reports (battery, idle time,
// heat, sleep) and what the user asked for. Pure: the caller reads the OS and the clock and passes
// them in, so every rule is testable without a machine to unplug.
import type { PauseReason, PowerDecision, PowerInputs, UserPause } from '../ipc-contract.ts';

/**
 * Whether to train now. The rules are checked in this order and the first that applies wins, so
 * the user sees the one reason that matters most (e.g. "going to sleep" rather than "on battery"):
 *   1. suspended        the system is going to sleep or asleep
 *   2. user             a timed pause the user asked for, still running
 *   3. until-ac         the user asked to pause until plugged in, and it is on battery
 *   4. thermal          the machine is critically hot
 *   5. on-battery       on battery, and the settings say not to train on battery
 *   6. battery-low      on battery, allowed, but below the settings' minimum level
 *   7. not-idle         the settings say train only when idle, and someone is using it
 * Otherwise run, at half the threads while the machine is warm ('serious').
 */
export function decidePower(inputs: PowerInputs): PowerDecision {
  const { now, onBattery, batteryPercent, idleSeconds, thermal, suspended, pause, settings } = inputs;

  if (suspended) return paused('suspended', 'Paused: the computer is going to sleep. Training resumes when it wakes up.');

  // An expired or no-longer-relevant user pause is ignored here; the caller clears it (userPauseExpired).
  if (pause?.kind === 'until' && now < pause.until) {
    return paused('user', `Paused for ${duration(pause.until - now)}, until ${clockTime(pause.until)}.`, pause.until);
  }
  if (pause?.kind === 'until-ac' && onBattery) return paused('until-ac', 'Paused until this computer is plugged in to mains power.');

  if (thermal === 'critical') return paused('thermal', 'Paused: the computer is hot; training resumes when it cools down.');

  if (onBattery && !settings.runOnBattery) {
    return paused('on-battery', 'Paused: this computer is on battery. Training resumes on mains power (change this in Settings).');
  }
  if (onBattery && batteryPercent !== null && batteryPercent < settings.minBatteryPercent) {
    return paused(
      'battery-low',
      `Paused: the battery is at ${Math.floor(batteryPercent)}%, below the ${settings.minBatteryPercent}% set in Settings. Training resumes when the computer is plugged in.`,
    );
  }

  if (settings.onlyWhenIdle && idleSeconds < settings.idleMinutes * 60) {
    return paused('not-idle', `Paused: waiting until the computer has been idle for ${duration(settings.idleMinutes * 60_000)}.`);
  }

  return { run: true, throttle: thermal === 'serious' };
}

/** The user's pause no longer applies and should be cleared: a timed pause that ran out, or "until plugged in" once plugged in. */
export function userPauseExpired(pause: UserPause | null, now: number, onBattery: boolean): boolean {
  if (pause === null) return false;
  return pause.kind === 'until' ? now >= pause.until : !onBattery;
}

/** Pauses the user asked for (and may end with Resume), as opposed to ones the computer's state imposes. */
export function isUserPause(reason: PauseReason | null): boolean {
  return reason === 'user' || reason === 'until-ac';
}

/**
 * CPU threads for the training. null (the default): all cores but one, so the computer stays
 * usable; a setting above the core count is capped (more threads than cores only adds switching);
 * throttled (warm machine): half, to let it cool. Always at least 1.
 */
export function threadsFor(settingsThreads: number | null, cores: number, throttle: boolean): number {
  const c = Math.max(1, Math.floor(cores)); // os.cpus() can report 0 in some containers
  const base = settingsThreads === null ? c - 1 : Math.min(Math.floor(settingsThreads), c);
  const n = throttle ? Math.floor(base / 2) : base;
  return Math.max(1, n);
}

/** HH:MM on the 24-hour clock in local time; built by hand so it looks the same in every locale. */
export function clockTime(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/**
 * A span in plain words: "1 minute", "45 minutes", "1 hour 30 minutes", "2 days 3 hours".
 * Rounded up to the minute, so a pause just started for an hour reads "1 hour", not "59 minutes".
 */
export function duration(ms: number): string {
  const minutes = Math.max(1, Math.ceil(ms / 60_000));
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  // Over a day, minutes are noise; the clock time next to it says exactly when.
  const parts = days > 0 ? [plural(days, 'day'), plural(hours, 'hour')] : [plural(hours, 'hour'), plural(mins, 'minute')];
  return parts.filter((p) => p !== '').join(' ');
}

function plural(n: number, unit: string): string {
  if (n === 0) return '';
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

function paused(reason: PauseReason, message: string, until?: number): PowerDecision {
  return until === undefined ? { run: false, reason, message } : { run: false, reason, message, until };
}
