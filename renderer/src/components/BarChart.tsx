// A small bar chart in SVG (share of the reward per epoch): few bars, crisp at any size, readable
// by screen readers through its list of values.
export interface Bar {
  key: string;
  label: string;
  value: number;
  /** Tooltip and accessible text of the bar. */
  title: string;
  muted?: boolean;
}

export function BarChart({ testid, title, bars, format, empty }: { testid: string; title: string; bars: Bar[]; format: (v: number) => string; empty: string }) {
  const max = Math.max(...bars.map((b) => b.value), 0) || 1;
  const slot = 48;
  const width = Math.max(320, bars.length * slot + 16);
  const height = 180;
  const top = 20;
  const bottom = 24;
  const plotH = height - top - bottom;
  return (
    <div className="chart bar-chart" data-testid={testid} data-points={bars.length}>
      {bars.length === 0 ? (
        <p className="chart-empty">{empty}</p>
      ) : (
        <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${title}: ${bars.map((b) => `${b.label} ${format(b.value)}`).join(', ')}`} preserveAspectRatio="xMinYMid meet">
          <line x1={8} x2={width - 8} y1={top + plotH} y2={top + plotH} className="axis-line" />
          {bars.map((b, i) => {
            const h = Math.max(b.value > 0 ? 2 : 0, (b.value / max) * plotH);
            const x = 8 + i * slot + 8;
            return (
              <g key={b.key}>
                <title>{b.title}</title>
                <rect x={x} y={top + plotH - h} width={slot - 16} height={h} rx={3} className={b.muted ? 'bar bar-muted' : 'bar'} />
                <text x={x + (slot - 16) / 2} y={top + plotH - h - 5} textAnchor="middle" className="bar-value">
                  {format(b.value)}
                </text>
                <text x={x + (slot - 16) / 2} y={height - 6} textAnchor="middle" className="bar-label">
                  {b.label}
                </text>
              </g>
            );
          })}
        </svg>
      )}
    </div>
  );
}
