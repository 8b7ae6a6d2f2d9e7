// The SVG loss chart: well-formed standalone XML, one polyline per series with one point per
// finite input, ticks inside the axes, escaped text, and no NaN for degenerate data.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lineChartSvg, niceScale } from '../../cli/loss-chart.ts';
import type { Series } from '../../cli/loss-chart.ts';

const opts = { title: 'Loss', xLabel: 'round', yLabel: 'loss' };

/** A small well-formedness check: balanced tags, quoted attributes, and only known entities. */
function assertWellFormed(svg: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tag.exec(svg); m; m = tag.exec(svg)) {
    const between = svg.slice(last, m.index);
    assert.ok(!/[<>]/.test(between), `stray angle bracket near ${JSON.stringify(between.slice(0, 60))}`);
    last = tag.lastIndex;
    const [, close, name, , selfClose] = m;
    if (close) assert.equal(stack.pop(), name, `mismatched </${name}>`);
    else if (!selfClose) stack.push(name);
  }
  assert.ok(!/[<>]/.test(svg.slice(last)), 'unparsed markup');
  assert.deepEqual(stack, [], 'unclosed tags');
  assert.ok(!/&(?!(amp|lt|gt|quot|apos);)/.test(svg), 'bare ampersand');
}

const polylines = (svg: string): string[][] =>
  [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => m[1].split(' ').filter(Boolean));
const attrs = (svg: string, cls: string, attr: string): number[] =>
  [...svg.matchAll(new RegExp(`class="${cls}"[^>]* ${attr}="([^"]+)"`, 'g'))].map((m) => Number(m[1]));

test('a standalone, well-formed SVG with title, labels, legend and default size', () => {
  const series: Series[] = [
    { name: 'train', points: Array.from({ length: 20 }, (_, i) => ({ x: i + 1, y: 9 / (i + 1) + 2 })) },
    { name: 'eval', points: [{ x: 5, y: 4.5 }, { x: 10, y: 3.2 }, { x: 20, y: 2.6 }], color: '#000000' },
  ];
  const svg = lineChartSvg(series, { ...opts, hline: { y: 2, label: 'goal 2.0' } });
  assertWellFormed(svg);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="800" height="450"/);
  for (const text of ['>Loss<', '>round<', '>loss<', '>train<', '>eval<', '>goal 2.0<']) assert.ok(svg.includes(text), text);
  assert.match(svg, /class="hline"[^>]*stroke-dasharray/);
  assert.deepEqual(polylines(svg).map((p) => p.length), [20, 3]);
  assert.ok(!svg.includes('NaN'));
});

test('ticks are about five and lie within the plot box', () => {
  const svg = lineChartSvg([{ name: 's', points: [{ x: 0, y: 2.13 }, { x: 977, y: 9.71 }] }], { ...opts, width: 640, height: 360 });
  const xt = attrs(svg, 'xtick', 'x');
  const yt = attrs(svg, 'ytick', 'y');
  for (const ticks of [xt, yt]) assert.ok(ticks.length >= 3 && ticks.length <= 8, String(ticks));
  for (const x of xt) assert.ok(x >= 70 && x <= 640 - 24, `x tick ${x}`);
  for (const y of yt) assert.ok(y >= 44 && y <= 360 - 54, `y tick ${y}`);
  for (const [x, y] of polylines(svg)[0].map((p) => p.split(',').map(Number))) {
    assert.ok(x >= 70 && x <= 616 && y >= 44 && y <= 306, `point ${x},${y}`);
  }
});

test('niceScale covers the data with round ticks inside [lo, hi]', () => {
  for (const [min, max] of [[2.13, 9.71], [0, 1], [-3, 7], [0.001, 0.0042], [1e6, 3.5e6], [5, 5], [0, 0], [9, 1]]) {
    const { lo, hi, ticks } = niceScale(min, max);
    assert.ok(lo <= Math.min(min, max) && hi >= Math.max(min, max) && lo < hi, `${min}..${max}: ${lo}..${hi}`);
    assert.ok(ticks.length >= 3 && ticks.length <= 8, `${min}..${max}: ${ticks}`);
    for (const t of ticks) assert.ok(t >= lo - 1e-12 && t <= hi + 1e-12 && Number.isFinite(t));
  }
  assert.deepEqual(niceScale(0.1, 0.3).ticks.map(String).filter((s) => s.length > 6), [], 'no float noise');
});

test('non-finite points are skipped; single points and empty series produce no NaN', () => {
  const series: Series[] = [
    { name: 'noisy', points: [{ x: 1, y: 3 }, { x: 2, y: NaN }, { x: 3, y: Infinity }, { x: NaN, y: 1 }, { x: 4, y: 2.5 }] },
    { name: 'single', points: [{ x: 2, y: 2.8 }] },
    { name: 'empty', points: [] },
    { name: 'all bad', points: [{ x: 1, y: -Infinity }] },
  ];
  const svg = lineChartSvg(series, opts);
  assertWellFormed(svg);
  assert.deepEqual(polylines(svg).map((p) => p.length), [2, 1]);
  assert.match(svg, /<circle /);
  assert.ok(!/NaN|Infinity/.test(svg));
});

test('degenerate inputs: no series, constant y, constant x, non-finite reference line', () => {
  const cases: [Series[], Parameters<typeof lineChartSvg>[1]][] = [
    [[], opts],
    [[{ name: 'flat', points: [1, 2, 3].map((x) => ({ x, y: 2 })) }], opts],
    [[{ name: 'vertical', points: [1, 2, 3].map((y) => ({ x: 7, y })) }], { ...opts, hline: { y: NaN, label: 'x' } }],
    [[{ name: 'zeros', points: [{ x: 0, y: 0 }, { x: 0, y: 0 }] }], { ...opts, width: 10, height: 10 }],
  ];
  for (const [series, o] of cases) {
    const svg = lineChartSvg(series, o);
    assertWellFormed(svg);
    assert.ok(!/NaN|Infinity/.test(svg), svg);
  }
});

test('XML special characters are escaped in every text and attribute', () => {
  const nasty = `<b>&"quote'</b>`;
  const svg = lineChartSvg([{ name: nasty, points: [{ x: 1, y: 1 }, { x: 2, y: 2 }], color: 'red" onload="x' }], {
    title: nasty, xLabel: nasty, yLabel: nasty, hline: { y: 1.5, label: nasty },
  });
  assertWellFormed(svg);
  assert.ok(!svg.includes('<b>') && !svg.includes('onload="'));
  assert.ok(svg.includes('&lt;b&gt;&amp;&quot;quote&apos;&lt;/b&gt;'));
});
