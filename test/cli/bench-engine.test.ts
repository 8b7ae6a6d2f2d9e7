// `tah bench engine` on the tiny preset, one timed step: the summary reports each side's peak
// resident size (the engine's measured in a child process of its own), with the PyTorch peer
// where one is installed, without it (--no-peer), and when no python has torch.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PYTHON, torchSkip } from '../helpers/torch.ts';
import { jsonLines, runTah, show, tempDir } from './run-tah.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
before(async () => {
  ({ dir, cleanup } = await tempDir('bench-engine'));
});
after(() => cleanup());

const TINY = ['bench', 'engine', '--preset', 'tiny', '--steps', '1'];
/** A node process running the engine holds tens of MiB at least; the tiny preset, well under 2 GiB. */
const plausibleRss = (x: unknown): boolean => Number.isInteger(x) && (x as number) > 30 * 2 ** 20 && (x as number) < 2 * 2 ** 30;

async function benchJson(args: string[], env?: NodeJS.ProcessEnv): Promise<Record<string, unknown>[]> {
  const r = await runTah([...TINY, ...args, '--json'], { cwd: dir, env, timeoutMs: 300_000 });
  assert.equal(r.code, 0, show(r));
  const lines = jsonLines(r.stdout);
  assert.equal(lines.at(-1)!.summary, true, show(r));
  return lines;
}

test('--no-peer: the engine alone, with its peak RSS; the peer fields are null', async () => {
  const lines = await benchJson(['--no-peer']);
  const summary = lines.at(-1)!;
  assert.equal(summary.ok, true);
  assert.ok((summary.tokens_per_s as number) > 0);
  assert.ok(plausibleRss(summary.peak_rss_bytes), `peak_rss_bytes ${summary.peak_rss_bytes}`);
  for (const k of ['peer', 'peer_tokens_per_s', 'peer_layout', 'peer_peak_rss_bytes', 'ratio']) assert.equal(summary[k], null, k);
  const engine = lines.filter((l) => l.event === 'engine');
  assert.equal(engine.length, 1);
  assert.equal(engine[0].peak_rss_bytes, summary.peak_rss_bytes);

  const human = await runTah([...TINY, '--no-peer'], { cwd: dir });
  assert.equal(human.code, 0, show(human));
  assert.match(human.stdout, /^engine [\d,]+ tokens\/s, peak [\d,]+ MiB \(no PyTorch peer measured\)$/m);
});

test('with no python that has torch the peer is skipped, saying how to install it', async () => {
  const lines = await benchJson([], { TAH_PYTHON: '/nonexistent/python' });
  const note = lines.find((l) => l.event === 'note' && /PyTorch peer skipped/.test(l.message as string));
  assert.ok(note, JSON.stringify(lines));
  assert.match(note.message as string, /pip install torch transformers/);
  const summary = lines.at(-1)!;
  assert.equal(summary.peer, null);
  assert.equal(summary.peer_peak_rss_bytes, null);
  assert.ok(plausibleRss(summary.peak_rss_bytes));
});

test('with the peer: both peak RSS figures, the peer at its best thread layout, and the ratio', { skip: torchSkip }, async (t) => {
  const lines = await benchJson([]);
  const summary = lines.at(-1)!;
  t.diagnostic(
    `tiny, 1 step: engine ${Math.round(summary.tokens_per_s as number)} tokens/s, peak ${((summary.peak_rss_bytes as number) / 2 ** 20).toFixed(0)} MiB; ` +
      `${summary.peer} (${PYTHON}, ${summary.peer_layout}) ${Math.round(summary.peer_tokens_per_s as number)} tokens/s, peak ${((summary.peer_peak_rss_bytes as number) / 2 ** 20).toFixed(0)} MiB`,
  );
  assert.match(summary.peer as string, /^pytorch-\d+\.\d+/);
  assert.ok(plausibleRss(summary.peak_rss_bytes), `peak_rss_bytes ${summary.peak_rss_bytes}`);
  assert.ok(plausibleRss(summary.peer_peak_rss_bytes), `peer_peak_rss_bytes ${summary.peer_peak_rss_bytes}`);
  const ratio = (summary.tokens_per_s as number) / (summary.peer_tokens_per_s as number);
  assert.ok(Math.abs((summary.ratio as number) - ratio) <= 1e-4 * ratio, `ratio ${summary.ratio}, tokens/s give ${ratio}`); // the output rounds
  // The engine is measured before and after the peer; the summary takes the faster, with its own RSS.
  const engine = lines.filter((l) => l.event === 'engine');
  assert.equal(engine.length, 2);
  const best = engine.reduce((a, b) => ((b.tokens_per_s as number) > (a.tokens_per_s as number) ? b : a));
  assert.equal(summary.peak_rss_bytes, best.peak_rss_bytes);
  // Every layout tried is reported; the summary's is the fastest, with that process's RSS.
  const layouts = lines.filter((l) => l.event === 'peer_layout');
  assert.ok(layouts.length >= 1);
  const fastest = layouts.reduce((a, b) => ((b.tokens_per_s as number) > (a.tokens_per_s as number) ? b : a));
  assert.equal(summary.peer_layout, fastest.layout);
  assert.equal(summary.peer_peak_rss_bytes, fastest.peak_rss_bytes);
});
