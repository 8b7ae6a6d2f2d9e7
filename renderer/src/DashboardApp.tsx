// Dashboard mode: the page served by the orchestrator itself (no app behind it), showing only the
// public network dashboard of the newest run, or of the run in the address (/runs/<run>),
// refreshed every 5 seconds.
import { useEffect } from 'react';
import { formatTime } from './format.ts';
import { useFocusOnNavigate, usePoll } from './hooks.ts';
import { NetworkView } from './screens/NetworkView.tsx';
import { loadNetwork, resetNetwork, useNetwork } from './stores/network.ts';
import { hrefOf, navigate, useUi } from './stores/ui.ts';

export function DashboardApp() {
  const route = useUi((s) => s.route);
  const runId = route.name === 'run' ? route.runId : null;
  const { data, error, updatedAt } = useNetwork();
  const heading = useFocusOnNavigate<HTMLHeadingElement>();
  useEffect(() => resetNetwork(), [runId]);
  usePoll(() => loadNetwork(runId), 5_000, true, [runId]);
  useEffect(() => {
    document.title = data ? `${data.run_id} · Train at Home` : 'Train at Home · network';
  }, [data]);
  return (
    <div className="app dashboard">
      <header className="topbar">
        <span className="brand">Train at Home</span>
        <span className="muted">public network dashboard</span>
        {runId ? (
          <a
            href={hrefOf({ name: 'home' })}
            onClick={(e) => {
              e.preventDefault();
              navigate({ name: 'home' });
            }}
          >
            Newest run
          </a>
        ) : null}
      </header>
      <main id="main">
        <section className="screen" aria-labelledby="screen-title">
          <h1 id="screen-title" ref={heading} tabIndex={-1}>
            The network
          </h1>
          <p className="intro">People around the world train one language model together: each home computer holds a few layers of it. This page shows the training as it happens.</p>
          {error ? (
            <div className="error-box" role="alert" data-testid="network-error">
              <p>{error}</p>
              {data ? <p className="small">Showing the figures from {formatTime(updatedAt ?? Date.now())}.</p> : null}
            </div>
          ) : null}
          {data ? <NetworkView d={data} /> : !error ? <p className="muted">Loading…</p> : null}
        </section>
      </main>
    </div>
  );
}
