// The updater's state machine: every state against every event, the download's percentage, a
// downloaded update surviving a failed re-check, and when installing (a restart) is allowed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TrainingStatus, UpdaterState } from '../../../electron/ipc-contract.ts';
import { initialUpdaterState, mayInstallNow, nextUpdaterState, type UpdaterEvent } from '../../../electron/core/updater-state.ts';

const STATES: Record<UpdaterState['status'], UpdaterState> = {
  idle: { status: 'idle', lastChecked: 100 },
  checking: { status: 'checking' },
  available: { status: 'available', version: '1.2.0' },
  downloading: { status: 'downloading', version: '1.2.0', percent: 40 },
  ready: { status: 'ready', version: '1.2.0' },
  error: { status: 'error', message: 'offline' },
};

const EVENTS: Record<UpdaterEvent['type'], UpdaterEvent> = {
  check: { type: 'check' },
  'not-available': { type: 'not-available', at: 200 },
  available: { type: 'available', version: '1.3.0' },
  progress: { type: 'progress', percent: 55 },
  downloaded: { type: 'downloaded', version: '1.3.0' },
  error: { type: 'error', message: 'server said 500' },
};

// The next status for each state (rows) and event (columns); "same" = the very same state object back.
type Next = UpdaterState['status'] | 'same';
const TABLE: Record<UpdaterState['status'], Record<UpdaterEvent['type'], Next>> = {
  idle: { check: 'checking', 'not-available': 'same', available: 'same', progress: 'same', downloaded: 'same', error: 'error' },
  checking: { check: 'same', 'not-available': 'idle', available: 'available', progress: 'same', downloaded: 'same', error: 'error' },
  available: { check: 'checking', 'not-available': 'same', available: 'same', progress: 'downloading', downloaded: 'ready', error: 'error' },
  downloading: { check: 'same', 'not-available': 'same', available: 'same', progress: 'downloading', downloaded: 'ready', error: 'error' },
  ready: { check: 'same', 'not-available': 'same', available: 'same', progress: 'same', downloaded: 'same', error: 'same' },
  error: { check: 'checking', 'not-available': 'same', available: 'same', progress: 'same', downloaded: 'same', error: 'error' },
};

for (const [from, row] of Object.entries(TABLE) as [UpdaterState['status'], Record<UpdaterEvent['type'], Next>][]) {
  for (const [type, want] of Object.entries(row) as [UpdaterEvent['type'], Next][]) {
    test(`updater: ${from} + ${type} → ${want}`, () => {
      const state = structuredClone(STATES[from]);
      const before = structuredClone(state);
      const next = nextUpdaterState(state, EVENTS[type]);
      assert.deepEqual(state, before, 'the old state is not mutated');
      if (want === 'same') assert.equal(next, state);
      else assert.equal(next.status, want);
    });
  }
}

test('updater: what each transition carries', () => {
  assert.deepEqual(initialUpdaterState, { status: 'idle', lastChecked: null });
  assert.deepEqual(nextUpdaterState(STATES.checking, EVENTS['not-available']), { status: 'idle', lastChecked: 200 });
  assert.deepEqual(nextUpdaterState(STATES.checking, EVENTS.available), { status: 'available', version: '1.3.0' });
  assert.deepEqual(nextUpdaterState(STATES.available, EVENTS.progress), { status: 'downloading', version: '1.2.0', percent: 55 });
  assert.deepEqual(nextUpdaterState(STATES.downloading, EVENTS.downloaded), { status: 'ready', version: '1.3.0' });
  assert.deepEqual(nextUpdaterState(STATES.downloading, EVENTS.error), { status: 'error', message: 'server said 500' });
});

test('updater: a whole check, download and install cycle', () => {
  const events: UpdaterEvent[] = [
    { type: 'check' },
    { type: 'available', version: '2.0.0' },
    { type: 'progress', percent: 10 },
    { type: 'progress', percent: 90 },
    { type: 'downloaded', version: '2.0.0' },
    { type: 'check' }, // a scheduled re-check while ready changes nothing
    { type: 'error', message: 'network down' },
  ];
  const seen = [];
  let s = initialUpdaterState;
  for (const e of events) seen.push((s = nextUpdaterState(s, e)).status);
  assert.deepEqual(seen, ['checking', 'available', 'downloading', 'downloading', 'ready', 'ready', 'ready']);
  assert.deepEqual(s, { status: 'ready', version: '2.0.0' });
});

test('updater: the flows electron/core/updater.ts produces, each to its end state', () => {
  const run = (events: UpdaterEvent[]) => {
    const seen: UpdaterState['status'][] = [];
    let s = initialUpdaterState;
    for (const e of events) seen.push((s = nextUpdaterState(s, e)).status);
    return { seen, end: s };
  };
  const check: UpdaterEvent = { type: 'check' };
  // Up to date, or outside a staged rollout: idle, with the time of the check.
  assert.deepEqual(run([check, { type: 'not-available', at: 300 }]).end, { status: 'idle', lastChecked: 300 });
  // Metadata refused at the check: an error straight from checking, never 'available'.
  assert.deepEqual(run([check, { type: 'error', message: 'not valid' }]).seen, ['checking', 'error']);
  // A damaged download: the error replaces the progress, and nothing is ever ready.
  const damaged = run([check, { type: 'available', version: '2.0.0' }, { type: 'progress', percent: 100 }, { type: 'error', message: 'damaged' }]);
  assert.deepEqual(damaged.seen, ['checking', 'available', 'downloading', 'error']);
  // No server, then the next scheduled check finds and downloads the update.
  const retried = run([check, { type: 'error', message: 'offline' }, check, { type: 'available', version: '2.0.0' }, { type: 'downloaded', version: '2.0.0' }]);
  assert.deepEqual(retried.seen, ['checking', 'error', 'checking', 'available', 'ready']);
  assert.deepEqual(retried.end, { status: 'ready', version: '2.0.0' });
});

test('updater: the download percentage is clamped to 0–100, and NaN keeps the last one', () => {
  const cases: [UpdaterState, number, number][] = [
    [STATES.downloading, 55.5, 55.5],
    [STATES.downloading, -3, 0],
    [STATES.downloading, 140, 100],
    [STATES.downloading, Infinity, 100],
    [STATES.downloading, -Infinity, 0],
    [STATES.downloading, NaN, 40],
    [STATES.available, NaN, 0], // no previous figure: 0
    [STATES.available, 250, 100],
  ];
  for (const [state, percent, want] of cases) {
    const next = nextUpdaterState(state, { type: 'progress', percent });
    assert.equal(next.status, 'downloading');
    assert.equal(next.status === 'downloading' && next.percent, want, `${state.status} + ${percent}`);
  }
});

test('mayInstallNow: only with an update ready, and never under a running training', () => {
  const statuses: [TrainingStatus, boolean][] = [
    ['stopped', true],
    ['paused', true],
    ['error', true],
    ['training', false],
    ['starting', false],
    ['stopping', false],
    ['restarting', false],
  ];
  for (const [training, ok] of statuses) {
    const r = mayInstallNow(STATES.ready, training);
    assert.equal(r.ok, ok, training);
    if (!r.ok) assert.match(r.message, /stop training/i);
  }
  for (const state of Object.values(STATES)) {
    if (state.status === 'ready') continue;
    const r = mayInstallNow(state, 'stopped');
    assert.equal(r.ok, false, state.status);
  }
});
