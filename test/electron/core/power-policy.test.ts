// The power policy: which reason pauses training, in which order, with which words; and how many
// threads the training gets. A table of the cases that matter, then a sweep over every combination
// of the inputs checking the invariants the rest of the app relies on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PauseReason, PowerDecision, PowerInputs, ThermalState, UserPause } from '../../../electron/ipc-contract.ts';
import { THERMAL_STATES } from '../../../electron/ipc-contract.ts';
import { clockTime, decidePower, duration, isUserPause, threadsFor, userPauseExpired } from '../../../electron/core/power-policy.ts';

// Local time, so the expected clock reads the same in every time zone.
const NOW = new Date(2026, 0, 5, 13, 5).getTime();
const HOUR = 3_600_000;

function inputs(patch: Partial<Omit<PowerInputs, 'settings'>> & { settings?: Partial<PowerInputs['settings']> } = {}): PowerInputs {
  const { settings, ...rest } = patch;
  return {
    now: NOW,
    onBattery: false,
    batteryPercent: null,
    idleSeconds: 0,
    thermal: 'nominal',
    suspended: false,
    pause: null,
    ...rest,
    settings: { runOnBattery: false, minBatteryPercent: 20, onlyWhenIdle: false, idleMinutes: 5, ...settings },
  };
}

const active: UserPause = { kind: 'until', until: NOW + HOUR };
const expired: UserPause = { kind: 'until', until: NOW - 1 };
const untilAc: UserPause = { kind: 'until-ac' };
const onBatteryAllowed = { onBattery: true, batteryPercent: 80, settings: { runOnBattery: true } };

type Expect = { run: true; throttle: boolean } | PauseReason;

