// Earnings: what this computer earned in each closed epoch of its run (earnings:get), the open
// epoch's work so far, a bar chart of its share per epoch, and — where a share was reduced — why,
// with the evidence the validators recorded.
import { useMemo } from 'react';
import type { Flag, MinerRewards } from '../../../orchestrator-client/protocol.ts';
import { BarChart } from '../components/BarChart.tsx';
import { Screen } from '../components/Screen.tsx';
import { formatDateTime, formatInt, formatNumber, formatPercent, formatShare, formatTime, shortAddress } from '../format.ts';
import { usePoll } from '../hooks.ts';
import { useApp } from '../stores/app.ts';
import { loadEarnings, useEarnings } from '../stores/earnings.ts';

type EpochLine = MinerRewards['epochs'][number];

const FLAG_WORDS: Record<Flag['kind'], string> = {
  bad_reduction: 'combined the improvements of its stage wrongly',
  bad_blob: 'sent data that did not match what it announced',
  bad_upload: 'uploaded a result that could not be used',
  failed_check: "failed a validator's check of its work",
  clasp: "its work made the model's guesses worse than its stage's average",
};

function evidenceSummary(evidence: Record<string, unknown>): string {
  const parts = Object.entries(evidence)
    .slice(0, 3)
    .map(([k, v]) => {
      const text = typeof v === 'string' ? v : JSON.stringify(v);
      return `${k} ${text.length > 28 ? `${text.slice(0, 27)}…` : text}`;
    });
  return parts.join(', ');
}

/** A flag in a sentence: its kind in words, where it happened and what shows it. */
export function describeFlag(f: Flag): string {
  const where = [f.round !== null ? `round ${f.round}` : null, f.stage !== null ? `stage ${f.stage + 1}` : null].filter(Boolean).join(', ');
  const evidence = evidenceSummary(f.evidence);
  return `${f.kind.replaceAll('_', ' ')}: ${FLAG_WORDS[f.kind]}${where ? ` (${where})` : ''}${evidence ? `; evidence: ${evidence}` : ''}`;
}

/** The flags that belong to an epoch: by round where they have one, otherwise by time. */
function flagsOf(e: EpochLine, previousClosedAt: number, flags: Flag[]): Flag[] {
  return flags.filter((f) => (f.round !== null ? f.round >= e.from_round && f.round <= e.to_round : f.at > previousClosedAt && f.at <= e.closed_at));
}

function EpochRow({ e, flags }: { e: EpochLine; flags: Flag[] }) {
  const reduced = e.reason !== null || flags.length > 0;
  return (
    <tr data-testid="earnings-row" data-epoch={e.epoch} data-share={e.share} className={reduced ? 'reduced' : undefined}>
      <th scope="row">{e.epoch}</th>
      <td>
        {e.from_round}–{e.to_round}
      </td>
      <td className="num">{formatNumber(e.work)}</td>
      <td className="num">{formatInt(e.passed)}</td>
      <td className="num">{formatInt(e.failed)}</td>
      <td className="num" title={formatPercent(e.share, 3)}>
        {formatShare(e.share)}
      </td>
      <td className="num">{formatNumber(e.score)}</td>
      <td>
        <span className="badge">final</span> <span className="muted small">{formatDateTime(e.closed_at)}</span>
      </td>
      <td className="why" data-testid="earnings-reason">
        {e.reason ? <p>{e.reason}</p> : null}
        {flags.map((f, i) => (
          <p key={i} className="flag" data-testid="earnings-flag" data-kind={f.kind}>
            {describeFlag(f)}
          </p>
        ))}
        {!reduced ? <span className="muted">—</span> : null}
      </td>
    </tr>
  );
}

