// The battery's charge and power source, as Linux's sysfs and macOS's pmset report them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batteryFromPmset, batteryFromSysfs, polledPower } from '../../../electron/core/battery.ts';

test('sysfs: a laptop on mains, on battery, a desktop, and a battery without a mains supply file', () => {
  const bat = (capacity: string, status: string) => ({ type: 'Battery\n', capacity: `${capacity}\n`, status: `${status}\n` });
  assert.deepEqual(batteryFromSysfs([{ type: 'Mains\n', online: '1\n' }, bat('76', 'Charging')]), { onBattery: false, percent: 76 });
  assert.deepEqual(batteryFromSysfs([{ type: 'Mains\n', online: '0\n' }, bat('41', 'Discharging')]), { onBattery: true, percent: 41 });
  assert.deepEqual(batteryFromSysfs([{ type: 'Mains', online: '0' }, bat('40', 'Discharging'), bat('60', 'Discharging')]), { onBattery: true, percent: 50 });
  assert.deepEqual(batteryFromSysfs([{ type: 'Mains', online: '1' }]), { onBattery: false, percent: null });
  assert.deepEqual(batteryFromSysfs([]), { onBattery: null, percent: null });
  assert.deepEqual(batteryFromSysfs([bat('30', 'Discharging')]), { onBattery: true, percent: 30 });
  assert.deepEqual(batteryFromSysfs([bat('garbage', 'Full')]), { onBattery: false, percent: null });
});

test('pmset: battery power, AC power, and a Mac without a battery', () => {
  assert.deepEqual(batteryFromPmset("Now drawing from 'Battery Power'\n -InternalBattery-0 (id=4653155)\t85%; discharging; 5:12 remaining present: true\n"), { onBattery: true, percent: 85 });
  assert.deepEqual(batteryFromPmset("Now drawing from 'AC Power'\n -InternalBattery-0 (id=4653155)\t100%; charged; 0:00 remaining present: true\n"), { onBattery: false, percent: 100 });
  assert.deepEqual(batteryFromPmset("Now drawing from 'AC Power'\n"), { onBattery: false, percent: null });
  assert.deepEqual(batteryFromPmset(''), { onBattery: null, percent: null });
});

test('the polled power source reports a change when the battery reading changes', async () => {
  const readings = [{ onBattery: false, percent: 90 }, { onBattery: true, percent: 89 }];
  let i = 0;
  const source = polledPower({ read: async () => readings[Math.min(i++, 1)], pollMs: 5 });
  try {
    // The first reading differs from "unknown", the second from the first; then nothing changes.
    // The source's own timer does not keep a process alive (an app's poll must not); this deadline does.
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error('no second change within 5 s')), 5_000);
      let n = 0;
      source.subscribe(() => {
        if (++n === 2) {
          clearTimeout(deadline);
          resolve();
        }
      });
    });
    assert.deepEqual(source.read(), { onBattery: true, batteryPercent: 89, thermal: 'unknown', idleSeconds: 0 });
  } finally {
    source.stop();
  }
});
