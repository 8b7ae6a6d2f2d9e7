import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bpeFromJSON, trainBpe } from '../../../worker/data/bpe.ts';
import { loadBrownCorpus } from '../../../worker/data/brown.ts';
import { buildDataset } from '../../../worker/data/dataset.ts';

const documents = loadBrownCorpus().documents;
// Train on the first ~300k characters (press reportage); hold out the last documents (humor).
const trainDocs = documents.slice(0, 40);
const heldoutDocs = documents.slice(-10);
const heldout = heldoutDocs.map((d) => d.text).join('\n\n');
const tokenizer = trainBpe(
  trainDocs.map((d) => d.text),
  { vocabSize: 1024 },
);
const utf8 = (text: string) => new TextDecoder().decode(new TextEncoder().encode(text));

test('vocabulary size, name and ids in range', () => {
  assert.ok(trainDocs.reduce((n, d) => n + d.text.length, 0) > 250_000);
  assert.equal(tokenizer.vocabSize, 1024);
  assert.equal(tokenizer.name, 'bpe-1024');
  assert.equal(tokenizer.toJSON().merges.length, 1024 - 256);
  const ids = tokenizer.encode(heldout);
  assert.ok(ids.every((id) => id >= 0 && id < 1024));
  assert.ok(ids.some((id) => id >= 1000), 'late merges are used');
});

test('round-trips corpus text', () => {
  for (const doc of [...trainDocs.slice(0, 3), ...heldoutDocs]) assert.equal(tokenizer.decode(tokenizer.encode(doc.text)), doc.text);
  assert.equal(tokenizer.decode(Array.from(tokenizer.encode(heldout))), heldout, 'plain arrays decode too');
});

test('round-trips arbitrary Unicode; lone surrogates become U+FFFD', () => {
  const texts = [
    '',
    ' ',
    '\n\n',
    '   leading and trailing   ',
    "Don't — they'll say naïve café",
    'emoji 🎉👩‍👩‍👧 and flags 🇯🇵',
    '東京都の天気は晴れです。中文，한국어',
    'combining e\u0301 and \uFEFF BOM, tabs\tand\r\nCRLF',
    'x'.repeat(5000),
    '1234567890 3.14159 1/2',
  ];
  for (const text of texts) assert.equal(tokenizer.decode(tokenizer.encode(text)), text, JSON.stringify(text.slice(0, 40)));
  for (const text of ['a\uD800b', '\uDC00', 'end \uD83D', '\uDE00\uD83D']) {
    const ids = tokenizer.encode(text);
    assert.equal(tokenizer.decode(ids), utf8(text));
    assert.ok(tokenizer.decode(ids).includes('\uFFFD'));
  }
});

test('decode never throws: invalid UTF-8 and out-of-range ids give U+FFFD', () => {
  assert.equal(tokenizer.decode([0x41, 0xe6, 0x9d]), 'A\uFFFD');
  assert.equal(tokenizer.decode([0x41, 1024, -1, 1.5, NaN, 0x42]), 'A\uFFFD\uFFFD\uFFFD\uFFFDB');
  const random = Array.from({ length: 4096 }, (_, i) => ((i * 2654435761) >>> 0) % 1100);
  assert.doesNotThrow(() => tokenizer.decode(random));
});

