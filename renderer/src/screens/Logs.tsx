// Logs and diagnostics: the newest log lines (logs:recent, already redacted by main) and the
// "Export diagnostics" file to send when asking for help.
import { useEffect, useRef, useState } from 'react';
import { ErrorText } from '../components/ErrorText.tsx';
import { Screen } from '../components/Screen.tsx';
import { formatTime } from '../format.ts';
import { actions, useApp } from '../stores/app.ts';
import { loadLogs, useLogs } from '../stores/logs.ts';

function Diagnostics() {
  const busy = useApp((s) => !!s.busy.diagnostics);
  const error = useApp((s) => s.errors.diagnostics);
  const [result, setResult] = useState<string | null>(null);
  return (
    <div className="card">
      <h2>Diagnostics</h2>
      <p className="muted">One file with the logs, the settings and a report of this computer, with keys and passwords removed. Send it along when you ask for help.</p>
      <button
        type="button"
        data-testid="diagnostics-export"
        disabled={busy}
        onClick={() => {
          setResult(null);
          void actions.exportDiagnostics().then((r) => {
            if (r.ok) setResult(r.value ? `Saved to ${r.value.path}` : 'Export cancelled.');
          });
        }}
      >
        Export diagnostics…
      </button>
      {result ? (
        <p className="success-text" role="status" data-testid="diagnostics-result">
          {result}
        </p>
      ) : null}
      <ErrorText message={error} testid="diagnostics-error" />
    </div>
  );
}

function RecentLogs() {
  const { lines, error, loading, updatedAt } = useLogs();
  const view = useRef<HTMLPreElement>(null);
  useEffect(() => {
    void loadLogs();
  }, []);
  useEffect(() => {
    const el = view.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines]);
  return (
    <div className="card">
      <div className="card-head">
        <h2 id="logs-title">Recent log lines</h2>
        <button type="button" data-testid="logs-refresh" onClick={() => void loadLogs()} disabled={loading}>
          Refresh
        </button>
        {updatedAt ? <span className="muted small">Updated {formatTime(updatedAt)}</span> : null}
      </div>
      <ErrorText message={error} testid="logs-error" />
      <pre className="logs" ref={view} data-testid="logs-view" data-lines={lines?.length ?? 0} tabIndex={0} aria-labelledby="logs-title">
        {lines === null ? 'Loading…' : lines.length === 0 ? 'No log lines yet.' : lines.join('\n')}
      </pre>
    </div>
  );
}

export function Logs() {
  return (
    <Screen title="Logs" intro="What the app and the training have been doing, for when something does not work as expected.">
      <Diagnostics />
      <RecentLogs />
    </Screen>
  );
}
