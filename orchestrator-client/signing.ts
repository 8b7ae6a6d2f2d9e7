// Signed requests: every request to the orchestrator carries the sender's sr25519 hotkey (the
// Bittensor key type, named by its SS58 address), a timestamp, a nonce and a signature over a
// canonical form of the request. Shared by the client (which signs) and the server (which
// verifies, remembering nonces in a NonceCache in front of the durable record it keeps).
//
// What is signed, as UTF-8, fields joined by "\n":
//   tah-request-v1
//   METHOD                      upper case
//   /path?query                 exactly as sent on the request line
//   sha256 of the body          lower-case hex; an empty body hashes the empty string
//   timestamp                   milliseconds since the Unix epoch, decimal
//   nonce                       16 to 64 hex characters
//   signer                      the SS58 address (prefix 42) in the hotkey header
import { createHash, randomBytes } from 'node:crypto';
import { decodeAddress, checkAddress, encodeAddress, mnemonicGenerate, mnemonicToMiniSecret, mnemonicValidate } from '@polkadot/util-crypto';
import english from '@polkadot/util-crypto/mnemonic/wordlists/en';
import { isReady, sr25519KeypairFromSeed, sr25519Sign, sr25519Verify, waitReady } from '@polkadot/wasm-crypto';
import { AUTH_HEADERS, type ErrorCode } from './protocol.ts';

export const SIGNING_DOMAIN = 'tah-request-v1';
/** The SS58 prefix of the generic Substrate format, which Bittensor uses. */
export const SS58_PREFIX = 42;
/** How far a request's timestamp may be from the server's clock, either way. */
export const DEFAULT_WINDOW_MS = 60_000;

/** An sr25519 key pair. `secretKey` is the 64-byte form the sr25519 functions take (scalar in Ed25519 byte order, then nonce). */
export interface Keypair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  address: string;
}

export interface RequestParts {
  method: string;
  /** Path and query exactly as sent, e.g. "/v1/leases/next?x=1". */
  path: string;
  /** The raw body bytes (a string is taken as UTF-8); absent or empty: no body. */
  body?: Uint8Array | string | null;
}

export type RequestHeaders = Record<string, string | string[] | undefined>;

export type AuthErrorCode = Extract<ErrorCode, 'unauthorized' | 'stale_request' | 'replayed_request' | 'rate_limited'>;

export type VerifyResult = { ok: true; hotkey: string; nonce: string; expiresAt: number } | { ok: false; code: AuthErrorCode; message: string };

// ---- initialisation ----

let readyPromise: Promise<void> | undefined;

/** Initialises the WebAssembly sr25519 code once; await it before any other function here. */
export function ready(): Promise<void> {
  readyPromise ??= waitReady().then((ok) => {
    if (!ok) {
      readyPromise = undefined;
      throw new Error('could not initialise the sr25519 WebAssembly code');
    }
  });
  return readyPromise;
}

function assertReady(): void {
  if (!isReady()) throw new Error('sr25519 is not initialised: await ready() from orchestrator-client/signing.ts first');
}

// ---- keys ----

/** The SS58 address (prefix 42) of a 32-byte public key. */
export function ss58(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new Error(`a public key is 32 bytes, got ${publicKey.length}`);
  return encodeAddress(publicKey, SS58_PREFIX);
}

/** The sr25519 key pair of a 32-byte seed (a substrate "mini secret", expanded the Ed25519 way as substrate does). */
export function keypairFromSeed(seed: Uint8Array): Keypair {
  if (seed.length !== 32) throw new Error(`an sr25519 seed is 32 bytes, got ${seed.length}`);
  assertReady();
  const full = sr25519KeypairFromSeed(seed);
  const publicKey = full.slice(64, 96);
  return { publicKey, secretKey: full.slice(0, 64), address: ss58(publicKey) };
}

const WORD_COUNTS = [12, 15, 18, 21, 24];
let englishWords: Set<string> | undefined;

/** The phrase with single spaces, lower case, NFKD (the BIP-39 form). */
function normalizeMnemonic(mnemonic: string): string {
  return mnemonic.normalize('NFKD').trim().toLowerCase().split(/\s+/).join(' ');
}

/**
 * Validates a BIP-39 English mnemonic and derives its 32-byte seed the substrate way (the "mini
 * secret": PBKDF2 of the entropy, no password), as btcli and polkadot.js do for an sr25519 key.
 * Throws one clear line naming the problem; a wrong word is named by its position only, since
 * the word itself is part of a secret.
 */