/** The textbook algorithm: recount every pair before every merge. */
function naiveMerges(texts: string[], vocabSize: number): [number, number][] {
  const chunks = texts.flatMap((t) => t.match(/'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu) ?? []);
  let words = chunks.map((c) => Array.from(new TextEncoder().encode(c)));
  const merges: [number, number][] = [];
  while (merges.length < vocabSize - 256) {
    const counts = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) counts.set(`${w[i]},${w[i + 1]}`, (counts.get(`${w[i]},${w[i + 1]}`) ?? 0) + 1);
    let best: [number, number] = [Infinity, Infinity];
    let bestCount = 0;
    for (const [key, c] of counts) {
      const [a, b] = key.split(',').map(Number);
      if (c > bestCount || (c === bestCount && (a < best[0] || (a === best[0] && b < best[1])))) [best, bestCount] = [[a, b], c];
    }
    const id = 256 + merges.length;
    merges.push(best);
    words = words.map((w) => {
      const out: number[] = [];
      for (let i = 0; i < w.length; i++) {
        const hit = w[i] === best[0] && w[i + 1] === best[1];
        out.push(hit ? id : w[i]);
        if (hit) i++;
      }
      return out;
    });
  }
  return merges;
}

test('deterministic, and equal to recounting every pair at every step', () => {
  const texts = documents.slice(100, 103).map((d) => d.text.slice(0, 8000));
  texts.push('aaaaaaa aaaa abababab', '🎉🎉🎉🎉');
  const a = trainBpe(texts, { vocabSize: 256 + 300 }).toJSON();
  const b = trainBpe(texts, { vocabSize: 256 + 300 }).toJSON();
  assert.deepEqual(a, b);
  assert.deepEqual(a.merges, naiveMerges(texts, 256 + 300));
  assert.deepEqual(trainBpe(trainDocs.map((d) => d.text), { vocabSize: 1024 }).toJSON(), tokenizer.toJSON());
});

test('compresses held-out text clearly better than bytes', (t) => {
  const bytes = Buffer.byteLength(heldout);
  const tokensPerByte = tokenizer.encode(heldout).length / bytes;
  t.diagnostic(`bpe-1024 on ${bytes} held-out bytes: ${tokensPerByte.toFixed(3)} tokens/byte (${(1 / tokensPerByte).toFixed(2)} bytes/token)`);
  assert.ok(tokensPerByte < 0.45, `${tokensPerByte}`);
});

test('works as a dataset tokenizer', () => {
  const dataset = buildDataset({ documents: documents.slice(0, 20) }, tokenizer, { shards: 2 });
  assert.equal(dataset.vocabSize, 1024);
  assert.ok(dataset.train.every((id) => id < 1024) && dataset.heldout.every((id) => id < 1024));
});

test('toJSON / bpeFromJSON round trip', () => {
  const json = JSON.parse(JSON.stringify(tokenizer));
  assert.equal(json.type, 'bpe');
  const restored = bpeFromJSON(json);
  assert.deepEqual(restored.toJSON(), tokenizer.toJSON());
  assert.equal(restored.name, tokenizer.name);
  assert.deepEqual(restored.encode(heldout), tokenizer.encode(heldout));
  const bytesOnly = bpeFromJSON({ type: 'bpe', vocabSize: 256, merges: [] });
  assert.deepEqual(Array.from(bytesOnly.encode('hé')), [0x68, 0xc3, 0xa9]);
});

test('bpeFromJSON rejects malformed input with one clear line', () => {
  const good = tokenizer.toJSON();
  const merges = good.merges;
  const cases: [unknown, RegExp][] = [
    [null, /expected object/],
    ['bpe', /expected object/],
    [{ ...good, type: 'byte' }, /type: .*"bpe"/],
    [{ ...good, vocabSize: 1024.5 }, /vocabSize: .*int/i],
    [{ ...good, vocabSize: 100 }, /vocabSize: .*256/],
    [{ ...good, merges: merges.slice(1) }, /merges: has 767 entries, vocabSize 1024 needs 768/],
    [{ type: 'bpe', vocabSize: 257, merges: [[256, 1]] }, /merges\.0: \[256, 1\] uses an id ≥ 256, the id it defines/],
    [{ type: 'bpe', vocabSize: 258, merges: [[1, 2], [1, 258]] }, /merges\.1: \[1, 258\] uses an id ≥ 257/],
    [{ type: 'bpe', vocabSize: 258, merges: [[1, 2], [1, 2]] }, /merges\.1: \[1, 2\] repeats an earlier merge/],
    [{ type: 'bpe', vocabSize: 257, merges: [[1, -2]] }, /merges\.0\.1: /],
    [{ type: 'bpe', vocabSize: 257, merges: [[1, 2, 3]] }, /merges\.0: /],
    [{ type: 'bpe', vocabSize: 257, merges: [['a', 2]] }, /merges\.0\.0: .*number/],
    [{ ...good, extra: 1 }, /extra/],
    [{ type: 'bpe', vocabSize: 1024, merges: merges.map(([, b]) => [2000, b]) }, /and 765 more$/],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => bpeFromJSON(value),
      (e: Error) => e.message.startsWith('bpeFromJSON: invalid BPE tokenizer: ') && message.test(e.message) && !e.message.includes('\n'),
      JSON.stringify(value)?.slice(0, 80),
    );
  }
});

test('trainBpe rejects a bad vocabulary size or too little text', () => {
  assert.throws(() => trainBpe(['hello'], { vocabSize: 255 }), /vocabSize must be an integer in \[256, /);
  assert.throws(() => trainBpe(['hello'], { vocabSize: 300.5 }), RangeError);
  // 'ab' and ' cd' give (a, b), (space, c), then (space c, d).
  assert.throws(() => trainBpe(['ab cd'], { vocabSize: 300 }), /the texts allow only 3 merges; vocabSize 300 needs 44/);
  assert.equal(trainBpe([], { vocabSize: 256 }).vocabSize, 256);
});

test('full Brown corpus, vocabulary 4096: training and encoding take seconds', (t) => {
  const texts = documents.map((d) => d.text);
  let started = performance.now();
  const bpe = trainBpe(texts, { vocabSize: 4096 });
  const trainMs = performance.now() - started;
  const all = texts.join('\n\n');
  started = performance.now();
  const ids = bpe.encode(all);
  const encodeMs = performance.now() - started;
  const bytes = Buffer.byteLength(all);
  t.diagnostic(
    `train ${(trainMs / 1000).toFixed(2)} s; encode ${(encodeMs / 1000).toFixed(2)} s for ${bytes} bytes → ${ids.length} tokens ` +
      `(${(ids.length / bytes).toFixed(3)} tokens/byte)`,
  );
  assert.equal(bpe.decode(ids), all);
  assert.ok(trainMs < 15_000 && encodeMs < 15_000);
});
