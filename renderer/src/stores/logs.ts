// The newest lines of the app's and the worker's logs (logs:recent), for the Logs screen.
import { create } from 'zustand';
import { query } from './app.ts';

interface LogsStore {
  lines: string[] | null;
  error: string | null;
  loading: boolean;
  updatedAt: number | null;
}

export const useLogs = create<LogsStore>(() => ({ lines: null, error: null, loading: false, updatedAt: null }));

export async function loadLogs(): Promise<void> {
  if (useLogs.getState().loading) return;
  useLogs.setState({ loading: true });
  const r = await query((b) => b.call('logs:recent'));
  if (r.ok) useLogs.setState({ lines: r.value.lines, error: null, loading: false, updatedAt: Date.now() });
  else useLogs.setState({ error: r.error, loading: false });
}
