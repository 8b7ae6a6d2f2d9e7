// Home: am I contributing, and if not, why? The Start/Stop button with the training state in
// words, the pause controls, the part of the model this computer holds, live figures and charts
// from AppState.training, and this epoch's contribution from the rewards ledger.
import { useMemo } from 'react';
import type { AppState, TrainingState } from '../../../electron/ipc-contract.ts';
import { ErrorText } from '../components/ErrorText.tsx';
import { LineChart } from '../components/LineChart.tsx';
import { Screen } from '../components/Screen.tsx';
import { StagePicture } from '../components/StagePicture.tsx';
import { Stat } from '../components/Stat.tsx';
import { formatCompact, formatDuration, formatInt, formatLoss, formatNumber, formatTime, layerRange, plural, stageName } from '../format.ts';
import { useNow, usePoll } from '../hooks.ts';
import { actions, isWindingDown, useApp, wantsToTrain } from '../stores/app.ts';
import { loadEarnings, useEarnings } from '../stores/earnings.ts';
import { loadNetwork, useNetwork } from '../stores/network.ts';

/** What the worker is doing (the contract's minerState), in words. */
type MinerState = NonNullable<TrainingState['minerState']>;

const MINER_WORDS: Record<MinerState, string> = {
  starting: 'getting ready',
  idle: 'waiting for the next piece of work',
  forward: 'passing text through its layers',
  backward: 'learning from the result (backward pass)',
  redo: 'recomputing a piece of work',
  local: 'taking training steps on its own',
  share: 'sending its improvements to the others',
  reduce: "combining the others' improvements",
  apply: 'updating its layers',
  store: 'saving a copy of its layers for the network',
  sync: 'catching up with the latest model',
  validate: "checking another computer's work",
  stopping: 'stopping',
  stopped: 'stopped',
  finished: 'done: the run has finished',
};

/** The training state in plain words: a headline and what it means or what to do. */
export function describeTraining(t: TrainingState): { headline: string; detail: string } {
  switch (t.status) {
    case 'stopped':
      return { headline: 'Stopped', detail: 'Not training. Press Start to lend this computer to the network.' };
    case 'starting':
      return { headline: 'Starting', detail: t.reason ?? "Connecting to the network and loading this computer's part of the model…" };
    case 'training':
      return { headline: 'Training', detail: t.minerState ? `This computer is ${MINER_WORDS[t.minerState]}.` : 'This computer is working for the network.' };
    case 'paused':
      return { headline: 'Paused', detail: t.reason ?? 'Training resumes by itself when the pause ends.' };
    case 'stopping':
      return { headline: 'Stopping', detail: t.reason ?? 'Finishing or handing back the work in hand…' };
    case 'restarting':
      return { headline: 'Restarting after a problem', detail: t.reason ?? 'The training stopped unexpectedly; it starts again in a moment.' };
    case 'error':
      return { headline: 'Cannot train', detail: t.reason ?? 'Something stops the training; see Logs.' };
  }
}

function TrainingControl({ state }: { state: AppState }) {
  const busy = useApp((s) => !!(s.busy.start || s.busy.stop));
  const startError = useApp((s) => s.errors.start ?? s.errors.stop);
  const wants = wantsToTrain(state);
  // While the worker hands its work back there is nothing to press: Start comes back once stopped.
  const winding = isWindingDown(state);
  const { headline, detail } = describeTraining(state.training);
  return (
    <div className="card control-card">
      <button
        type="button"
        className={wants ? 'big-button stop' : 'big-button start'}
        data-testid="start-stop"
        aria-describedby="status-line"
        aria-busy={busy || winding || undefined}
        disabled={winding}
        onClick={() => {
          if (busy) return;
          void (wants ? actions.stop() : actions.start());
        }}
      >
        {wants ? 'Stop' : 'Start'}
      </button>
      <div className="status-block">
        <p id="status-line" className={`status-line status-${state.training.status}`} role="status" aria-live="polite" data-testid="status-line" data-status={state.training.status} data-pause-reason={state.training.pauseReason ?? undefined}>
          <strong>{headline}</strong>
          <span> — {detail}</span>
        </p>
        {state.training.lastCrash && state.training.status !== 'restarting' ? (
          <p className="muted small">
            Last problem at {formatTime(state.training.lastCrash.at)}: {state.training.lastCrash.reason} ({state.training.restarts} restarts so far)
          </p>
        ) : null}
        <ErrorText message={startError} testid="start-error" />
        <PauseControls state={state} />
      </div>
    </div>
  );
}

function PauseControls({ state }: { state: AppState }) {
  const error = useApp((s) => s.errors.pause ?? s.errors.resume);
  const pause = state.power.pause;
  return (
    <div className="pause-controls" role="group" aria-label="Pause">
      {pause ? (
        <>
          <span className="muted">{pause.kind === 'until' ? `Paused by you until ${formatTime(pause.until)}.` : 'Paused by you until this computer is plugged in.'}</span>
          <button type="button" data-testid="resume" onClick={() => void actions.resume()}>
            Resume now
          </button>
        </>
      ) : (
        <>
          <button type="button" data-testid="pause-1h" onClick={() => void actions.pauseFor(60)}>
            Pause for 1 hour
          </button>
          <button type="button" data-testid="pause-until-ac" onClick={() => void actions.pauseUntilAc()}>
            Pause until plugged in
          </button>
        </>
      )}
      <ErrorText message={error} />
    </div>
  );
}

