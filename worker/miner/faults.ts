// Deliberate misbehaviour, for tests of what the swarm does with a dishonest or broken miner.
// Off unless asked for: `tah miner` reads TAH_FAULTS (e.g. TAH_FAULTS=reduce:tiny) and its hidden
// --adversary flag. Each fault makes the miner lie consistently, as a cheater would: its upload,
// digest and sums all describe the wrong result.
import { sumOfSquares } from './flat.ts';

/**
 * Ways a miner may cheat at its work items (the activations and gradients it sends on):
 * random: values of the right scale and no meaning; scaled: gradients (and its gradient sums) ×10;
 * stale: replays its first output of each kind; lazy: passes its input on as its output (a copy
 * of the upstream miner's upload) where the widths allow, else replays; nan: one value NaN;
 * subtle: adds noise of 1 % of the output's norm.
 */
export const ADVERSARIES = ['random', 'scaled', 'stale', 'lazy', 'nan', 'subtle'] as const;
export type Adversary = (typeof ADVERSARIES)[number];

export interface Faults {
  /** Reductions: off by one unit in the last place of one element ('tiny'), or random values ('garbage'). */
  reduce?: 'tiny' | 'garbage';
  /** After applying this round, nudge one weight: the replica's state no longer matches its stage's. */
  skewAfter?: number;
  /**
   * Share the gradient sum ×10⁴ once, in the first round from this one on where this replica has
   * samples (a round may give it none): a corrupted round that every reducer agrees on.
   */
  blowUpShare?: number;
  /** After applying this round, scale every weight ×20 (given to every replica of a stage, their states still agree: a bad update). */
  poisonAfter?: number;
  /** Cheats at every work item this way. */
  adversary?: Adversary;
  /**
   * An honest miner on another device: its outputs and gradient sums differ by rounding, simulated
   * as noise of this relative size (scripts/provider-drift.ts measures what devices differ by).
   */
  perturb?: number;
  /** Waits this many ms before storing the stage's state (a slow disk or link): a window to kill it in. */
  storeDelayMs?: number;
}

const USAGE = `expected a comma-separated list of: reduce:tiny, reduce:garbage, skew:ROUND, share:ROUND, poison:ROUND, perturb:RELATIVE, store-delay:MS, adversary:(${ADVERSARIES.join('|')})`;

/** Parses a TAH_FAULTS value ('' or undefined: no faults). */
export function parseFaults(spec: string | undefined): Faults {
  const faults: Faults = {};
  for (const part of (spec ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [what, how] = part.split(':');
    if (what === 'reduce' && (how === 'tiny' || how === 'garbage')) faults.reduce = how;
    else if (what === 'skew' && /^\d+$/.test(how ?? '')) faults.skewAfter = Number(how);
    else if (what === 'share' && /^\d+$/.test(how ?? '')) faults.blowUpShare = Number(how);
    else if (what === 'poison' && /^\d+$/.test(how ?? '')) faults.poisonAfter = Number(how);
    else if (what === 'perturb' && Number(how) > 0 && Number(how) < 1) faults.perturb = Number(how);
    else if (what === 'store-delay' && /^\d+$/.test(how ?? '')) faults.storeDelayMs = Number(how);
    else if (what === 'adversary' && (ADVERSARIES as readonly string[]).includes(how ?? '')) faults.adversary = how as Adversary;
    else throw new Error(`TAH_FAULTS: unknown fault '${part}' (${USAGE})`);
  }
  return faults;
}

/** Spoils a reduced slice in place as `fault` says. */
export function spoilReduction(sum: Float32Array, fault: NonNullable<Faults['reduce']>): void {
  if (sum.length === 0) return;
  if (fault === 'tiny') {
    // The next float32 after sum[0]: the smallest change there is.
    new Uint32Array(sum.buffer, sum.byteOffset, 1)[0] += 1;
    return;
  }
  for (let i = 0; i < sum.length; i++) sum[i] = (Math.random() - 0.5) * 1e-3;
}

/** A standard normal deviate (Box–Muller): adversaries need no reproducible stream. */
function gaussian(): number {
  return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
}

function norm(x: Float32Array): number {
  return Math.sqrt(sumOfSquares(x));
}

/**
 * `x` with each value off by Gaussian noise of `relative` × its own magnitude, in place: rounding
 * is relative to each value, so any part of `x` (a slice of a gradient sum) differs by ≈ `relative`.
 */
export function perturb(x: Float32Array, relative: number): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] += relative * Math.abs(x[i]) * gaussian();
  return x;
}

/** An adversarial miner's memory and its tampering with what it sends. */
export class AdversaryState {
  private readonly first = new Map<string, Float32Array>();

  constructor(readonly mode: Adversary) {}

  /**
   * What the miner sends instead of `honest`, the output of a work item of `kind` computed from
   * `input`. Returns `honest` itself (untouched) where this mode leaves that kind alone. NaN is not
   * put here: the miner's own encoder would refuse it (see blob()).
   */
  output(kind: 'activation' | 'gradient', honest: Float32Array, input: Float32Array | BigInt64Array): Float32Array {
    const replay = (): Float32Array => {
      const kept = this.first.get(kind);
      if (!kept || kept.length !== honest.length) {
        this.first.set(kind, honest.slice());
        return honest;
      }
      return kept.slice();
    };
    switch (this.mode) {
      case 'random': {
        const rms = norm(honest) / Math.sqrt(Math.max(1, honest.length));
        return Float32Array.from(honest, () => rms * gaussian());
      }
      case 'scaled':
        return kind === 'gradient' ? Float32Array.from(honest, (v) => v * 10) : honest;
      case 'stale':
        return replay();
      case 'lazy':
        return input instanceof Float32Array && input.length === honest.length ? input.slice() : replay();
      case 'subtle': {
        const scale = (0.01 * norm(honest)) / Math.sqrt(Math.max(1, honest.length));
        return Float32Array.from(honest, (v) => v + scale * gaussian());
      }
      case 'nan':
        return honest;
    }
  }

  /** Its gradient sum as shared for the merge: scaled ×10 in 'scaled' mode, else as computed. */
  share(sum: Float32Array): Float32Array {
    return this.mode === 'scaled' ? Float32Array.from(sum, (v) => v * 10) : sum;
  }

  /**
   * The encoded blob as sent: in 'nan' mode its last four bytes become a float32 NaN. Every wire
   * payload ends with float32 values (the data itself, or the last tensor, a scale) or, for 16-bit
   * codecs, with two values of which the second becomes a NaN.
   */
  blob(bytes: Uint8Array): Uint8Array {
    if (this.mode !== 'nan' || bytes.length < 4) return bytes;
    const out = new Uint8Array(bytes); // a copy (Buffer's slice would be a view)
    new DataView(out.buffer, out.byteOffset + out.length - 4, 4).setUint32(0, 0x7fc00000, true);
    return out;
  }
}
