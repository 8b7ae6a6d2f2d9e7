// A small standalone SVG line chart (loss curves for `tah swarm`), written by hand so the CLI
// needs no plotting dependency. Non-finite points are skipped and degenerate ranges are
// widened, so the output never contains NaN whatever the data.

export interface Series {
  name: string;
  points: { x: number; y: number }[];
  color?: string;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** A dashed horizontal reference line, e.g. { y: 2, label: 'goal 2.0' }. */
  hline?: { y: number; label: string };
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

/** Escapes text for element content and attribute values, dropping characters XML 1.0 forbids. */
export function escapeXml(s: string): string {
  return s
    // eslint-disable-next-line no-control-regex
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/**
 * Round-numbered axis bounds covering [min, max] and about `count` ticks on steps of 1, 2 or 5
 * times a power of ten; lo ≤ every tick ≤ hi.
 */
export function niceScale(min: number, max: number, count = 5): { lo: number; hi: number; step: number; ticks: number[] } {
  if (!Number.isFinite(min) || !Number.isFinite(max)) [min, max] = [0, 1];
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    // A flat line still needs a visible range; centre it.
    const pad = Math.abs(min) * 0.1 || 1;
    [min, max] = [min - pad, max + pad];
  }
  const raw = (max - min) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  if (!(step > 0) || !Number.isFinite(step)) return { lo: min, hi: max, step: max - min, ticks: [min, max] };
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  // toPrecision trims float noise such as 0.30000000000000004.
  for (let i = 0; i <= Math.round((hi - lo) / step) && i < 50; i++) ticks.push(Number((lo + i * step).toPrecision(12)));
  return { lo, hi, step, ticks };
}

/** Tick text with just enough decimals for the step, and k/M/G for big numbers. */
function tickLabel(v: number, step: number, top: number): string {
  const [div, unit] = top >= 1e10 ? [1e9, 'G'] : top >= 1e7 ? [1e6, 'M'] : top >= 1e4 ? [1e3, 'k'] : [1, ''];
  const decimals = Math.min(10, Math.max(0, -Math.floor(Math.log10(step / div) + 1e-9)));
  return `${(v / div).toFixed(decimals)}${unit}`;
}

/** Coordinates with one decimal; anything non-finite becomes 0 rather than "NaN". */
const c = (v: number): string => (Number.isFinite(v) ? String(Math.round(v * 10) / 10) : '0');

export function lineChartSvg(series: Series[], opts: ChartOptions): string {
  const W = Math.max(200, opts.width ?? 800);
  const H = Math.max(150, opts.height ?? 450);
  const m = { left: 70, right: 24, top: 44, bottom: 54 };
  const [x0, x1, y0, y1] = [m.left, W - m.right, H - m.bottom, m.top]; // plot box; y grows downward

  const clean = series.map((s) => ({ ...s, points: s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)) }));
  const all = clean.flatMap((s) => s.points);
  const hline = opts.hline && Number.isFinite(opts.hline.y) ? opts.hline : undefined;
  const ys = [...all.map((p) => p.y), ...(hline ? [hline.y] : [])];
  // Empty data gets the unit square; reduce() avoids spreading huge arrays into Math.min.
  const range = (vs: number[]): [number, number] =>
    vs.length ? [vs.reduce((a, b) => Math.min(a, b)), vs.reduce((a, b) => Math.max(a, b))] : [0, 1];
  const xs = niceScale(...range(all.map((p) => p.x)));
  const yScale = niceScale(...range(ys));
  const sx = (v: number): number => x0 + ((v - xs.lo) / (xs.hi - xs.lo)) * (x1 - x0);
  const sy = (v: number): number => y0 - ((v - yScale.lo) / (yScale.hi - yScale.lo)) * (y0 - y1);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${c(W / 2)}" y="26" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(opts.title)}</text>`,
  ];

  const xTop = Math.max(Math.abs(xs.lo), Math.abs(xs.hi));
  for (const t of xs.ticks) {
    const px = c(sx(t));
    out.push(`<line class="grid" x1="${px}" y1="${c(y1)}" x2="${px}" y2="${c(y0)}" stroke="#e5e5e5"/>`);
    out.push(`<text class="xtick" x="${px}" y="${c(y0 + 18)}" text-anchor="middle">${escapeXml(tickLabel(t, xs.step, xTop))}</text>`);
  }
  const yTop = Math.max(Math.abs(yScale.lo), Math.abs(yScale.hi));
  for (const t of yScale.ticks) {
    const py = c(sy(t));
    out.push(`<line class="grid" x1="${c(x0)}" y1="${py}" x2="${c(x1)}" y2="${py}" stroke="#e5e5e5"/>`);
    out.push(`<text class="ytick" x="${c(x0 - 8)}" y="${py}" dy="0.32em" text-anchor="end">${escapeXml(tickLabel(t, yScale.step, yTop))}</text>`);
  }
  out.push(`<path d="M${c(x0)},${c(y1)}V${c(y0)}H${c(x1)}" fill="none" stroke="#333333"/>`);
  out.push(`<text x="${c((x0 + x1) / 2)}" y="${c(H - 12)}" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`);
  const yl = `x="16" y="${c((y0 + y1) / 2)}"`;
  out.push(`<text ${yl} transform="rotate(-90 16 ${c((y0 + y1) / 2)})" text-anchor="middle">${escapeXml(opts.yLabel)}</text>`);

  if (hline) {
    const py = c(sy(hline.y));
    out.push(`<line class="hline" x1="${c(x0)}" y1="${py}" x2="${c(x1)}" y2="${py}" stroke="#555555" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${c(x1 - 4)}" y="${c(sy(hline.y) - 5)}" text-anchor="end" fill="#555555">${escapeXml(hline.label)}</text>`);
  }

  clean.forEach((s, i) => {
    const color = escapeXml(s.color ?? PALETTE[i % PALETTE.length]);
    if (s.points.length === 0) return;
    const pts = s.points.map((p) => `${c(sx(p.x))},${c(sy(p.y))}`).join(' ');
    out.push(`<polyline data-series="${escapeXml(s.name)}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round" points="${pts}"/>`);
    // A lone point draws no line; mark it so it is still visible.
    if (s.points.length === 1) out.push(`<circle cx="${c(sx(s.points[0].x))}" cy="${c(sy(s.points[0].y))}" r="3" fill="${color}"/>`);
  });

  if (clean.length > 0) {
    // Legend in the plot's top-right corner; text width is estimated, as SVG cannot measure it here.
    const lw = 36 + Math.max(...clean.map((s) => Array.from(s.name).length)) * 7;
    const lx = x1 - lw - 8;
    out.push(`<rect x="${c(lx)}" y="${c(y1 + 8)}" width="${c(lw)}" height="${c(clean.length * 18 + 8)}" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`);
    clean.forEach((s, i) => {
      const ly = y1 + 22 + i * 18;
      const color = escapeXml(s.color ?? PALETTE[i % PALETTE.length]);
      out.push(`<line x1="${c(lx + 8)}" y1="${c(ly)}" x2="${c(lx + 26)}" y2="${c(ly)}" stroke="${color}" stroke-width="2"/>`);
      out.push(`<text class="legend" x="${c(lx + 32)}" y="${c(ly)}" dy="0.32em">${escapeXml(s.name)}</text>`);
    });
  }

  out.push('</svg>');
  return out.join('\n') + '\n';
}