export function parseMnemonic(mnemonic: string): { phrase: string; seed: Uint8Array } {
  assertReady();
  const phrase = normalizeMnemonic(mnemonic);
  const words = phrase === '' ? [] : phrase.split(' ');
  if (!WORD_COUNTS.includes(words.length)) throw new Error(`invalid mnemonic: expected 12, 15, 18, 21 or 24 words, got ${words.length}`);
  englishWords ??= new Set(english);
  const unknown = words.findIndex((w) => !englishWords!.has(w));
  if (unknown >= 0) throw new Error(`invalid mnemonic: word ${unknown + 1} is not in the BIP-39 English word list`);
  if (!mnemonicValidate(phrase)) throw new Error('invalid mnemonic: the checksum does not match (a word is wrong or out of order)');
  return { phrase, seed: mnemonicToMiniSecret(phrase) };
}

/** The key pair of a mnemonic, the same as `btcli` and polkadot.js `keyring.addFromUri(mnemonic)` give for sr25519. */
export function keypairFromMnemonic(mnemonic: string): Keypair {
  return keypairFromSeed(parseMnemonic(mnemonic).seed);
}

/** A new random BIP-39 English mnemonic (12 words: 128 bits of entropy). */
export function generateMnemonic(words: 12 | 15 | 18 | 21 | 24 = 12): string {
  assertReady();
  return mnemonicGenerate(words);
}

// ---- the canonical request ----

export interface CanonicalParts extends RequestParts {
  timestamp: number;
  nonce: string;
  /** The signer's SS58 address. */
  hotkey: string;
}

const sha256Hex = (body: Uint8Array | string | null | undefined): string =>
  createHash('sha256')
    .update(body ?? '')
    .digest('hex');

/** The exact text that is signed for a request (see the top of this file). */
export function canonicalRequest(parts: CanonicalParts): string {
  return [SIGNING_DOMAIN, parts.method.toUpperCase(), parts.path, sha256Hex(parts.body), String(parts.timestamp), parts.nonce, parts.hotkey].join('\n');
}

// ---- signing ----

const NONCE_RE = /^[0-9a-fA-F]{16,64}$/;
const TIMESTAMP_RE = /^(0|[1-9][0-9]{0,14})$/;
const SIGNATURE_RE = /^0x[0-9a-fA-F]{128}$/;
const SS58_RE = /^[1-9A-HJ-NP-Za-km-z]{40,60}$/;
// An HTTP method is a token; a path has no line breaks (either would blur the canonical text).
const METHOD_RE = /^[A-Za-z]{1,16}$/;
const PATH_RE = /^\/[^\r\n]*$/;

/**
 * The four authentication headers (AUTH_HEADERS) for a request: hotkey, timestamp (`now`,
 * default Date.now()), nonce (16 random bytes as hex unless given) and the 64-byte signature as
 * 0x-prefixed hex.
 */
export function signRequest(keypair: Keypair, request: RequestParts, opts: { now?: number; nonce?: string } = {}): Record<string, string> {
  assertReady();
  const now = opts.now ?? Date.now();
  if (!Number.isSafeInteger(now) || now < 0) throw new Error(`the timestamp must be whole milliseconds, got ${now}`);
  const nonce = opts.nonce ?? randomBytes(16).toString('hex');
  if (!NONCE_RE.test(nonce)) throw new Error('a nonce is 16 to 64 hex characters');
  if (!METHOD_RE.test(request.method)) throw new Error(`not an HTTP method: '${request.method}'`);
  if (!PATH_RE.test(request.path)) throw new Error(`a request path starts with '/' and has no line breaks: '${request.path}'`);
  const message = Buffer.from(canonicalRequest({ ...request, timestamp: now, nonce, hotkey: keypair.address }), 'utf8');
  const signature = sr25519Sign(keypair.publicKey, keypair.secretKey, message);
  return {
    [AUTH_HEADERS.hotkey]: keypair.address,
    [AUTH_HEADERS.timestamp]: String(now),
    [AUTH_HEADERS.nonce]: nonce,
    [AUTH_HEADERS.signature]: `0x${Buffer.from(signature).toString('hex')}`,
  };
}

// ---- verifying ----

function header(headers: RequestHeaders, name: string): string | string[] | undefined {
  if (name in headers) return headers[name];
  // Node lower-cases incoming header names; other callers may not.
  for (const key of Object.keys(headers)) if (key.toLowerCase() === name) return headers[key];
  return undefined;
}

const fail = (code: AuthErrorCode, message: string): VerifyResult => ({ ok: false, code, message });

// Addresses already checked, with their keys: a hotkey signs many requests, and decoding one
// (base58 and a blake2 checksum, twice) costs about a quarter of a signature check. Cleared when
// large, so a stream of new addresses costs only the decoding it would cost anyway.
const checkedAddresses = new Map<string, Uint8Array>();
const CHECKED_ADDRESSES_MAX = 10_000;

