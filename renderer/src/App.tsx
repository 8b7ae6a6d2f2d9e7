// The desktop app's shell: connecting, then onboarding until it is done, then the screens behind
// the navigation, with the notices above and the updater's line below.
import type { ReactNode } from 'react';
import type { AppState } from '../../electron/ipc-contract.ts';
import { Nav } from './components/Nav.tsx';
import { Notices } from './components/Notices.tsx';
import { Updater } from './components/Updater.tsx';
import { Earnings } from './screens/Earnings.tsx';
import { Home, describeTraining } from './screens/Home.tsx';
import { Logs } from './screens/Logs.tsx';
import { Network } from './screens/Network.tsx';
import { Onboarding } from './screens/Onboarding.tsx';
import { Settings } from './screens/Settings.tsx';
import { connect, useApp } from './stores/app.ts';
import { type Route, useUi } from './stores/ui.ts';

function screenOf(route: Route): ReactNode {
  switch (route.name) {
    case 'earnings':
      return <Earnings />;
    case 'network':
      return <Network />;
    case 'settings':
      return <Settings />;
    case 'logs':
      return <Logs />;
    default:
      return <Home />;
  }
}

/** The connection to the app itself: before the first state, or lost (the browser host stopped). */
function ConnectionProblem({ full }: { full: boolean }) {
  const connection = useApp((s) => s.connection);
  const error = useApp((s) => s.connectionError);
  if (connection === 'open') return null;
  if (connection === 'connecting') return full ? <p className="center muted">Connecting to the app…</p> : null;
  return (
    <div className={full ? 'center error-box' : 'error-box banner'} role="alert" data-testid="connection-error">
      <p>{connection === 'lost' ? 'The connection to the app was lost: is it still running?' : `Cannot connect to the app: ${error ?? 'no answer'}.`}</p>
      <button type="button" onClick={() => void connect()}>
        Try again
      </button>
    </div>
  );
}

function StatusPill({ state }: { state: AppState }) {
  return (
    <span className={`pill status-${state.training.status}`} data-testid="status-pill" title={describeTraining(state.training).detail}>
      {describeTraining(state.training).headline}
    </span>
  );
}

export function App() {
  const state = useApp((s) => s.state);
  const route = useUi((s) => s.route);
  if (!state) {
    return (
      <main className="boot">
        <ConnectionProblem full />
      </main>
    );
  }
  if (!state.settings.onboarded) {
    return (
      <div className="app">
        <ConnectionProblem full={false} />
        <Onboarding notices={<Notices />} />
        <footer className="footer">
          <Updater updater={state.updater} version={state.version} training={state.training.status} />
        </footer>
      </div>
    );
  }
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">Train at Home</span>
        <Nav />
        <StatusPill state={state} />
      </header>
      <ConnectionProblem full={false} />
      <main id="main">
        <Notices />
        {screenOf(route)}
      </main>
      <footer className="footer">
        <Updater updater={state.updater} version={state.version} training={state.training.status} />
      </footer>
    </div>
  );
}
