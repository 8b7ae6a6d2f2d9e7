// `tah bench orchestrator` as a user runs it: a real orchestrator child process, a few simulated
// miners for a few seconds, and a --json summary with the round-trip figures. No timing
// assertions beyond "it made progress": the numbers depend on the machine.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jsonLines, runTah, show, tempDir } from './run-tah.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
before(async () => {
  ({ dir, cleanup } = await tempDir('bench-orch'));
});
after(() => cleanup());

test('bench orchestrator --json ends with a summary of round trips per second and latency, without errors', async () => {
  const r = await runTah(['bench', 'orchestrator', '--miners', '20', '--seconds', '3', '--json'], { cwd: dir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, show(r));
  const lines = jsonLines(r.stdout);
  const last = lines[lines.length - 1];
  assert.equal(last.summary, true, show(r));
  assert.equal(last.ok, true, show(r));
  for (const k of ['round_trips_per_s', 'p50_ms', 'p99_ms', 'requests_per_s']) assert.equal(typeof last[k], 'number', `${k}: ${show(r)}`);
  assert.ok((last.round_trips_per_s as number) > 0, show(r));
  assert.ok((last.p50_ms as number) <= (last.p99_ms as number), show(r));
  assert.equal(last.error_count, 0, show(r));
  assert.deepEqual(last.errors, {}, show(r));
  assert.deepEqual(last.miners_per_stage, [5, 5, 5, 5]);
  const machine = last.machine as { cores: unknown; node: unknown; loadavg_after: unknown };
  assert.equal(typeof machine.cores, 'number');
  assert.equal(machine.node, process.version);
  assert.ok(Array.isArray(machine.loadavg_after));
  assert.ok(lines.some((l) => l.event === 'orchestrator' && typeof l.url === 'string'), 'the orchestrator child reported where it listens');
  assert.ok(lines.some((l) => l.event === 'interval'), 'progress events once a second');
});
