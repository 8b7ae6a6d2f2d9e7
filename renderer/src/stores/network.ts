// The swarm at a glance (the orchestrator's public Dashboard). In the app it comes through the
// bridge (network:get: main asks the orchestrator); in dashboard mode — the page served by the
// orchestrator itself — it is the one thing the renderer fetches, from its own origin.
import { create } from 'zustand';
import type { Dashboard } from '../../../orchestrator-client/protocol.ts';
import { messageOf, mode } from '../bridge.ts';
import { query } from './app.ts';

interface NetworkStore {
  data: Dashboard | null;
  error: string | null;
  loading: boolean;
  updatedAt: number | null;
  source: 'bridge' | 'http';
}

export const useNetwork = create<NetworkStore>(() => ({ data: null, error: null, loading: false, updatedAt: null, source: mode.kind === 'dashboard' ? 'http' : 'bridge' }));

/** Dashboard mode: GET /v1/dashboard (the newest run) or /v1/runs/<run>/dashboard. */
async function fetchDashboard(runId: string | null): Promise<Dashboard> {
  const path = runId ? `/v1/runs/${encodeURIComponent(runId)}/dashboard` : '/v1/dashboard';
  let res: Response;
  try {
    res = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
  } catch (e) {
    throw new Error(`Cannot reach the orchestrator (${messageOf(e)}).`, { cause: e });
  }
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
    throw new Error(typeof message === 'string' ? message : `The orchestrator answered ${res.status} ${res.statusText}.`);
  }
  const d = body as Partial<Dashboard> | null;
  if (!d || typeof d.run_id !== 'string' || !Array.isArray(d.stages) || !Array.isArray(d.losses)) throw new Error('The orchestrator sent something that is not a dashboard.');
  return d as Dashboard;
}

/** Bumped when the run shown changes, so that an answer for the previous one is dropped. */
let generation = 0;

/** Loads the dashboard once; `runId` only in dashboard mode (the /runs/<run> route). */
export async function loadNetwork(runId: string | null = null): Promise<void> {
  const s = useNetwork.getState();
  if (s.loading) return;
  useNetwork.setState({ loading: true });
  const mine = generation;
  let r: { ok: true; value: Dashboard } | { ok: false; error: string };
  if (s.source === 'http') {
    try {
      r = { ok: true, value: await fetchDashboard(runId) };
    } catch (e) {
      r = { ok: false, error: messageOf(e) };
    }
  } else {
    r = await query((b) => b.call('network:get'));
  }
  if (mine !== generation) return;
  if (r.ok) useNetwork.setState({ data: r.value, error: null, loading: false, updatedAt: Date.now() });
  else useNetwork.setState({ error: r.error, loading: false });
}

/** Forget what was shown (another run was picked on the dashboard). */
export function resetNetwork(): void {
  generation++;
  useNetwork.setState({ data: null, error: null, loading: false, updatedAt: null });
}