const CASES: [string, PowerInputs, Expect][] = [
  ['nothing in the way', inputs(), { run: true, throttle: false }],
  // suspended beats everything
  ['suspended', inputs({ suspended: true }), 'suspended'],
  ['suspended beats every other reason at once', inputs({ suspended: true, pause: active, thermal: 'critical', onBattery: true, batteryPercent: 1, idleSeconds: 0, settings: { onlyWhenIdle: true } }), 'suspended'],
  ['suspended beats until-ac', inputs({ suspended: true, pause: untilAc, onBattery: true }), 'suspended'],
  // user's timed pause
  ['timed pause running', inputs({ pause: active }), 'user'],
  ['timed pause ends exactly now', inputs({ pause: { kind: 'until', until: NOW } }), { run: true, throttle: false }],
  ['timed pause ran out', inputs({ pause: expired }), { run: true, throttle: false }],
  ['timed pause ran out: the next reason shows', inputs({ pause: expired, onBattery: true }), 'on-battery'],
  // until on AC
  ['until-ac on battery', inputs({ pause: untilAc, ...onBatteryAllowed }), 'until-ac'],
  ['until-ac on battery, battery not allowed anyway', inputs({ pause: untilAc, onBattery: true }), 'until-ac'],
  ['until-ac on AC no longer applies', inputs({ pause: untilAc }), { run: true, throttle: false }],
  // thermal
  ['thermal unknown', inputs({ thermal: 'unknown' }), { run: true, throttle: false }],
  ['thermal nominal', inputs({ thermal: 'nominal' }), { run: true, throttle: false }],
  ['thermal fair', inputs({ thermal: 'fair' }), { run: true, throttle: false }],
  ['thermal serious throttles', inputs({ thermal: 'serious' }), { run: true, throttle: true }],
  ['thermal critical', inputs({ thermal: 'critical' }), 'thermal'],
  // battery
  ['on battery, default settings', inputs({ onBattery: true, batteryPercent: 90 }), 'on-battery'],
  ['on battery, level unknown, default settings', inputs({ onBattery: true }), 'on-battery'],
  ['on battery allowed, level above the minimum', inputs(onBatteryAllowed), { run: true, throttle: false }],
  ['on battery allowed, level at the minimum', inputs({ ...onBatteryAllowed, batteryPercent: 20 }), { run: true, throttle: false }],
  ['on battery allowed, level below the minimum', inputs({ ...onBatteryAllowed, batteryPercent: 19 }), 'battery-low'],
  ['on battery allowed, level unknown', inputs({ ...onBatteryAllowed, batteryPercent: null }), { run: true, throttle: false }],
  ['low level but on AC (charging)', inputs({ batteryPercent: 5 }), { run: true, throttle: false }],
  ['minimum 0 never pauses', inputs({ ...onBatteryAllowed, batteryPercent: 0, settings: { runOnBattery: true, minBatteryPercent: 0 } }), { run: true, throttle: false }],
  // idle
  ['only when idle, in use', inputs({ idleSeconds: 10, settings: { onlyWhenIdle: true } }), 'not-idle'],
  ['only when idle, a second short', inputs({ idleSeconds: 299, settings: { onlyWhenIdle: true } }), 'not-idle'],
  ['only when idle, idle long enough', inputs({ idleSeconds: 300, settings: { onlyWhenIdle: true } }), { run: true, throttle: false }],
  ['idle not required, in use', inputs({ idleSeconds: 0 }), { run: true, throttle: false }],
  // priority between several reasons at once
  ['timed pause beats critical heat', inputs({ pause: active, thermal: 'critical' }), 'user'],
  ['timed pause beats on battery', inputs({ pause: active, onBattery: true }), 'user'],
  ['until-ac beats critical heat', inputs({ pause: untilAc, onBattery: true, thermal: 'critical' }), 'until-ac'],
  ['critical heat beats on battery', inputs({ thermal: 'critical', onBattery: true }), 'thermal'],
  ['critical heat beats battery low', inputs({ ...onBatteryAllowed, batteryPercent: 5, thermal: 'critical' }), 'thermal'],
  ['on battery beats battery low', inputs({ onBattery: true, batteryPercent: 5 }), 'on-battery'],
  ['on battery beats not idle', inputs({ onBattery: true, settings: { onlyWhenIdle: true } }), 'on-battery'],
  ['battery low beats not idle', inputs({ ...onBatteryAllowed, batteryPercent: 5, settings: { runOnBattery: true, onlyWhenIdle: true } }), 'battery-low'],
  ['not idle beats a warm machine', inputs({ thermal: 'serious', settings: { onlyWhenIdle: true } }), 'not-idle'],
  ['warm, on battery allowed, idle: runs throttled', inputs({ ...onBatteryAllowed, thermal: 'serious', idleSeconds: 600, settings: { runOnBattery: true, onlyWhenIdle: true } }), { run: true, throttle: true }],
];

for (const [name, input, expected] of CASES) {
  test(`decidePower: ${name}`, () => {
    const d = decidePower(input);
    if (typeof expected === 'string') {
      assert.equal(d.run, false, `expected a pause for ${expected}, got ${JSON.stringify(d)}`);
      assert.equal(d.reason, expected);
    } else {
      assert.deepEqual(d, expected);
    }
  });
}

test('decidePower: messages in plain words', () => {
  const message = (i: PowerInputs): string => {
    const d = decidePower(i);
    assert.equal(d.run, false);
    return d.message;
  };
  assert.equal(message(inputs({ onBattery: true })), 'Paused: this computer is on battery. Training resumes on mains power (change this in Settings).');
  assert.equal(message(inputs({ thermal: 'critical' })), 'Paused: the computer is hot; training resumes when it cools down.');
  assert.equal(message(inputs({ settings: { onlyWhenIdle: true } })), 'Paused: waiting until the computer has been idle for 5 minutes.');
  assert.equal(message(inputs({ settings: { onlyWhenIdle: true, idleMinutes: 1 } })), 'Paused: waiting until the computer has been idle for 1 minute.');
  assert.equal(message(inputs({ settings: { onlyWhenIdle: true, idleMinutes: 90 } })), 'Paused: waiting until the computer has been idle for 1 hour 30 minutes.');
  assert.equal(message(inputs({ pause: active })), 'Paused for 1 hour, until 14:05.');
  assert.equal(message(inputs({ pause: { kind: 'until', until: NOW + 20 * 60_000 } })), 'Paused for 20 minutes, until 13:25.');
  assert.match(message(inputs({ ...onBatteryAllowed, batteryPercent: 12.7 })), /battery is at 12%, below the 20% set in Settings/);
  assert.match(message(inputs({ pause: untilAc, onBattery: true })), /plugged in/);
  assert.match(message(inputs({ suspended: true })), /sleep/);
});

