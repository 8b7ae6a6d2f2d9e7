// Byte-level BPE (GPT-2 style): 256 byte tokens, then one token per learned
// merge of two earlier tokens. Works on UTF-8 bytes, so any string encodes
// without unknown tokens and decoding is the byte tokenizer's, merge by merge.
import { z } from 'zod';
import type { Tokenizer } from './tokenizer.ts';

/** Largest vocabulary accepted: keeps pair keys (a * vocabSize + b) exact and ids in an Int32Array. */
export const BPE_MAX_VOCAB = 1 << 20;

export interface BpeJSON {
  type: 'bpe';
  vocabSize: number;
  /** merges[i] = [a, b]: token 256 + i is token a followed by token b. */
  merges: [number, number][];
}

export interface BpeTokenizer extends Tokenizer {
  /** Everything needed to rebuild the tokenizer exactly (for checkpoint metadata). */
  toJSON(): BpeJSON;
}

// GPT-2's pre-split: contractions, an optional space + a run of letters, digits
// or other symbols, and whitespace (a run gives its last space to the next
// word). Merges never cross chunks, so " the" becomes one token but "e." never
// does. The alternatives cover every code point (a lone surrogate falls in the
// symbol class), so the chunks always rejoin to the whole text.
const CHUNK = /'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const encoder = new TextEncoder();
// Non-fatal like the byte tokenizer: invalid UTF-8 becomes U+FFFD.
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** `word` with every non-overlapping (a, b), left to right, replaced by `id`; null if there is none. */
function mergeWord(word: ArrayLike<number>, a: number, b: number, id: number): number[] | null {
  let out: number[] | null = null;
  for (let i = 0; i < word.length; i++) {
    if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
      out ??= Array.prototype.slice.call(word, 0, i) as number[];
      out.push(id);
      i++;
    } else out?.push(word[i]);
  }
  return out;
}

/** Max-heap of (count, pair key): the highest count first, ties to the smaller key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  private before(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }

  push(count: number, key: number): void {
    let i = this.counts.push(count) - 1;
    this.keys.push(key);
    for (let p = (i - 1) >> 1; i > 0 && this.before(i, p); i = p, p = (i - 1) >> 1) this.swap(i, p);
  }

  pop(): [count: number, key: number] | undefined {
    if (this.counts.length === 0) return undefined;
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const last = this.counts.length - 1;
    this.swap(0, last);
    this.counts.pop();
    this.keys.pop();
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < last && this.before(l, m)) m = l;
      if (r < last && this.before(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }
}

function checkVocabSize(where: string, vocabSize: number): void {
  if (!Number.isInteger(vocabSize) || vocabSize < 256 || vocabSize > BPE_MAX_VOCAB) {
    throw new RangeError(`${where}: vocabSize must be an integer in [256, ${BPE_MAX_VOCAB}], got ${vocabSize}`);
  }
}

/**
 * Learn vocabSize − 256 merges from `texts`. Each step merges the most frequent
 * adjacent pair (ties: the smaller pair of ids), so the result depends only on
 * the texts. Throws if the texts run out of pairs before the vocabulary is full.
 */
export function trainBpe(texts: Iterable<string>, { vocabSize }: { vocabSize: number }): BpeTokenizer {
  checkVocabSize('trainBpe', vocabSize);
  const V = vocabSize;
  // A corpus repeats few distinct chunks, so count each once with its frequency.
  const chunkCounts = new Map<string, number>();
  for (const text of texts) {
    for (const [chunk] of text.matchAll(CHUNK)) chunkCounts.set(chunk, (chunkCounts.get(chunk) ?? 0) + 1);
  }
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [chunk, n] of chunkCounts) {
    words.push(Array.from(encoder.encode(chunk)));
    freq.push(n);
  }

  const counts = new Map<number, number>(); // pair key a * V + b → occurrences
  const where = new Map<number, number[]>(); // pair key → words that held it (some may no longer)
  const fresh = new Set<number>(); // keys of pairs created by the current merge
  // Add (sign +1) or remove (−1) the pairs of words[w]; pairs containing
  // `newId` (all pairs when it is −1) are indexed and marked fresh.
  const countPairs = (w: number, sign: 1 | -1, newId: number) => {
    const word = words[w];
    for (let i = 0; i + 1 < word.length; i++) {
      const key = word[i] * V + word[i + 1];
      const c = (counts.get(key) ?? 0) + sign * freq[w];
      if (c > 0) counts.set(key, c);
      else counts.delete(key);
      if (sign > 0 && (newId < 0 || word[i] === newId || word[i + 1] === newId)) {
        const list = where.get(key);
        if (!list) where.set(key, [w]);
        else if (list[list.length - 1] !== w) list.push(w);
        fresh.add(key);
      }
    }
  };
  for (let w = 0; w < words.length; w++) countPairs(w, 1, -1);

  const heap = new PairHeap();
  const merges: [number, number][] = [];
  const visited = new Int32Array(words.length).fill(-1); // last merge id that touched each word
  while (merges.length < V - 256) {
    // A merge only lowers the counts of pairs that already existed, and new
    // pairs go in with their full count, so an entry whose count is out of date
    // is too high: re-queue it with the current count and look again.
    for (const key of fresh) heap.push(counts.get(key)!, key);
    fresh.clear();
    const top = heap.pop();
    if (!top) throw new RangeError(`trainBpe: the texts allow only ${merges.length} merges; vocabSize ${V} needs ${V - 256}`);
    const [count, key] = top;
    const current = counts.get(key) ?? 0;
    if (current !== count) {
      if (current > 0) heap.push(current, key);
      continue;
    }
    const a = Math.floor(key / V);
    const b = key % V;
    const id = 256 + merges.length;
    merges.push([a, b]);
    // Only words that contain the pair change: rewrite those and recount their pairs.
    for (const w of where.get(key)!) {
      if (visited[w] === id) continue;
      visited[w] = id;
      const merged = mergeWord(words[w], a, b, id);
      if (!merged) continue;
      countPairs(w, -1, id);
      words[w] = merged;
      countPairs(w, 1, id);
    }
    where.delete(key);
  }
  return new Bpe(V, merges);
}

