// Numbers, durations, times and addresses as the screens show them: one place, so that every
// screen writes "1,234 tokens/s" or "2 h 05 min" the same way.

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 1234567 → "1,234,567". */
export function formatInt(n: number): string {
  return integer.format(Math.round(n));
}

/** A rate or amount with sensible precision: 0.42, 12.3, 1,234. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '—';
  const a = Math.abs(n);
  if (a === 0) return '0';
  if (a < 1) return n.toFixed(2);
  if (a < 100) return n.toFixed(1);
  return formatInt(n);
}

/** 1.2 M, 350 k, 42. */
export function formatCompact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(a >= 1e10 ? 0 : 1)} B`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(a >= 1e7 ? 0 : 1)} M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(0)} k`;
  return formatInt(n);
}

export function formatLoss(loss: number | null | undefined): string {
  return loss === null || loss === undefined || !Number.isFinite(loss) ? '—' : loss.toFixed(3);
}

/** A fraction 0–1 as a percentage: 0.1234 → "12.3 %". */
export function formatPercent(fraction: number, digits = 1): string {
  return `${(fraction * 100).toFixed(digits)} %`;
}

/** A share of the reward: one decimal, and "< 0.1 %" rather than a misleading 0.0 %. */
export function formatShare(fraction: number): string {
  return fraction > 0 && fraction < 0.0005 ? '< 0.1 %' : formatPercent(fraction, 1);
}

export function formatBytes(n: number | null): string {
  if (n === null) return 'unknown';
  const gb = n / 1024 ** 3;
  return gb >= 1 ? `${gb.toFixed(gb >= 100 ? 0 : 1)} GB` : `${Math.round(n / 1024 ** 2)} MB`;
}

/** 42 s, 5 min 07 s, 2 h 05 min, 3 d 4 h. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** A time of day, e.g. 14:05 (the user's locale). */
export function formatTime(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

export function formatDateTime(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** An SS58 address shortened for tables: 5GrwvaEF…utQY. */
export function shortAddress(address: string): string {
  return address.length <= 14 ? address : `${address.slice(0, 8)}…${address.slice(-4)}`;
}

/** [2, 3] → "layers 2–3"; [4, 4] → "layer 4". */
export function layerRange(layers: readonly [number, number]): string {
  return layers[0] === layers[1] ? `layer ${layers[0]}` : `layers ${layers[0]}–${layers[1]}`;
}

/** Stages are numbered from 0 on the wire and from 1 for people. */
export function stageName(stage: number, count?: number): string {
  return count === undefined ? `Stage ${stage + 1}` : `Stage ${stage + 1} of ${count}`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatInt(n)} ${n === 1 ? one : many}`;
}