/** The 32-byte public key of a canonical prefix-42 SS58 address, or why it is not one. */
function publicKeyOf(address: string): Uint8Array | string {
  const cached = checkedAddresses.get(address);
  if (cached) return cached;
  // decodeAddress would also take hex; only base58 text is an address here.
  if (!SS58_RE.test(address)) return 'not an SS58 address';
  const [valid, problem] = checkAddress(address, SS58_PREFIX);
  if (!valid) return `not a valid SS58 address with prefix ${SS58_PREFIX} (${problem ?? 'bad checksum'})`;
  let key: Uint8Array;
  try {
    key = decodeAddress(address);
  } catch (e) {
    return (e as Error).message;
  }
  if (key.length !== 32) return `an SS58 account of ${key.length} bytes is not a public key`;
  // One address per key: the canonical encoding only (a different encoding would name another "hotkey").
  if (encodeAddress(key, SS58_PREFIX) !== address) return 'not the canonical SS58 encoding of its key';
  if (checkedAddresses.size >= CHECKED_ADDRESSES_MAX) checkedAddresses.clear();
  checkedAddresses.set(address, key);
  return key;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 100_000 ? 1 : 0)} s`;

/**
 * Checks a signed request: the four headers are present and well formed, the timestamp is within
 * `windowMs` of `now` either way, the nonce was not used by this hotkey within the window (as far
 * as `seen` knows: the server also claims it in its durable record), and the signature is the
 * hotkey's over exactly this method, path, body, timestamp and nonce. Only a request that passes
 * every check records its nonce, so a forged request cannot use up someone's nonce. An accepted
 * request answers the nonce's expiry, the first millisecond at which its timestamp is outside the
 * window: the server remembers the nonce until then.
 */
export function verifyRequest(
  request: RequestParts & { headers: RequestHeaders },
  opts: { now: number; windowMs?: number; seen: NonceCache },
): VerifyResult {
  assertReady();
  const windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
  const { now, seen } = opts;

  const values: Record<keyof typeof AUTH_HEADERS, string> = { hotkey: '', timestamp: '', nonce: '', signature: '' };
  const missing: string[] = [];
  for (const field of Object.keys(AUTH_HEADERS) as (keyof typeof AUTH_HEADERS)[]) {
    const v = header(request.headers, AUTH_HEADERS[field]);
    if (Array.isArray(v)) return fail('unauthorized', `header ${AUTH_HEADERS[field]} was sent more than once`);
    if (v === undefined || v === '') missing.push(AUTH_HEADERS[field]);
    else values[field] = v;
  }
  if (missing.length > 0) return fail('unauthorized', `unsigned request: missing ${missing.join(', ')} (every request is signed with the sender's hotkey)`);

  const publicKey = publicKeyOf(values.hotkey);
  if (typeof publicKey === 'string') return fail('unauthorized', `header ${AUTH_HEADERS.hotkey}: ${publicKey}`);
  if (!TIMESTAMP_RE.test(values.timestamp)) return fail('unauthorized', `header ${AUTH_HEADERS.timestamp}: expected whole milliseconds since the Unix epoch`);
  if (!NONCE_RE.test(values.nonce)) return fail('unauthorized', `header ${AUTH_HEADERS.nonce}: expected 16 to 64 hex characters`);
  if (!SIGNATURE_RE.test(values.signature)) return fail('unauthorized', `header ${AUTH_HEADERS.signature}: expected 0x and 128 hex characters (64 bytes)`);
  if (!METHOD_RE.test(request.method) || !PATH_RE.test(request.path)) return fail('unauthorized', 'malformed request line');

  // Milliseconds against milliseconds, both ways.
  const timestamp = Number(values.timestamp);
  if (timestamp < now - windowMs) {
    return fail('stale_request', `request signed ${seconds(now - timestamp)} ago, more than the ${seconds(windowMs)} allowed: sign it again (and check this computer's clock)`);
  }
  if (timestamp > now + windowMs) {
    return fail('stale_request', `request timestamp is ${seconds(timestamp - now)} in the future, more than the ${seconds(windowMs)} allowed: check this computer's clock`);
  }
  if (seen.has(values.hotkey, values.nonce)) return fail('replayed_request', 'this nonce was already used by this hotkey: every request needs a fresh nonce');
  // Refuse before the costly check when a flood has filled the cache.
  if (!seen.hasRoom(now)) return fail('rate_limited', seen.fullMessage());

  const message = Buffer.from(canonicalRequest({ ...request, timestamp, nonce: values.nonce, hotkey: values.hotkey }), 'utf8');
  const signature = Buffer.from(values.signature.slice(2), 'hex');
  if (!sr25519Verify(signature, message, publicKey)) {
    return fail('unauthorized', `signature does not match this request and hotkey (method, path, body, timestamp, nonce and ${AUTH_HEADERS.hotkey} are signed)`);
  }
  // A request exactly the window old is still fresh (above), and a nonce record counts as expired
  // once its expiry is <= now: the expiry is the first millisecond at which the request is stale.
  const expiresAt = timestamp + windowMs + 1;
  if (!seen.add(values.hotkey, values.nonce, expiresAt, now)) return fail('rate_limited', seen.fullMessage());
  return { ok: true, hotkey: values.hotkey, nonce: values.nonce.toLowerCase(), expiresAt };
}