// Memoised chunk encodings are dropped past this many, so arbitrary text cannot grow memory forever.
const CACHE_LIMIT = 1 << 18;

class Bpe implements BpeTokenizer {
  readonly name: string;
  private readonly ranks = new Map<number, number>(); // pair key → merge index (lower applies first)
  private readonly pieces: Uint8Array[] = []; // the bytes of every token id
  private readonly cache = new Map<string, Int32Array>();

  /** `merges` must be valid (trainBpe and bpeFromJSON guarantee it). */
  constructor(
    readonly vocabSize: number,
    private readonly merges: [number, number][],
  ) {
    this.name = `bpe-${vocabSize}`;
    for (let i = 0; i < 256; i++) this.pieces.push(Uint8Array.of(i));
    merges.forEach(([a, b], i) => {
      this.ranks.set(a * vocabSize + b, i);
      const piece = new Uint8Array(this.pieces[a].length + this.pieces[b].length);
      piece.set(this.pieces[a]);
      piece.set(this.pieces[b], this.pieces[a].length);
      this.pieces.push(piece);
    });
  }

  /** Apply merges in the order they were learned, as training did. */
  private encodeChunk(chunk: string): Int32Array {
    let word: ArrayLike<number> = encoder.encode(chunk);
    for (;;) {
      let best = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const rank = this.ranks.get(word[i] * this.vocabSize + word[i + 1]);
        if (rank !== undefined && rank < best) best = rank;
      }
      if (best === Infinity) return Int32Array.from(word);
      const [a, b] = this.merges[best];
      word = mergeWord(word, a, b, 256 + best)!;
    }
  }

  encode(text: string): Int32Array {
    let out = new Int32Array(Math.max(16, text.length >> 1));
    let n = 0;
    for (const [chunk] of text.matchAll(CHUNK)) {
      let ids = this.cache.get(chunk);
      if (!ids) {
        ids = this.encodeChunk(chunk);
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(chunk, ids);
      }
      if (n + ids.length > out.length) {
        const grown = new Int32Array(2 * (n + ids.length));
        grown.set(out.subarray(0, n));
        out = grown;
      }
      out.set(ids, n);
      n += ids.length;
    }
    return out.slice(0, n);
  }

  decode(ids: ArrayLike<number>): string {
    // Ids outside the vocabulary decode as the byte 0xFF, never valid UTF-8, hence U+FFFD.
    const invalid = Uint8Array.of(0xff);
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const piece = Number.isInteger(id) && id >= 0 && id < this.vocabSize ? this.pieces[id] : invalid;
      parts.push(piece);
      total += piece.length;
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const piece of parts) {
      bytes.set(piece, at);
      at += piece.length;
    }
    return decoder.decode(bytes);
  }

  toJSON(): BpeJSON {
    return { type: 'bpe', vocabSize: this.vocabSize, merges: this.merges.map(([a, b]): [number, number] => [a, b]) };
  }
}

const tokenId = z.number().int().nonnegative();
const BpeJSONSchema = z
  .strictObject({
    type: z.literal('bpe'),
    vocabSize: z.number().int().min(256).max(BPE_MAX_VOCAB),
    merges: z.array(z.tuple([tokenId, tokenId])),
  })
  .superRefine(({ vocabSize, merges }, ctx) => {
    if (merges.length !== vocabSize - 256) {
      ctx.addIssue({ code: 'custom', path: ['merges'], message: `has ${merges.length} entries, vocabSize ${vocabSize} needs ${vocabSize - 256}` });
    }
    const seen = new Set<number>();
    merges.forEach(([a, b], i) => {
      // A merge may only join tokens that exist already: no cycles, and decoding stays finite.
      if (a >= 256 + i || b >= 256 + i) {
        ctx.addIssue({ code: 'custom', path: ['merges', i], message: `[${a}, ${b}] uses an id ≥ ${256 + i}, the id it defines` });
      } else if (seen.has(a * BPE_MAX_VOCAB + b)) {
        ctx.addIssue({ code: 'custom', path: ['merges', i], message: `[${a}, ${b}] repeats an earlier merge` });
      }
      seen.add(a * BPE_MAX_VOCAB + b);
    });
  });

/** Rebuild a tokenizer from `toJSON()` output; throws one line naming the first problems. */
export function bpeFromJSON(value: unknown): BpeTokenizer {
  const r = BpeJSONSchema.safeParse(value);
  if (!r.success) {
    const issues = r.error.issues;
    const problems = issues.slice(0, 3).map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
    if (issues.length > 3) problems.push(`and ${issues.length - 3} more`);
    throw new Error(`bpeFromJSON: invalid BPE tokenizer: ${problems.join('; ')}`);
  }
  return new Bpe(r.data.vocabSize, r.data.merges);
}
