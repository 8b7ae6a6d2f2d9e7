// `tah bench compression` as a user runs it (tiny preset, a few steps): the uncompressed model
// comes first, every configuration's bytes are those of the blobs a swarm would send, and the
// plot is written. Losses depend on the machine only through float summation order, so they are
// checked for sense, not for value.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { jsonLines, runTah, show, tempDir } from './run-tah.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
before(async () => {
  ({ dir, cleanup } = await tempDir('bench-compression'));
});
after(() => cleanup());

test('bench compression --json: the uncompressed peer first, exact bytes per configuration, the cost against the peer, a plot', { timeout: 120_000 }, async () => {
  const plot = join(dir, 'compression.svg');
  const r = await runTah(['bench', 'compression', '--preset', 'tiny', '--steps', '3', '--grid', 'b4:int4,int8/bf16', '--rows-per-sample', '2', '--eval-batches', '1', '--threads', '1', '--plot', plot, '--json'], { cwd: dir, timeoutMs: 110_000 });
  assert.equal(r.code, 0, show(r));
  const summary = jsonLines(r.stdout).at(-1)!;
  assert.equal(summary.summary, true);
  const results = summary.results as { config: string; activation_bytes_per_token: number; compression_ratio: number; heldout_loss: number; loss_cost_pct: number }[];
  assert.deepEqual(results.map((x) => x.config), ['f32', 'b4:int4', 'int8/bf16']);
  // Two 64-token sequences a sample: float32 is 64 channels × 4 bytes each way plus two headers;
  // int4 at 4 channels is 512 values each way, 256 bytes of codes and 16 float32 scales; int8 at
  // 64 channels is a byte a value and 8 bytes a row forward, bfloat16 backward.
  const headers = (perToken: number, data: number): number => perToken * 128 - data;
  for (const [x, data] of [[results[0], 2 * 128 * 64 * 4], [results[1], 2 * (256 + 64)], [results[2], 128 * 64 + 128 * 8 + 128 * 64 * 2]] as const) {
    const h = headers(x.activation_bytes_per_token, data);
    assert.ok(h > 2 * 8 && h < 2 * 300, `${x.config}: ${h} bytes of headers`);
    assert.ok(Math.abs(x.compression_ratio - 512 / x.activation_bytes_per_token) < 1e-3 * x.compression_ratio);
  }
  assert.equal(results[0].loss_cost_pct, 0);
  for (const x of results) assert.ok(x.heldout_loss > 3 && x.heldout_loss < 6, `${x.config}: ${x.heldout_loss}`);
  const cost = (100 * (results[1].heldout_loss - results[0].heldout_loss)) / results[0].heldout_loss;
  assert.ok(Math.abs(results[1].loss_cost_pct - cost) < 1e-3);
  assert.match(await readFile(plot, 'utf8'), /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
});

test('bench compression refuses a configuration it cannot read, and a bottleneck as wide as the model', async () => {
  const bad = await runTah(['bench', 'compression', '--preset', 'tiny', '--grid', 'b4:int3'], { cwd: dir, timeoutMs: 30_000 });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unknown codec 'int3'/);
  const wide = await runTah(['bench', 'compression', '--preset', 'tiny', '--steps', '1', '--grid', 'b64:int8'], { cwd: dir, timeoutMs: 30_000 });
  assert.notEqual(wide.code, 0);
  assert.match(wide.stderr + wide.stdout, /narrower than d_model 64/);
});
