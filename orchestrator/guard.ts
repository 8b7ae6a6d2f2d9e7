// Whether a reduced round looks like a fault rather than training: a loss or gradient-norm spike
// against the rounds before it, or a gradient norm that is not finite. Pure, so that its rules
// are tested on their own; the coordinator acts on the verdict (a rollback).
import type { GuardSpec } from '../orchestrator-client/protocol.ts';

export interface RoundFigures {
  /** Mean sample loss of the round (null when unknown). */
  loss: number | null;
  gradNorm: number;
}

export interface GuardVerdict {
  reason: string;
  /** The state the fault reached: a loss spike shows the previous round's update was bad. */
  badFrom: 'this_round' | 'previous_update';
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * The verdict on `current` given the rounds before it (oldest first), or null when it looks fine.
 * A loss spike is judged first: it means the weights were already bad, and their gradient then
 * spikes too, so blaming this round's gradient alone would keep the bad weights.
 */
export function judgeRound(guard: GuardSpec, previous: RoundFigures[], current: RoundFigures): GuardVerdict | null {
  const window = previous.slice(-guard.window);
  const full = window.length >= guard.window;
  const losses = window.map((r) => r.loss).filter((l): l is number => l !== null);
  if (full && guard.loss_spike > 0 && current.loss !== null && losses.length === window.length) {
    const typical = median(losses);
    if (current.loss > guard.loss_spike * typical) {
      return { reason: `loss ${current.loss.toPrecision(4)} is over ${guard.loss_spike}× the median of the last ${guard.window} rounds (${typical.toPrecision(4)})`, badFrom: 'previous_update' };
    }
  }
  if (!Number.isFinite(current.gradNorm)) return { reason: `gradient norm ${current.gradNorm}`, badFrom: 'this_round' };
  if (!full) return null;
  const norms = median(window.map((r) => r.gradNorm));
  if (guard.grad_spike > 0 && norms > 0 && current.gradNorm > guard.grad_spike * norms) {
    return { reason: `gradient norm ${current.gradNorm.toPrecision(4)} is over ${guard.grad_spike}× the median of the last ${guard.window} rounds (${norms.toPrecision(4)})`, badFrom: 'this_round' };
  }
  return null;
}
