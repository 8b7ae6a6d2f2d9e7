// Tokenizers turn text into integer ids and back.

export interface Tokenizer {
  name: string;
  vocabSize: number;
  encode(text: string): Uint8Array | Uint16Array | Int32Array;
  decode(ids: ArrayLike<number>): string;
}

const encoder = new TextEncoder();
// Non-fatal: invalid UTF-8 (e.g. a model emitting half a multi-byte character)
// becomes U+FFFD instead of throwing; ignoreBOM keeps a leading BOM round-tripping.
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** UTF-8 bytes as tokens (vocab 256): no training, no unknown tokens. */
export const byteTokenizer: Tokenizer = {
  name: 'byte',
  vocabSize: 256,
  encode: (text) => encoder.encode(text),
  decode(ids) {
    const bytes = new Uint8Array(ids.length);
    // Ids outside 0..255 (a model with a padded vocabulary) map to 0xFF, which
    // is never valid UTF-8 and so decodes to U+FFFD as well.
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      bytes[i] = Number.isInteger(id) && id >= 0 && id < 256 ? id : 0xff;
    }
    return decoder.decode(bytes);
  },
};