function Ledger({ data }: { data: MinerRewards }) {
  const epochs = useMemo(() => [...data.epochs].sort((a, b) => a.epoch - b.epoch), [data.epochs]);
  const bars = epochs.map((e) => ({ key: String(e.epoch), label: `E${e.epoch}`, value: e.share, title: `Epoch ${e.epoch}: ${formatPercent(e.share, 2)} of the reward`, muted: e.reason !== null }));
  const p = data.pending;
  return (
    <>
      <p className="muted">
        Run <strong>{data.run_id}</strong> · hotkey <span className="mono" title={data.hotkey}>{shortAddress(data.hotkey)}</span> · {epochs.length} closed epoch{epochs.length === 1 ? '' : 's'}
      </p>
      <div className="card table-card">
        <h2>Epochs</h2>
        <div className="table-scroll">
          <table data-testid="earnings-table">
            <caption className="visually-hidden">Your work and reward per epoch, oldest first; the open epoch last</caption>
            <thead>
              <tr>
                <th scope="col">Epoch</th>
                <th scope="col">Rounds</th>
                <th scope="col" className="num">
                  Work
                </th>
                <th scope="col" className="num">
                  Checks passed
                </th>
                <th scope="col" className="num">
                  Checks failed
                </th>
                <th scope="col" className="num">
                  Share
                </th>
                <th scope="col" className="num">
                  Score
                </th>
                <th scope="col">Status</th>
                <th scope="col">Why reduced</th>
              </tr>
            </thead>
            <tbody>
              {epochs.map((e, i) => (
                <EpochRow key={e.epoch} e={e} flags={flagsOf(e, i > 0 ? epochs[i - 1].closed_at : 0, data.flags)} />
              ))}
              {p ? (
                <tr data-testid="earnings-pending" data-epoch={p.epoch} className="pending">
                  <th scope="row">{p.epoch}</th>
                  <td>{p.from_round}–now</td>
                  <td className="num">{formatNumber(p.work)}</td>
                  <td className="num">{formatInt(p.passed)}</td>
                  <td className="num">{formatInt(p.failed)}</td>
                  <td className="num">—</td>
                  <td className="num">—</td>
                  <td>
                    <span className="badge badge-open">open</span>
                  </td>
                  <td className="muted">The share is set when the epoch closes.</td>
                </tr>
              ) : null}
              {!p && epochs.length === 0 ? (
                <tr>
                  <td colSpan={9} className="muted">
                    Nothing yet.
                  </td>
                </tr>
              ) : null}
            </tbody>
          </table>
        </div>
      </div>
      <div className="card">
        <h2>Your share of each epoch's reward</h2>
        <BarChart testid="earnings-chart" title="Share of the reward per epoch" bars={bars} format={formatShare} empty="Your first epoch has not closed yet." />
        {bars.some((b) => b.muted) ? <p className="muted small">Grey bars: shares that were reduced (the table says why).</p> : null}
      </div>
      {data.flags.length > 0 ? (
        <div className="card" data-testid="earnings-flags">
          <h2>Problems found in your work</h2>
          <ul>
            {data.flags.map((f, i) => (
              <li key={i}>
                {formatDateTime(f.at)}: {describeFlag(f)}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </>
  );
}

export function Earnings() {
  const hasWallet = useApp((s) => s.state?.wallet !== null);
  const { data, error, loading, updatedAt } = useEarnings();
  usePoll(loadEarnings, 10_000);
  return (
    <Screen title="Earnings" intro="Each epoch (a fixed number of training rounds) the reward is shared out among the computers that worked, by how much they did and whether their work passed the validators' checks.">
      <div className="toolbar">
        <button type="button" data-testid="earnings-refresh" onClick={() => void loadEarnings()} disabled={loading}>
          Refresh
        </button>
        {updatedAt ? <span className="muted small">Updated {formatTime(updatedAt)}</span> : null}
      </div>
      {error ? (
        <p className="error-text" role="alert" data-testid="earnings-error">
          {error}
        </p>
      ) : null}
      {data === undefined ? (
        !error ? <p className="muted">Loading…</p> : null
      ) : data === null ? (
        <p className="empty" data-testid="earnings-empty">
          {hasWallet
            ? 'No earnings yet: this computer has not joined a training run. Press Start on Home; your earnings appear here once it has worked through an epoch.'
            : 'No earnings yet: create a wallet first (Settings), then press Start on Home.'}
        </p>
      ) : (
        <Ledger data={data} />
      )}
    </Screen>
  );
}
