import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byteTokenizer } from '../../../worker/data/tokenizer.ts';

test('byte tokenizer round-trips text', () => {
  assert.equal(byteTokenizer.vocabSize, 256);
  for (const text of ['', 'Hello, world.\n\n', 'naïve café — 東京 🎉', '\uFEFFleading BOM']) {
    const ids = byteTokenizer.encode(text);
    assert.ok(ids.every((id) => id >= 0 && id < 256));
    assert.equal(ids.length, Buffer.byteLength(text));
    assert.equal(byteTokenizer.decode(ids), text);
    assert.equal(byteTokenizer.decode(Array.from(ids)), text);
  }
});

test('byte tokenizer decode never throws on invalid input', () => {
  assert.equal(byteTokenizer.decode([0xff, 0x41]), '\uFFFDA');
  assert.equal(byteTokenizer.decode([0x41, 0xe6, 0x9d]), 'A\uFFFD', 'truncated multi-byte sequence');
  assert.equal(byteTokenizer.decode([0xc3]), '\uFFFD');
  assert.equal(byteTokenizer.decode([0x41, 256, -1, 1.5, 0x42]), 'A\uFFFD\uFFFD\uFFFDB', 'ids outside the vocabulary');
  const random = Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24);
  assert.doesNotThrow(() => byteTokenizer.decode(random));
});
