// The live `tah swarm` dashboard as a pure function of the swarm's state: a header (round,
// loss, throughput, time) and one line per miner. The caller owns the terminal; this only
// returns lines, each at most `width` visible characters, so redrawing never wraps.

export interface MinerView {
  name: string; // e.g. "miner-3"
  stage: number | null; // pipeline stage it holds (null while registering)
  state: string; // short word: 'starting' | 'idle' | 'forward' | 'backward' | 'share' | ...
  version: number; // optimizer rounds applied
  tokensPerS: number; // its recent throughput
  items: number; // work items completed
  lastError?: string;
}

export interface SwarmViewState {
  preset: string;
  round: number; // rounds completed
  rounds: number | null; // planned rounds (null when the run is bounded by minutes instead)
  loss: number | null; // last round's mean training loss
  tokens: number;
  tokensPerS: number;
  elapsedS: number;
  remainingS?: number | null;
  miners: MinerView[];
  orchestrator: string; // e.g. 'up' | 'restarting'
}

/** A run of text with an optional SGR code; styling is applied after truncation so widths stay exact. */
type Seg = { text: string; sgr?: string };

const BOLD = '1';
const DIM = '2';
const RED = '31';
const GREEN = '32';
const YELLOW = '33';
const CYAN = '36';

/** 950 → "950", 12345 → "12.3k", 4.2e6 → "4.2M". */
export function humanNumber(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  for (const [div, unit] of [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']] as const) {
    // 999_600 would print as "999.6k" but 999_960 as "1000.0k"; promote that to the next unit.
    if (a >= div * 0.9995) return `${(n / div).toFixed(a / div >= 99.95 ? 0 : 1)}${unit}`;
  }
  return a >= 99.95 || Number.isInteger(n) ? n.toFixed(0) : n.toFixed(1);
}

/** 5 → "5s", 65 → "1m05s", 3725 → "1h02m". */
export function humanDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '–';
  const t = Math.round(s);
  if (t < 60) return `${t}s`;
  const pad = (v: number): string => String(v).padStart(2, '0');
  if (t < 3600) return `${Math.floor(t / 60)}m${pad(t % 60)}s`;
  return `${Math.floor(t / 3600)}h${pad(Math.floor((t % 3600) / 60))}m`;
}

/** Error text comes from child processes: flatten newlines and drop control/escape bytes that would break the layout. */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/\s+/g, ' ').trim();
}

/** Cuts `text` to `n` code points, marking the cut with "…". */
function clip(text: string, n: number): string {
  const cps = Array.from(text);
  if (cps.length <= n) return text;
  return n <= 0 ? '' : cps.slice(0, n - 1).join('') + '…';
}

function fit(segs: Seg[], width: number, color: boolean): string {
  let left = Math.max(0, width);
  let out = '';
  for (let i = 0; i < segs.length && left > 0; i++) {
    const rest = segs.slice(i).reduce((sum, s) => sum + Array.from(s.text).length, 0);
    // Clip the segment where the line overflows, so the "…" lands inside it.
    const text = rest > left ? clip(segs[i].text, left) : segs[i].text;
    left -= Array.from(text).length;
    out += color && segs[i].sgr && text ? `\x1b[${segs[i].sgr}m${text}\x1b[0m` : text;
  }
  return out;
}

function stateColor(m: MinerView): string | undefined {
  if (m.state === 'dead') return RED;
  if (m.state === 'stopped' || m.state === 'idle') return DIM;
  if (m.state === 'starting' || m.state === 'sync') return YELLOW;
  return GREEN;
}

/** Natural order, so miner-2 comes before miner-10. */
const byName = (a: MinerView, b: MinerView): number => a.name.localeCompare(b.name, 'en', { numeric: true });

export function renderSwarmView(s: SwarmViewState, opts: { width?: number; color?: boolean } = {}): string[] {
  const width = Math.max(1, Math.floor(opts.width ?? 100));
  const color = opts.color ?? false;
  const lines: Seg[][] = [];

  const orchOk = s.orchestrator === 'up';
  const head: Seg[] = [{ text: 'swarm ', sgr: BOLD }, { text: clean(s.preset), sgr: BOLD }, { text: '  round ' }];
  const tail: Seg[] = [{ text: '  orchestrator ' }, { text: clean(s.orchestrator), sgr: orchOk ? GREEN : YELLOW }];
  if (s.rounds !== null && s.rounds > 0) {
    const frac = Math.min(1, Math.max(0, s.round / s.rounds));
    const pct = ` ${Math.floor(frac * 100)}%`;
    head.push({ text: `${s.round}/${s.rounds} ` });
    // The bar takes whatever the line has left, within sensible bounds.
    const used = [...head, ...tail].reduce((n, g) => n + Array.from(g.text).length, 0) + pct.length + 2;
    const barW = Math.max(5, Math.min(30, width - used));
    const filled = Math.round(frac * barW);
    head.push({ text: '[' }, { text: '█'.repeat(filled), sgr: CYAN }, { text: '░'.repeat(barW - filled), sgr: DIM }, { text: `]${pct}` });
  } else {
    head.push({ text: String(s.round) });
  }
  lines.push([...head, ...tail]);

  const stats: Seg[] = [
    { text: 'loss ' },
    { text: s.loss === null || !Number.isFinite(s.loss) ? '–' : s.loss.toFixed(3), sgr: BOLD },
    { text: `  ${humanNumber(s.tokensPerS)} tok/s  ${humanNumber(s.tokens)} tokens  elapsed ${humanDuration(s.elapsedS)}` },
  ];
  if (s.remainingS !== undefined && s.remainingS !== null) stats.push({ text: `  left ${humanDuration(s.remainingS)}` });
  lines.push(stats);

  const miners = [...s.miners].sort((a, b) => {
    // Registering miners (no stage yet) go last.
    const sa = a.stage ?? Infinity;
    const sb = b.stage ?? Infinity;
    return sa === sb ? byName(a, b) : sa - sb;
  });
  const nameW = Math.min(16, Math.max(5, ...miners.map((m) => Array.from(clean(m.name)).length)));
  const row = (name: string, stage: string, state: string, ver: string, tps: string, items: string): string =>
    `${clip(name, nameW).padEnd(nameW)} ${stage.padStart(5)}  ${clip(state, 8).padEnd(8)} ${ver.padStart(5)} ${tps.padStart(7)} ${items.padStart(6)}`;
  lines.push([{ text: row('miner', 'stage', 'state', 'ver', 'tok/s', 'items') + '  error', sgr: DIM }]);
  for (const m of miners) {
    const name = clean(m.name);
    const cols = row(name, m.stage === null ? '–' : String(m.stage), '', String(m.version), humanNumber(m.tokensPerS), humanNumber(m.items));
    // Split the row around the state column so only the state word is coloured.
    const at = nameW + 1 + 5 + 2;
    const segs: Seg[] = [
      { text: cols.slice(0, at) },
      { text: clip(clean(m.state), 8).padEnd(8), sgr: stateColor(m) },
      { text: cols.slice(at + 8) },
    ];
    if (m.lastError) segs.push({ text: '  ' }, { text: clean(m.lastError), sgr: RED });
    lines.push(segs);
  }
  if (miners.length === 0) lines.push([{ text: '(no miners yet)', sgr: DIM }]);

  return lines.map((l) => fit(l, width, color).trimEnd());
}