test('decidePower: a timed pause carries when it ends; no other pause does', () => {
  const d = decidePower(inputs({ pause: active }));
  assert.deepEqual(d, { run: false, reason: 'user', message: 'Paused for 1 hour, until 14:05.', until: NOW + HOUR });
  const other = decidePower(inputs({ onBattery: true }));
  assert.equal(other.run, false);
  assert.equal('until' in other, false);
});

test('clockTime and duration', () => {
  assert.equal(clockTime(new Date(2026, 5, 1, 9, 3).getTime()), '09:03');
  assert.equal(clockTime(new Date(2026, 5, 1, 0, 0).getTime()), '00:00');
  assert.equal(clockTime(new Date(2026, 5, 1, 23, 59, 59).getTime()), '23:59');
  const cases: [number, string][] = [
    [0, '1 minute'],
    [1, '1 minute'],
    [60_000, '1 minute'],
    [60_001, '2 minutes'],
    [45 * 60_000, '45 minutes'],
    [HOUR - 10, '1 hour'], // a pause just started reads as asked, not "59 minutes"
    [HOUR, '1 hour'],
    [90 * 60_000, '1 hour 30 minutes'],
    [2 * HOUR + 60_000, '2 hours 1 minute'],
    [24 * HOUR, '1 day'],
    [51 * HOUR + 4 * 60_000, '2 days 3 hours'],
    [7 * 24 * HOUR, '7 days'],
  ];
  for (const [ms, words] of cases) assert.equal(duration(ms), words, `${ms} ms`);
});

test('userPauseExpired', () => {
  const cases: [UserPause | null, number, boolean, boolean][] = [
    [null, NOW, false, false],
    [null, NOW, true, false],
    [active, NOW, false, false],
    [active, NOW + HOUR - 1, true, false],
    [active, NOW + HOUR, false, true],
    [active, NOW + 2 * HOUR, true, true],
    [untilAc, NOW, true, false],
    [untilAc, NOW, false, true],
  ];
  for (const [pause, now, onBattery, want] of cases) assert.equal(userPauseExpired(pause, now, onBattery), want, JSON.stringify({ pause, now: now - NOW, onBattery }));
});

test('isUserPause', () => {
  const all: PauseReason[] = ['user', 'until-ac', 'on-battery', 'battery-low', 'not-idle', 'thermal', 'suspended'];
  assert.deepEqual(all.filter(isUserPause), ['user', 'until-ac']);
  assert.equal(isUserPause(null), false);
});

// ---- every combination ----

// The rules as the spec states them, written independently of the implementation, in priority order.
const RULES: [PauseReason, (i: PowerInputs) => boolean][] = [
  ['suspended', (i) => i.suspended],
  ['user', (i) => i.pause?.kind === 'until' && i.now < i.pause.until],
  ['until-ac', (i) => i.pause?.kind === 'until-ac' && i.onBattery],
  ['thermal', (i) => i.thermal === 'critical'],
  ['on-battery', (i) => i.onBattery && !i.settings.runOnBattery],
  ['battery-low', (i) => i.onBattery && i.settings.runOnBattery && i.batteryPercent !== null && i.batteryPercent < i.settings.minBatteryPercent],
  ['not-idle', (i) => i.settings.onlyWhenIdle && i.idleSeconds < i.settings.idleMinutes * 60],
];

