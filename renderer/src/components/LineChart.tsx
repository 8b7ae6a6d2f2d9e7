// A line chart (uPlot on a canvas) that follows its container's width and redraws whenever its
// data changes. Colours come from the theme's CSS variables; the chart is rebuilt when the system
// switches between light and dark. The container carries data-points (how many points are drawn)
// and a text alternative, since a canvas says nothing to a screen reader.
import { useEffect, useMemo, useRef } from 'react';
import uPlot from 'uplot';
import { useColorScheme } from '../hooks.ts';

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  /** A CSS variable of the theme, e.g. '--chart-1'. */
  color: string;
  format?: (v: number) => string;
}

interface Props {
  testid: string;
  /** What the chart shows, for its accessible name. */
  title: string;
  /** x values: milliseconds since the epoch when `time`, otherwise plain numbers (rounds). */
  x: number[];
  time: boolean;
  series: ChartSeries[];
  /** Shown over the chart while there is nothing to draw (no points, or only gaps). */
  empty: string;
  height?: number;
}

const ROUND_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000];

export function LineChart(props: Props) {
  const scheme = useColorScheme();
  const last = props.series[0]?.values.at(-1);
  const fmt = props.series[0]?.format ?? String;
  const summary = props.x.length === 0 ? props.empty : `${props.title}: ${props.x.length} points${last !== null && last !== undefined ? `, latest ${fmt(last)}` : ''}`;
  return (
    <div className="chart" data-testid={props.testid} data-points={props.x.length} role="img" aria-label={summary}>
      <Plot key={scheme} {...props} />
      {props.x.length === 0 || !props.series.some((s) => s.values.some((v) => v !== null)) ? <p className="chart-empty">{props.empty}</p> : null}
    </div>
  );
}

function Plot({ x, time, series, height = 200 }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = useMemo<uPlot.AlignedData>(() => [time ? x.map((t) => t / 1000) : x, ...series.map((s) => s.values)], [x, series, time]);
  const latestData = useRef(data);
  latestData.current = data;
  const shape = series.map((s) => `${s.label}|${s.color}`).join(',');

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const css = getComputedStyle(el);
    const v = (name: string) => css.getPropertyValue(name).trim() || '#888';
    const axis: uPlot.Axis = { stroke: v('--muted'), grid: { stroke: v('--grid'), width: 1 }, ticks: { stroke: v('--grid'), width: 1 }, font: '12px system-ui, sans-serif' };
    const width = () => Math.max(200, Math.floor(el.clientWidth));
    const opts: uPlot.Options = {
      width: width(),
      height,
      scales: { x: { time } },
      legend: { show: series.length > 1 },
      cursor: { drag: { x: false, y: false } },
      // Rounds are whole numbers: no tick at round 2.5.
      axes: [time ? { ...axis } : { ...axis, incrs: ROUND_STEPS }, { ...axis, size: 56 }],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: v(s.color),
          width: 2,
          spanGaps: true,
          points: { show: false },
          value: (_u: uPlot, val: number | null) => (val === null ? '—' : (s.format ?? String)(val)),
        })),
      ],
    };
    const u = new uPlot(opts, latestData.current, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      if (u.width !== width()) u.setSize({ width: width(), height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // The chart is rebuilt only when its shape changes; new data goes through setData below.
  }, [height, time, shape]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return <div ref={box} className="chart-canvas" />;
}
