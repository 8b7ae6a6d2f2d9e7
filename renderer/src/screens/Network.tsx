// The app's Network screen: the dashboard of the run this computer joins (or the orchestrator's
// newest), through the bridge, refreshed every 5 seconds while shown.
import { Screen } from '../components/Screen.tsx';
import { formatTime } from '../format.ts';
import { usePoll } from '../hooks.ts';
import { useApp } from '../stores/app.ts';
import { loadNetwork, useNetwork } from '../stores/network.ts';
import { NetworkView } from './NetworkView.tsx';

export function Network() {
  const { data, error, loading, updatedAt } = useNetwork();
  const self = useApp((s) => s.state?.wallet?.address ?? null);
  const orchestrator = useApp((s) => s.state?.settings.orchestratorUrl);
  usePoll(() => loadNetwork(), 5_000);
  return (
    <Screen title="Network" intro="Everyone training this model together, as the orchestrator (the service that hands out the work) sees it.">
      <div className="toolbar">
        <button type="button" data-testid="network-refresh" onClick={() => void loadNetwork()} disabled={loading}>
          Refresh
        </button>
        {updatedAt ? <span className="muted small">Updated {formatTime(updatedAt)}</span> : null}
      </div>
      {error ? (
        <div className="error-box" role="alert" data-testid="network-error">
          <p>{error}</p>
          <p className="small">
            {data ? 'Showing the last figures received. ' : ''}The orchestrator address is {orchestrator ?? 'not set'}; you can change it in Settings.
          </p>
        </div>
      ) : null}
      {data ? <NetworkView d={data} self={self} /> : !error ? <p className="muted">Loading…</p> : null}
    </Screen>
  );
}
