// Deliberate misbehaviour, for tests of what the swarm does with a dishonest or broken miner.
// Off unless asked for: `tah miner` reads TAH_FAULTS (e.g. TAH_FAULTS=reduce:tiny). Each fault
// makes the miner lie consistently, as a cheater would: its upload, digest and sums all describe
// the wrong result.

export interface Faults {
  /** Reductions: off by one unit in the last place of one element ('tiny'), or random values ('garbage'). */
  reduce?: 'tiny' | 'garbage';
  /** After applying this round, nudge one weight: the replica's state no longer matches its stage's. */
  skewAfter?: number;
  /** Share this round's gradient sum ×10⁴: a corrupted round that every reducer agrees on. */
  blowUpShare?: number;
  /** After applying this round, scale every weight ×20 (given to every replica of a stage, their states still agree: a bad update). */
  poisonAfter?: number;
}

const USAGE = 'expected a comma-separated list of: reduce:tiny, reduce:garbage, skew:ROUND, share:ROUND, poison:ROUND';

/** Parses a TAH_FAULTS value ('' or undefined: no faults). */
export function parseFaults(spec: string | undefined): Faults {
  const faults: Faults = {};
  for (const part of (spec ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [what, how] = part.split(':');
    if (what === 'reduce' && (how === 'tiny' || how === 'garbage')) faults.reduce = how;
    else if (what === 'skew' && /^\d+$/.test(how ?? '')) faults.skewAfter = Number(how);
    else if (what === 'share' && /^\d+$/.test(how ?? '')) faults.blowUpShare = Number(how);
    else if (what === 'poison' && /^\d+$/.test(how ?? '')) faults.poisonAfter = Number(how);
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
