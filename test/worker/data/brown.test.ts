import { test } from 'node:test';
import assert from 'node:assert/strict';
import { brownToText, loadBrownCorpus, stripTag } from '../../../worker/data/brown.ts';

const started = performance.now();
const corpus = loadBrownCorpus();
const loadMs = performance.now() - started;
const all = corpus.documents.map((d) => d.text).join('\n\n');

test(`loads the 500 Brown category files (${loadMs.toFixed(0)} ms, ${all.length} chars)`, () => {
  assert.equal(corpus.documents.length, 500);
  const ids = corpus.documents.map((d) => d.id);
  assert.ok(ids.every((id) => /^c[a-r]\d\d$/.test(id)));
  assert.deepEqual(ids, [...ids].sort());
  assert.ok(corpus.documents.every((d) => d.text.length > 1000));
  assert.ok(all.length > 5_000_000 && all.length < 7_000_000);
  assert.equal(loadBrownCorpus(), corpus, 'cached');
});

test('part-of-speech tags are stripped', () => {
  // Common tags, with their -tl / -hl / $ variants, never follow a word.
  assert.doesNotMatch(all, /\w{2}\/(at|nn|nns|np|in|jj|vbd|vbn|cc|rb|cs|ppss?|\.|,)(-tl|-hl|\$)*(\s|$)/);
  assert.ok(!all.includes('``') && !all.includes("''"), 'quote tokens converted');
  // The only slashes left are in words such as 1/2, and/or, mg/l.
  assert.ok((all.match(/\//g) ?? []).length < 300, 'tags would leave over a million');
  assert.match(all, / 1\/2 /);
  assert.match(all, /and\/or/);
});

test('a known sentence from ca01 reads as English', () => {
  const ca01 = corpus.documents.find((d) => d.id === 'ca01')!.text;
  assert.ok(
    ca01.startsWith(
      `The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced "no evidence" that any irregularities took place.\n`,
    ),
  );
  assert.ok(ca01.includes('The jury further said in term-end presentments that the City Executive Committee, which'));
  assert.ok(ca01.includes('won by Mayor-nominate Ivan Allen Jr.\n"Only a relative handful of such reports was received," the jury said'));
  assert.ok(ca01.includes('\nMerger proposed\n'), 'headlines on their own line');
});

test('punctuation spacing is detokenized', () => {
  assert.doesNotMatch(all, / [,.;?!)](\s|$)/);
  assert.doesNotMatch(all, /\( /);
  assert.doesNotMatch(all, /([;?!])\1/, 'doubled sentence marks removed');
  assert.doesNotMatch(all, /[^\S\n]{2}|^ | $/m, 'whitespace collapsed');
});

test('stripTag splits at the last slash', () => {
  assert.equal(stripTag('Fulton/np-tl'), 'Fulton');
  assert.equal(stripTag('1/2/cd'), '1/2');
  assert.equal(stripTag('14-1/2/cd'), '14-1/2');
  assert.equal(stripTag('//in'), '/');
  assert.equal(stripTag('--/---hl'), '--');
  assert.equal(stripTag("Georgia's/NP$"), "Georgia's");
});

test('brownToText: capitalised tags, hyphens, quotes and brackets', () => {
  const source = [
    '',
    'Jury/NN-HL acts/VBZ-HL',
    '',
    "\tThe/AT one-/CD and/CC two-family/JJ houses/NNS (/( 1/2/CD acre/NN )/) were/BED ``/`` well-kept/JJ ''/'' ,/, he/PPS said/VBD ./.",
    "She/PPS said/VBD '/' no/AT '/' --/-- twice/RB ?/. ?/.",
    "A/AT 10''/NNS ''/'' board/NN ./.",
    '',
    '\tMr./NP Smith/NP Jr./NP ./.',
  ].join('\n');
  assert.equal(
    brownToText(source),
    [
      'Jury acts',
      `The one- and two-family houses (1/2 acre) were "well-kept," he said. She said 'no' -- twice? A 10" board.`,
      'Mr. Smith Jr.',
    ].join('\n'),
  );
});
