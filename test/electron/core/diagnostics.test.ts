// The diagnostics report: what goes in, and that no wallet secret can.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LOG_TAIL_BYTES, exportDiagnostics } from '../../../electron/core/diagnostics.ts';
import { judgeHardware } from '../../../electron/core/hardware.ts';
import { defaultSettings } from '../../../electron/core/settings.ts';

const root = await mkdtemp(join(tmpdir(), 'tah-diagnostics-'));
after(() => rm(root, { recursive: true, force: true }));

const SEED_HEX = 'e5be9a5092b81bca64be81d212e7f2f9eba183bb7a797fbbe5c4a2ba3d1a4a47'; // 64 hex digits
const MNEMONIC = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
const settings = { ...defaultSettings({}), orchestratorUrl: 'https://alice:hunter2@swarm.example.org', runId: 'run-3' };
const hardware = judgeHardware({ platform: 'linux', arch: 'x64', cpuModel: 'Test CPU', cores: 4, memoryBytes: 16 * 2 ** 30, freeDiskBytes: 50 * 2 ** 30, gpus: [] });
const at = Date.UTC(2025, 4, 6, 7, 8, 9);

let n = 0;
const folder = async (): Promise<string> => {
  const dir = join(root, `case-${++n}`);
  await mkdir(dir);
  return dir;
};

test('the report holds versions, the system, hardware, settings, state and the logs; no planted secret', async () => {
  const dir = await folder();
  const mainLog = join(dir, 'main.log');
  await writeFile(
    mainLog,
    [
      '[2025-05-06T07:00:00.000Z] [info]  app started',
      `[2025-05-06T07:00:01.000Z] [info]  (worker) start {"seedHex":"${SEED_HEX}"}`,
      `[2025-05-06T07:00:02.000Z] [warn]  imported phrase ${MNEMONIC}`,
      `[2025-05-06T07:00:03.000Z] [error] raw seed 0x${SEED_HEX} in a stack`,
      '[2025-05-06T07:00:04.000Z] [info]  training at 812 tokens/s',
      '',
    ].join('\n'),
  );
  const out = join(dir, 'report.json');
  const state = { training: { status: 'training', tokensPerS: 812 }, wallet: { address: '5Grw', secretPhrase: MNEMONIC }, note: `seed ${SEED_HEX}` };

  const written = await exportDiagnostics({ path: out, appVersion: '1.2.3', settings, state, hardware, logFiles: [mainLog, join(dir, 'main.old.log')], now: () => at });

  const text = await readFile(out, 'utf8');
  assert.deepEqual(written, { path: out, bytes: Buffer.byteLength(text) });
  assert.equal((await stat(out)).mode & 0o777, 0o600);
  assert.deepEqual((await readdir(dir)).sort(), ['main.log', 'report.json'], 'no temporary file left');

  for (const secret of [SEED_HEX, 'legal winner', 'hunter2']) assert.ok(!text.includes(secret), `${secret} leaked:\n${text}`);

  const r = JSON.parse(text);
  assert.equal(r.created, '2025-05-06T07:08:09.000Z');
  assert.equal(r.appVersion, '1.2.3');
  assert.equal(r.versions.node, process.versions.node);
  assert.equal(r.os.platform, process.platform);
  assert.ok(r.os.cpus.count >= 1 && r.os.memory.totalBytes > 0 && r.os.uptimeSeconds >= 0);
  assert.deepEqual(r.hardware, hardware);
  assert.deepEqual(r.settings, { ...settings, orchestratorUrl: 'https://***@swarm.example.org' }, 'settings kept, minus the URL password');
  assert.deepEqual(r.state, { training: { status: 'training', tokensPerS: 812 }, wallet: { address: '5Grw', secretPhrase: '[redacted]' }, note: 'seed [redacted]' });

  assert.equal(r.logs.length, 2);
  assert.equal(r.logs[0].path, mainLog);
  assert.equal(r.logs[0].truncated, false);
  assert.match(r.logs[0].text, /app started/);
  assert.match(r.logs[0].text, /training at 812 tokens\/s/);
  assert.match(r.logs[0].text, /\(worker\) start \{"seedHex":"\[redacted\]"\}/);
  assert.deepEqual(r.logs[1], { path: join(dir, 'main.old.log'), missing: true }, 'a missing log is noted');
});

test('only the last 2 MiB of a log go in, starting at a whole line', async () => {
  const dir = await folder();
  const big = join(dir, 'main.log');
  // The cut falls inside a seed: its tail alone (under 64 digits) must not survive as a fragment.
  const head = 'old line\n'.repeat(1000);
  const cutLine = `seed ${SEED_HEX}\n`;
  const tailLines = 'recent line\n'.repeat(Math.floor((LOG_TAIL_BYTES - 40) / 12)); // the last 40–51 bytes of the seed line fall inside
  const body = head + cutLine + tailLines;
  await writeFile(big, body);
  const cutAt = Buffer.byteLength(body) - LOG_TAIL_BYTES;
  assert.ok(cutAt > head.length + 5 && cutAt < head.length + cutLine.length - 30, 'the test cuts through the seed');

  const out = join(dir, 'report.json');
  await exportDiagnostics({ path: out, appVersion: '1', settings, state: null, hardware: null, logFiles: [big], now: () => at });
  const r = JSON.parse(await readFile(out, 'utf8'));
  assert.equal(r.logs[0].truncated, true);
  assert.ok(r.logs[0].text.startsWith('recent line\n'), r.logs[0].text.slice(0, 80));
  assert.ok(!r.logs[0].text.includes(SEED_HEX.slice(-20)));
  assert.ok(Buffer.byteLength(r.logs[0].text) <= LOG_TAIL_BYTES);
});

test('the last check reads the finished file: a key-like run there stops the export, no file at all', async () => {
  const dir = await folder();
  const out = join(dir, 'report.json');
  // 63 hex digits pass redaction (a key has 64), but JSON writes the form feed before them as
  // "\f", and that f makes 64: something only the finished text shows.
  const sneaky = `\f${SEED_HEX.slice(1)}`;
  assert.equal(sneaky.length, 64);
  assert.ok(JSON.stringify(sneaky).includes(`f${SEED_HEX.slice(1)}`));
  await assert.rejects(
    exportDiagnostics({ path: out, appVersion: '1', settings, state: { crash: sneaky }, hardware: null, logFiles: [], now: () => at }),
    /^Error: The diagnostics report was not saved because it still contained what looks like a secret key/,
  );
  await assert.rejects(stat(out), { code: 'ENOENT' });
  assert.deepEqual(await readdir(dir), [], 'not even a temporary file');
});
