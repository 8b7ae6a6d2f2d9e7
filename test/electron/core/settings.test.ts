// The settings file: defaults, saving, refusing bad changes, and surviving a damaged file.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Settings, SettingsSchema } from '../../../electron/ipc-contract.ts';
import { MAX_SETTINGS_BYTES, SettingsStore, defaultSettings } from '../../../electron/core/settings.ts';

const root = await mkdtemp(join(tmpdir(), 'tah-settings-'));
after(() => rm(root, { recursive: true, force: true }));

let n = 0;
/** A fresh folder per test; the settings file inside it does not exist yet. */
const fresh = (): string => join(root, `case-${++n}`, 'settings.json');
const env = {}; // no TAH_ORCHESTRATOR
const readJson = async (p: string): Promise<unknown> => JSON.parse(await readFile(p, 'utf8'));

test('defaults: the local swarm unless TAH_ORCHESTRATOR says otherwise, and all valid', () => {
  const d = defaultSettings({});
  assert.deepEqual(d, {
    orchestratorUrl: 'http://127.0.0.1:8080',
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
  });
  assert.ok(SettingsSchema.safeParse(d).success);
  assert.equal(defaultSettings({ TAH_ORCHESTRATOR: 'https://swarm.example.org' }).orchestratorUrl, 'https://swarm.example.org');
  assert.equal(defaultSettings({ TAH_ORCHESTRATOR: 'not a url' }).orchestratorUrl, 'http://127.0.0.1:8080', 'an unusable variable is ignored');
});

test('a missing file gives the defaults and is not written until something changes', async () => {
  const path = fresh();
  const { store, notice } = await SettingsStore.open(path, { env });
  assert.equal(notice, null);
  assert.deepEqual(store.get(), defaultSettings({}));
  await assert.rejects(stat(path), { code: 'ENOENT' });
});

test('changes are saved (0600, parents created) and read back by the next open', async () => {
  const path = fresh();
  const { store } = await SettingsStore.open(path, { env });
  const seen: Settings[] = [];
  const off = store.onChange((s) => seen.push(s));
  const saved = await store.update({ orchestratorUrl: '  https://swarm.example.org ', threads: 6, onboarded: true });
  assert.equal(saved.orchestratorUrl, 'https://swarm.example.org', 'trimmed by the schema');
  assert.equal(saved.threads, 6);
  assert.deepEqual(store.get(), saved);
  assert.deepEqual(await readJson(path), saved);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.deepEqual(seen, [saved]);

  off();
  await store.update({ useGpu: false });
  assert.equal(seen.length, 1, 'unsubscribed listeners hear nothing');

  const again = await SettingsStore.open(path, { env });
  assert.equal(again.notice, null);
  assert.deepEqual(again.store.get(), { ...saved, useGpu: false });
});

test('get() hands out a copy', async () => {
  const { store } = await SettingsStore.open(fresh(), { env });
  store.get().threads = 99;
  assert.equal(store.get().threads, null);
});

test('a bad change is refused with each bad field named, and nothing changes', async () => {
  const path = fresh();
  const { store } = await SettingsStore.open(path, { env });
  await store.update({ idleMinutes: 10 });
  const before = await readFile(path);
  let heard = 0;
  store.onChange(() => heard++);

  await assert.rejects(store.update({ orchestratorUrl: 'ftp://x', threads: 0, idleMinutes: 30 }), (e: Error) => {
    assert.match(e.message, /orchestratorUrl: an http:\/\/ or https:\/\/ address/);
    assert.match(e.message, /threads: /);
    assert.doesNotMatch(e.message, /idleMinutes/, 'only the bad fields are named');
    return true;
  });
  await assert.rejects(store.update({ colour: 'red' }), /colour/, 'unknown keys are refused');
  await assert.rejects(store.update('everything'), /not saved/);
  await assert.rejects(store.update(null), /not saved/);

  assert.deepEqual(await readFile(path), before, 'the file is untouched');
  assert.equal(store.get().idleMinutes, 10, 'memory is untouched');
  assert.equal(store.get().orchestratorUrl, 'http://127.0.0.1:8080');
  assert.equal(heard, 0);
});

test('`undefined` in a patch means "no change"', async () => {
  const { store } = await SettingsStore.open(fresh(), { env });
  await store.update({ runId: 'run-7' });
  const s = await store.update({ runId: undefined, autoStart: true });
  assert.equal(s.runId, 'run-7');
  assert.equal(s.autoStart, true);
});

test('an older file missing newer keys is merged over the defaults; unknown keys are dropped', async () => {
  const path = fresh();
  const { store: s0 } = await SettingsStore.open(path, { env });
  await s0.update({ threads: 3 }); // creates the folder
  await writeFile(path, JSON.stringify({ orchestratorUrl: 'https://old.example.org', threads: 2, retiredOption: 'x' }));
  const { store, notice } = await SettingsStore.open(path, { env });
  assert.equal(notice, null);
  assert.deepEqual(store.get(), { ...defaultSettings({}), orchestratorUrl: 'https://old.example.org', threads: 2 });
  assert.ok(!('retiredOption' in store.get()));
  assert.deepEqual((await readdir(join(path, '..'))).sort(), ['settings.json'], 'no backup was made');
});