function* everyInput(): Generator<PowerInputs> {
  const bools = [false, true];
  const pauses: (UserPause | null)[] = [null, active, expired, untilAc];
  for (const suspended of bools)
    for (const onBattery of bools)
      for (const batteryPercent of [null, 0, 19, 20, 100])
        for (const idleSeconds of [0, 299, 300])
          for (const thermal of THERMAL_STATES as readonly ThermalState[])
            for (const pause of pauses)
              for (const runOnBattery of bools)
                for (const onlyWhenIdle of bools) yield inputs({ suspended, onBattery, batteryPercent, idleSeconds, thermal, pause, settings: { runOnBattery, onlyWhenIdle } });
}

test('decidePower: invariants over every combination of the inputs', () => {
  let count = 0;
  for (const i of everyInput()) {
    count++;
    const before = structuredClone(i);
    const d: PowerDecision = decidePower(i);
    const where = JSON.stringify(i);
    assert.deepEqual(i, before, `inputs mutated: ${where}`);
    assert.deepEqual(decidePower(i), d, `not deterministic: ${where}`);

    // The first rule that applies wins; none applies ⇒ run.
    const first = RULES.find(([, applies]) => applies(i))?.[0];
    if (first === undefined) assert.equal(d.run, true, where);
    else assert.equal(d.run === false && d.reason, first, where);

    if (i.suspended) assert.equal(d.run, false, where);
    if (d.run) {
      assert.equal(i.suspended, false, where);
      assert.notEqual(i.thermal, 'critical', where);
      assert.ok(i.pause === null || userPauseExpired(i.pause, i.now, i.onBattery), `ran under an active user pause: ${where}`);
      assert.ok(!i.onBattery || i.settings.runOnBattery, where);
      assert.ok(!i.settings.onlyWhenIdle || i.idleSeconds >= i.settings.idleMinutes * 60, where);
      assert.equal(d.throttle, i.thermal === 'serious', where);
    } else {
      assert.ok(d.message.length > 0 && !/undefined|NaN|null/.test(d.message), `message: ${d.message}`);
      assert.equal(d.until !== undefined, d.reason === 'user', where);
      if (d.until !== undefined) assert.ok(d.until > i.now, where);
      if (d.reason === 'until-ac' || d.reason === 'on-battery' || d.reason === 'battery-low') assert.equal(i.onBattery, true, where);
      if (d.reason === 'battery-low') assert.equal(i.settings.runOnBattery, true, where);
    }
  }
  assert.equal(count, 2 * 2 * 5 * 3 * 5 * 4 * 2 * 2);
});

// ---- threads ----

test('threadsFor', () => {
  const cases: [number | null, number, boolean, number][] = [
    [null, 8, false, 7], // all cores but one, for the user
    [null, 2, false, 1],
    [null, 1, false, 1],
    [null, 0, false, 1], // a container reporting no cores still gets one thread
    [null, 8, true, 3],
    [null, 2, true, 1],
    [4, 8, false, 4],
    [8, 8, false, 8],
    [16, 8, false, 8], // capped at the cores there are
    [16, 8, true, 4],
    [4, 8, true, 2],
    [3, 8, true, 1],
    [1, 8, true, 1],
    [1, 1, true, 1],
  ];
  for (const [setting, cores, throttle, want] of cases) assert.equal(threadsFor(setting, cores, throttle), want, JSON.stringify({ setting, cores, throttle }));
});

test('threadsFor: always between 1 and the cores there are', () => {
  for (let cores = 0; cores <= 33; cores++)
    for (const setting of [null, 1, 2, 3, 7, 8, 16, 64, 512])
      for (const throttle of [false, true]) {
        const n = threadsFor(setting, cores, throttle);
        assert.ok(Number.isInteger(n) && n >= 1 && n <= Math.max(1, cores), JSON.stringify({ setting, cores, throttle, n }));
        if (throttle) assert.ok(n <= Math.max(1, threadsFor(setting, cores, false)));
      }
});