// ---- replay protection ----

/**
 * The (hotkey, nonce) pairs of accepted requests, each remembered until its request's timestamp
 * leaves the window (after which a replay is refused as stale anyway). Memory is bounded: at
 * `maxEntries` the oldest expired entries go first, and an entry still inside its window is never
 * forgotten; when every entry is still needed, new requests are refused (rate_limited) until
 * some expire, rather than weakening replay protection.
 *
 * In memory only: a fast first answer to replays within this process and a bound under floods.
 * What survives a restart, and is shared by several servers on one database, is the server's
 * durable record of claimed nonces (orchestrator/nonces.ts), which it consults after this.
 */
export class NonceCache {
  readonly maxEntries: number;
  /** key → the time (ms) after which it may be forgotten; in insertion order. */
  readonly #entries = new Map<string, number>();
  /** No entry expires before this time (a lower bound); a full cache need not be swept earlier. */
  #earliestExpiry = Number.POSITIVE_INFINITY;

  /**
   * `maxEntries` defaults to 1,000,000, about 200 MB of heap when full (measured ~200 bytes an
   * entry). Entries live at most two windows (a timestamp may be a window ahead), and one process
   * checks roughly 2,000 signatures a second, so at a 60 s window the cap is a backstop that
   * ordinary load does not reach.
   */
  constructor(opts: { maxEntries?: number } = {}) {
    this.maxEntries = opts.maxEntries ?? 1_000_000;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new Error('maxEntries must be a positive integer');
  }

  get size(): number {
    return this.#entries.size;
  }

  has(hotkey: string, nonce: string): boolean {
    return this.#entries.has(NonceCache.#key(hotkey, nonce));
  }

  /** Whether one more entry fits at time `now`, after forgetting expired ones. */
  hasRoom(now: number): boolean {
    this.#evictFront(now);
    if (this.#entries.size < this.maxEntries) return true;
    if (now < this.#earliestExpiry) return false;
    // Entries are in arrival order, but a request timestamped ahead of the clock expires later
    // than ones after it; a full sweep finds every expired entry, and records when the next
    // could expire so a flood against a full cache does not sweep on every request.
    let earliest = Number.POSITIVE_INFINITY;
    for (const [key, expires] of this.#entries) {
      if (expires <= now) this.#entries.delete(key);
      else if (expires < earliest) earliest = expires;
    }
    this.#earliestExpiry = earliest;
    return this.#entries.size < this.maxEntries;
  }

  /** Remembers a nonce until `expiresAt`; false (nothing recorded) when the cache is full of live entries. */
  add(hotkey: string, nonce: string, expiresAt: number, now: number): boolean {
    if (!this.hasRoom(now)) return false;
    this.#entries.set(NonceCache.#key(hotkey, nonce), expiresAt);
    if (expiresAt < this.#earliestExpiry) this.#earliestExpiry = expiresAt;
    return true;
  }

  fullMessage(): string {
    return `the server is holding ${this.#entries.size} recent request nonces, its limit: retry in a few seconds`;
  }

  #evictFront(now: number): void {
    for (const [key, expires] of this.#entries) {
      if (expires > now) break;
      this.#entries.delete(key);
    }
  }

  static #key(hotkey: string, nonce: string): string {
    return `${hotkey}:${nonce.toLowerCase()}`;
  }
}

// ---- signed statements ----

/** Signs a statement (e.g. a validator's verdict) with the key pair: 0x-prefixed hex, 64 bytes. */
export function signMessage(keypair: Keypair, message: string): string {
  assertReady();
  return `0x${Buffer.from(sr25519Sign(keypair.publicKey, keypair.secretKey, Buffer.from(message, 'utf8'))).toString('hex')}`;
}

/** Whether `signature` is `hotkey`'s signature of `message`. */
export function verifyMessage(hotkey: string, message: string, signature: string): boolean {
  assertReady();
  const publicKey = publicKeyOf(hotkey);
  if (typeof publicKey === 'string' || !SIGNATURE_RE.test(signature)) return false;
  return sr25519Verify(Buffer.from(signature.slice(2), 'hex'), Buffer.from(message, 'utf8'), publicKey);
}
