// The seam to an on-chain settlement. Paying rewards on Bittensor means a validator sets weights
// on the subnet from each epoch's shares; this repository stops at the shares (the ledger) and
// defines the interface such a settler implements, with the conversion Bittensor expects.

/** One closed epoch's shares, as the ledger holds them (shares sum to 1 over miners with a score). */
export interface EpochShares {
  run_id: string;
  epoch: number;
  shares: { hotkey: string; share: number }[];
}

/**
 * Sets weights from an epoch's shares, e.g. on a Bittensor subnet (`set_weights` with the hotkeys'
 * UIDs from the metagraph). Called once per closed epoch, after the ledger has it; a failure is
 * logged and the shares stay in the ledger to be settled again.
 */
export interface WeightSetter {
  setWeights(netuid: number, epoch: EpochShares, weights: { hotkey: string; weight: number }[]): Promise<void>;
}

/**
 * Shares as Bittensor's u16 weights: scaled so the largest is 65535 (what the chain's
 * normalisation does), rounded, and zero weights left out.
 */
export function toU16Weights(shares: readonly { hotkey: string; share: number }[]): { hotkey: string; weight: number }[] {
  const max = Math.max(0, ...shares.map((s) => s.share));
  if (!(max > 0)) return [];
  return shares.map((s) => ({ hotkey: s.hotkey, weight: Math.round((s.share / max) * 65535) })).filter((w) => w.weight > 0);
}
