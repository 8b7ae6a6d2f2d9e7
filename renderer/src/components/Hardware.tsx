// The hardware check's verdict in plain words, with the probe's own reasons and what was found.
import type { HardwareReport } from '../../../electron/ipc-contract.ts';
import { formatBytes, plural } from '../format.ts';

const VERDICT: Record<HardwareReport['verdict'], { title: string; text: string }> = {
  ok: { title: 'This computer is ready', text: 'It meets the minimums to train its part of the model.' },
  'cpu-only': { title: 'This computer can take part, on its processor', text: 'It has no suitable graphics card, so it trains on the processor: slower, but it still counts.' },
  insufficient: { title: 'This computer is below the minimums', text: 'It may be too slow or too small to keep up. You can still try; the reasons are below.' },
};

export function HardwareView({ report }: { report: HardwareReport }) {
  const v = VERDICT[report.verdict];
  return (
    <div className={`hardware verdict-${report.verdict}`}>
      <p className="verdict" data-testid="hardware-verdict" data-verdict={report.verdict}>
        <strong>{v.title}.</strong> {v.text}
      </p>
      <ul className="reasons" data-testid="hardware-reasons">
        {report.reasons.map((r, i) => (
          <li key={i}>{r}</li>
        ))}
      </ul>
      <p className="muted small">
        {report.cpuModel} ({plural(report.cores, 'core')}), {formatBytes(report.memoryBytes)} memory, {formatBytes(report.freeDiskBytes)} free disk
        {report.gpus.length > 0 ? `, ${report.gpus.map((g) => `${g.name}${g.memoryBytes !== null ? ` (${formatBytes(g.memoryBytes)})` : ''}`).join(', ')}` : ', no graphics card found'} · {report.platform}{' '}
        {report.arch}
      </p>
    </div>
  );
}
