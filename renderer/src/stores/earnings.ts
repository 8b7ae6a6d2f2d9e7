// This computer's rewards in the run it joined (earnings:get): closed epochs, the open epoch's
// work so far, and the flags that reduced a share. Loaded by the Home and Earnings screens.
import { create } from 'zustand';
import type { MinerRewards } from '../../../orchestrator-client/protocol.ts';
import { query } from './app.ts';

interface EarningsStore {
  /** undefined: not loaded yet; null: no run joined yet, or no wallet. */
  data: MinerRewards | null | undefined;
  error: string | null;
  loading: boolean;
  updatedAt: number | null;
}

export const useEarnings = create<EarningsStore>(() => ({ data: undefined, error: null, loading: false, updatedAt: null }));

export async function loadEarnings(): Promise<void> {
  if (useEarnings.getState().loading) return;
  useEarnings.setState({ loading: true });
  const r = await query((b) => b.call('earnings:get'));
  if (r.ok) useEarnings.setState({ data: r.value, error: null, loading: false, updatedAt: Date.now() });
  else useEarnings.setState({ error: r.error, loading: false });
}
