// The swarm at a glance, from a Dashboard: the run's progress, the pipeline's stages with their
// computers and speed, the loss curve, the validators' verdicts and the top contributors. Shown by
// the app's Network screen and by dashboard mode (the orchestrator's public page) alike.
import { useMemo } from 'react';
import type { Dashboard } from '../../../orchestrator-client/protocol.ts';
import { LineChart } from '../components/LineChart.tsx';
import { Stat } from '../components/Stat.tsx';
import { formatCompact, formatDateTime, formatInt, formatLoss, formatNumber, formatPercent, layerRange, shortAddress, stageName } from '../format.ts';

const STATUS_WORDS: Record<Dashboard['status'], string> = { active: 'training', finished: 'finished', stopped: 'stopped' };

function Overview({ d }: { d: Dashboard }) {
  const lastLoss = [...d.losses].reverse().find((l) => l.loss !== null)?.loss ?? null;
  const miners = d.stages.reduce((n, s) => n + s.miners, 0);
  return (
    <div className="card">
      <h2>
        Run <span data-testid="network-run">{d.run_id}</span> <span className={`badge badge-${d.status}`}>{STATUS_WORDS[d.status]}</span>
      </h2>
      <dl className="stats">
        <Stat label="Rounds" testid="network-rounds" value={d.rounds !== null ? `${formatInt(d.rounds_done)} of ${formatInt(d.rounds)}` : formatInt(d.rounds_done)} raw={d.rounds_done} hint={d.rounds !== null ? formatPercent(d.rounds_done / Math.max(1, d.rounds), 0) : 'no fixed end'} />
        <Stat label="Tokens trained" testid="network-tokens" value={formatCompact(d.tokens)} raw={d.tokens} />
        <Stat label="Speed" testid="network-tokens-per-s" value={`${formatNumber(d.tokens_per_s)} tokens/s`} raw={d.tokens_per_s} />
        <Stat label="Loss" testid="network-loss" value={formatLoss(lastLoss)} raw={lastLoss} />
        <Stat label="Computers" testid="network-miners" value={formatInt(miners)} raw={miners} hint={`model ${d.preset}, ${d.layers} layers`} />
      </dl>
    </div>
  );
}

function Stages({ d }: { d: Dashboard }) {
  return (
    <div className="card table-card">
      <h2>Stages</h2>
      <p className="muted small">The model is cut into stages of a few layers each; every stage is trained by its own group of computers.</p>
      <div className="table-scroll">
        <table data-testid="network-stages">
          <thead>
            <tr>
              <th scope="col">Stage</th>
              <th scope="col">Layers</th>
              <th scope="col" className="num">
                Parameters
              </th>
              <th scope="col" className="num">
                Computers
              </th>
              <th scope="col" className="num">
                Tokens/s
              </th>
              <th scope="col" className="num">
                Merges
              </th>
            </tr>
          </thead>
          <tbody>
            {d.stages.map((s) => (
              <tr key={s.stage} data-testid="network-stage-row" data-stage={s.stage} data-miners={s.miners} data-tokens-per-s={s.tokens_per_s}>
                <th scope="row">{stageName(s.stage)}</th>
                <td>{layerRange(s.layers)}</td>
                <td className="num">{formatCompact(s.params)}</td>
                <td className={s.miners === 0 ? 'num warn-text' : 'num'}>{formatInt(s.miners)}</td>
                <td className="num">{formatNumber(s.tokens_per_s)}</td>
                <td className="num">{formatInt(s.merges)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function LossCurve({ d }: { d: Dashboard }) {
  const x = useMemo(() => d.losses.map((l) => l.round), [d.losses]);
  const series = useMemo(() => [{ label: 'loss', values: d.losses.map((l) => l.loss), color: '--chart-2', format: (v: number) => formatLoss(v) }], [d.losses]);
  return (
    <div className="card">
      <h2>Loss per round</h2>
      <LineChart testid="network-loss-chart" title="The network's training loss per round" x={x} time={false} series={series} empty="No round has finished yet." />
    </div>
  );
}

function Verdicts({ d }: { d: Dashboard }) {
  const v = d.verdicts;
  return (
    <div className="card" data-testid="network-verdicts" data-passed={v.passed} data-failed={v.failed} data-pending={v.pending}>
      <h2>Checks</h2>
      <p className="muted small">Validators redo a sample of the work to catch computers that cheat or malfunction.</p>
      <dl className="stats">
        <Stat label="Validators" testid="network-validators" value={formatInt(d.validators)} raw={d.validators} />
        <Stat label="Passed" testid="network-verdicts-passed" value={formatInt(v.passed)} raw={v.passed} />
        <Stat label="Failed" testid="network-verdicts-failed" value={formatInt(v.failed)} raw={v.failed} />
        <Stat label="Waiting" testid="network-verdicts-pending" value={formatInt(v.pending)} raw={v.pending} />
        <Stat label="Flags" testid="network-flags" value={formatInt(d.flags)} raw={d.flags} hint="problems recorded" />
      </dl>
    </div>
  );
}

function Top({ d, self }: { d: Dashboard; self: string | null }) {
  return (
    <div className="card">
      <h2>Top contributors{d.top[0] ? ` (epoch ${d.top[0].epoch})` : ''}</h2>
      {d.top.length === 0 ? (
        <p className="muted" data-testid="network-top">
          The first epoch has not closed yet.
        </p>
      ) : (
        <ol className="top-list" data-testid="network-top">
          {d.top.map((t) => (
            <li key={t.hotkey} data-hotkey={t.hotkey} className={t.hotkey === self ? 'you' : undefined}>
              <span className="mono" title={t.hotkey}>
                {shortAddress(t.hotkey)}
              </span>
              {t.hotkey === self ? <span className="badge">you</span> : null}
              <span className="num">{formatPercent(t.share, 1)}</span>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

export function NetworkView({ d, self = null }: { d: Dashboard; self?: string | null }) {
  return (
    <div className="network" data-testid="network" data-run={d.run_id}>
      <Overview d={d} />
      <Stages d={d} />
      <LossCurve d={d} />
      <div className="grid-2">
        <Verdicts d={d} />
        <Top d={d} self={self} />
      </div>
      <p className="muted small">Updated by the orchestrator {formatDateTime(d.updated_at)}.</p>
    </div>
  );
}
