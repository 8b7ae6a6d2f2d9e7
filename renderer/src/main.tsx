// The renderer's entry: picks the shell for this page (the app, or the public dashboard when the
// orchestrator serves it), mounts React and opens the bridge.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { App } from './App.tsx';
import { DashboardApp } from './DashboardApp.tsx';
import { mode } from './bridge.ts';
import { connect } from './stores/app.ts';

const container = document.getElementById('root');
if (!container) throw new Error('index.html has no #root');
const root = createRoot(container);
if (mode.kind === 'dashboard') {
  root.render(
    <StrictMode>
      <DashboardApp />
    </StrictMode>,
  );
} else {
  root.render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
  void connect();
}