function StageCard({ state }: { state: AppState }) {
  const dashboard = useNetwork((s) => s.data);
  const stage = state.training.stage;
  usePoll(() => loadNetwork(), 15_000, stage !== null);
  const same = stage && dashboard?.run_id === stage.runId ? dashboard.stages.find((s) => s.stage === stage.stage) : undefined;
  return (
    <div className="card">
      <h2>Your part of the model</h2>
      {stage ? (
        <>
          <p className="stage-label" data-testid="stage-label">
            {stageName(stage.stage, stage.stageCount)} · {layerRange(stage.layers)}
          </p>
          <p className="muted">
            Run {stage.runId}: this computer holds {formatCompact(stage.params)} of the model's parameters
            {same ? (same.miners > 1 ? `, shared with ${plural(same.miners - 1, 'other computer')}` : ', and no other computer holds them yet') : ''}.
          </p>
          <StagePicture stage={stage} dashboard={dashboard} />
        </>
      ) : (
        <p className="stage-label stage-none" data-testid="stage-label">
          No part assigned yet: when you press Start, the network gives this computer a few layers of the model to train.
        </p>
      )}
    </div>
  );
}

/** Only the last stage computes the loss; the others show the network's (when loaded) and say why. */
function lossNote(state: AppState, networkLoss: number | null): string | null {
  const stage = state.training.stage;
  if (state.training.loss !== null || !stage || stage.stage === stage.stageCount - 1) return null;
  return `Only the last stage measures the loss; this computer holds ${stageName(stage.stage).toLowerCase()}.${networkLoss !== null ? ` The whole network's: ${formatLoss(networkLoss)}.` : ''}`;
}

function useNetworkLoss(runId: string | undefined): number | null {
  return useNetwork((s) => (s.data && s.data.run_id === runId ? ([...s.data.losses].reverse().find((l) => l.loss !== null)?.loss ?? null) : null));
}

function Figures({ state }: { state: AppState }) {
  const now = useNow(1000);
  const t = state.training;
  const note = lossNote(state, useNetworkLoss(t.stage?.runId));
  return (
    <div className="card">
      <h2 className="visually-hidden">Right now</h2>
      <dl className="stats">
        <Stat label="Tokens processed" testid="tokens-count" value={formatInt(t.tokens)} raw={t.tokens} hint={`pieces of words passed through your layers, in ${plural(t.items, 'task')}`} />
        <Stat label="Speed" testid="tokens-per-s" value={`${formatNumber(t.tokensPerS)} tokens/s`} raw={t.tokensPerS} />
        <Stat label="Loss" testid="loss-value" value={formatLoss(t.loss)} raw={t.loss} hint={note ?? "how wrong the model's guesses are (lower is better)"} />
        <Stat label="Running for" testid="uptime" value={t.since !== null ? formatDuration(now - t.since) : '—'} raw={t.since !== null ? now - t.since : null} />
        <Stat label="Model version" testid="round" value={formatInt(t.round)} raw={t.round} hint="training rounds applied" />
      </dl>
    </div>
  );
}

function Contribution({ hasWallet, runId }: { hasWallet: boolean; runId: string | null }) {
  const { data, error } = useEarnings();
  // Again at once when this computer joins a run (the ledger is the run's).
  usePoll(loadEarnings, 10_000, hasWallet, [runId]);
  const p = data?.pending;
  let text: string;
  if (!hasWallet) text = 'No wallet yet, so nothing is counted.';
  else if (data === undefined) text = error ? 'Not available right now.' : 'Loading…';
  else if (data === null) text = 'Not part of a run yet: press Start to join one.';
  else if (!p) text = 'No epoch is open right now.';
  else text = `Epoch ${p.epoch} (since round ${p.from_round}): ${formatNumber(p.work)} units of work · ${plural(p.passed, 'check')} passed · ${formatInt(p.failed)} failed`;
  return (
    <div className="card">
      <h2>This epoch</h2>
      <p data-testid="epoch-contribution" data-work={p?.work} data-passed={p?.passed} data-failed={p?.failed}>
        {text}
      </p>
      <p className="muted small">Rewards are shared out per epoch, by the work each computer did and the checks it passed.</p>
      {error ? <p className="muted small">Could not update: {error}</p> : null}
    </div>
  );
}

function Charts({ state }: { state: AppState }) {
  const history = state.training.history;
  const note = lossNote(state, useNetworkLoss(state.training.stage?.runId));
  const x = useMemo(() => history.map((h) => h.t), [history]);
  const speed = useMemo(() => [{ label: 'tokens/s', values: history.map((h) => h.tokensPerS), color: '--chart-1', format: formatNumber }], [history]);
  const loss = useMemo(() => [{ label: 'loss', values: history.map((h) => h.loss), color: '--chart-2', format: (v: number) => formatLoss(v) }], [history]);
  return (
    <>
      <div className="card">
        <h2>Speed (tokens per second)</h2>
        <LineChart testid="throughput-chart" title="Speed in tokens per second" x={x} time series={speed} height={150} empty="The speed appears here while training." />
      </div>
      <div className="card">
        <h2>Loss</h2>
        <LineChart testid="loss-chart" title="Training loss" x={x} time series={loss} height={150} empty={note ?? 'The loss appears here while training.'} />
      </div>
    </>
  );
}

export function Home() {
  const state = useApp((s) => s.state);
  if (!state) return null;
  return (
    <Screen title="Home" testid="home" hideTitle>
      <TrainingControl state={state} />
      <Figures state={state} />
      <div className="grid-2">
        <div className="stack">
          <StageCard state={state} />
          <Contribution hasWallet={state.wallet !== null} runId={state.training.stage?.runId ?? null} />
        </div>
        <div className="stack">
          <Charts state={state} />
        </div>
      </div>
    </Screen>
  );
}