const damaged: [string, Buffer][] = [
  ['garbage bytes', Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x22, 0x9c, 0x01])],
  ['wrong types', Buffer.from(JSON.stringify({ ...defaultSettings({}), threads: 'many', useGpu: 'yes' }))],
  ['JSON that is not an object', Buffer.from('[1, 2, 3]')],
  ['an empty file', Buffer.alloc(0)],
  // Valid settings but padded past the limit: refused for its size alone.
  ['a huge file', Buffer.from(JSON.stringify({ ...defaultSettings({}), pad: 'x'.repeat(MAX_SETTINGS_BYTES) }))],
];

for (const [what, bytes] of damaged) {
  test(`a damaged file (${what}) is kept aside, the defaults are used and saved, with a notice`, async () => {
    const path = fresh();
    const { store: s0 } = await SettingsStore.open(path, { env });
    await s0.update({ threads: 3 });
    await writeFile(path, bytes);
    const at = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

    const { store, notice } = await SettingsStore.open(path, { env, now: () => at });

    const backup = `${path}.corrupt-2025-01-02T03-04-05.678Z`;
    assert.deepEqual(await readFile(backup), bytes, 'the backup holds the original bytes');
    assert.deepEqual(store.get(), defaultSettings({}));
    assert.deepEqual(await readJson(path), defaultSettings({}), 'the defaults are written');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.ok(notice);
    assert.equal(notice.id, 'settings-reset');
    assert.equal(notice.level, 'warning');
    assert.match(notice.message, /damaged/);
    assert.match(notice.message, /default/);
    assert.ok(notice.message.includes(backup), notice.message);
  });
}

test('a second reset in the same millisecond keeps the first backup', async () => {
  const path = fresh();
  const { store: s0 } = await SettingsStore.open(path, { env });
  await s0.update({ threads: 3 });
  const now = (): number => 0;
  await writeFile(path, 'first');
  await SettingsStore.open(path, { env, now });
  await writeFile(path, 'second');
  const { notice } = await SettingsStore.open(path, { env, now });
  const stamp = '1970-01-01T00-00-00.000Z';
  assert.equal(await readFile(`${path}.corrupt-${stamp}`, 'utf8'), 'first');
  assert.equal(await readFile(`${path}.corrupt-${stamp}-1`, 'utf8'), 'second');
  assert.ok(notice?.message.includes(`${stamp}-1`));
});

test('writes leave no temporary files behind', async () => {
  const path = fresh();
  const { store } = await SettingsStore.open(path, { env });
  for (let i = 1; i <= 5; i++) await store.update({ threads: i });
  assert.deepEqual(await readdir(join(path, '..')), ['settings.json']);
});

test('concurrent updates all apply, in order, and the file ends equal to memory', async () => {
  const path = fresh();
  const { store } = await SettingsStore.open(path, { env });
  const seen: number[] = [];
  store.onChange((s) => seen.push(s.idleMinutes));
  // Started together, without awaiting: each must build on the one before.
  const results = await Promise.all([
    store.update({ idleMinutes: 1 }),
    store.update({ threads: 4 }),
    store.update({ idleMinutes: 2, useGpu: false }),
    store.update({ threads: -1 }).catch((e: Error) => e), // refused; must not break the chain
    store.update({ idleMinutes: 3 }),
    store.update({ runOnBattery: true }),
  ]);
  assert.ok(results[3] instanceof Error);
  assert.deepEqual(seen, [1, 1, 2, 3, 3], 'listeners hear every saved change, in order');
  const last = store.get();
  assert.deepEqual({ idleMinutes: last.idleMinutes, threads: last.threads, useGpu: last.useGpu, runOnBattery: last.runOnBattery }, { idleMinutes: 3, threads: 4, useGpu: false, runOnBattery: true });
  assert.deepEqual(results[5], last);
  assert.deepEqual(await readJson(path), last);
  assert.deepEqual(await readdir(join(path, '..')), ['settings.json']);
});

test('a failed write changes nothing in memory, and later updates still work', async () => {
  const dir = join(root, 'blocked');
  const path = join(dir, 'settings.json');
  const { store } = await SettingsStore.open(path, { env });
  // A file where the settings folder should be: creating the folder, and so the write, fails.
  await writeFile(dir, 'in the way');
  await assert.rejects(store.update({ threads: 2 }));
  assert.equal(store.get().threads, null);
  await rm(dir);
  assert.equal((await store.update({ threads: 3 })).threads, 3, 'the failure did not jam later updates');
  assert.deepEqual(await readJson(path), store.get());
});
