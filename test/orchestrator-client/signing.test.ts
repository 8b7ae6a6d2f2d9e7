// Signed requests: what is signed, every way a request is refused, the nonce cache's bounds,
// and that our keys are the keys btcli and polkadot.js make from the same mnemonic.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { encodeAddress, mnemonicToMiniSecret, sr25519PairFromSeed, sr25519Verify as utilVerify } from '@polkadot/util-crypto';
import { sr25519Verify as wasmVerify } from '@polkadot/wasm-crypto';
import { AUTH_HEADERS } from '../../orchestrator-client/protocol.ts';
import {
  type Keypair,
  type RequestHeaders,
  NonceCache,
  canonicalRequest,
  generateMnemonic,
  keypairFromMnemonic,
  keypairFromSeed,
  parseMnemonic,
  ready,
  signMessage,
  signRequest,
  ss58,
  verifyMessage,
  verifyRequest,
} from '../../orchestrator-client/signing.ts';

// Known answers published with Bittensor's wallet library (opentensor/btwallet tests/test_keyfile.py).
const BT_MNEMONIC = 'old leopard transfer rib spatial phone calm indicate online fire caution review';
const BT_ADDRESS = '5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX';
const BT_PUBLIC = '0xe4359ad3e2716c539a1d663ebd0a51bdc5c98a12e663bb4c4402db47828c9446';
// The substrate development phrase (no derivation path); `subkey inspect` gives this address.
const DEV_MNEMONIC = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
const DEV_ADDRESS = '5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV';

const NOW = 1_800_000_000_000;
const WINDOW = 60_000;
let alice: Keypair;
let bob: Keypair;

before(async () => {
  await ready();
  alice = keypairFromMnemonic(BT_MNEMONIC);
  bob = keypairFromSeed(new Uint8Array(32).fill(7));
});

const REQ = { method: 'POST', path: '/v1/leases/next?x=1', body: Buffer.from('{"stage":1}') };

/** An accepted request's signer, or the refusal as it is. */
const signer = (r: ReturnType<typeof verifyRequest>) => (r.ok ? { ok: r.ok, hotkey: r.hotkey } : r);

function verify(req: { method: string; path: string; body?: Uint8Array | string | null }, headers: RequestHeaders, opts: { now?: number; seen?: NonceCache } = {}) {
  return verifyRequest({ ...req, headers }, { now: opts.now ?? NOW, windowMs: WINDOW, seen: opts.seen ?? new NonceCache() });
}

function assertRefused(result: ReturnType<typeof verifyRequest>, code: string, message: RegExp): void {
  assert.equal(result.ok, false, 'expected a refusal');
  if (result.ok) return;
  assert.equal(result.code, code, result.message);
  assert.match(result.message, message);
  assert.doesNotMatch(result.message, /\n/);
}

test('the canonical request is exactly the documented text', () => {
  const text = canonicalRequest({ method: 'post', path: '/v1/leases/next?x=1', body: '', timestamp: 1700000000123, nonce: '00112233445566778899aabbccddeeff', hotkey: BT_ADDRESS });
  assert.equal(
    text,
    `tah-request-v1\nPOST\n/v1/leases/next?x=1\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n1700000000123\n00112233445566778899aabbccddeeff\n${BT_ADDRESS}`,
  );
  // A string body and its UTF-8 bytes hash alike; absent means empty.
  const parts = { method: 'GET', path: '/', timestamp: 1, nonce: 'ab'.repeat(8), hotkey: BT_ADDRESS };
  assert.equal(canonicalRequest({ ...parts, body: 'é' }), canonicalRequest({ ...parts, body: Buffer.from('é', 'utf8') }));
  assert.equal(canonicalRequest({ ...parts }), canonicalRequest({ ...parts, body: new Uint8Array(0) }));
});

test('a signed request verifies, names its signer, and the signature is the one polkadot.js verifies', () => {
  const headers = signRequest(alice, REQ, { now: NOW });
  assert.deepEqual(Object.keys(headers).sort(), Object.values(AUTH_HEADERS).sort());
  assert.equal(headers[AUTH_HEADERS.hotkey], BT_ADDRESS);
  assert.equal(headers[AUTH_HEADERS.timestamp], String(NOW));
  assert.match(headers[AUTH_HEADERS.nonce], /^[0-9a-f]{32}$/);
  assert.match(headers[AUTH_HEADERS.signature], /^0x[0-9a-f]{128}$/);
  assert.deepEqual(signer(verify(REQ, headers)), { ok: true, hotkey: BT_ADDRESS });

  const message = canonicalRequest({ ...REQ, timestamp: NOW, nonce: headers[AUTH_HEADERS.nonce], hotkey: BT_ADDRESS });
  assert.ok(utilVerify(Buffer.from(message), Buffer.from(headers[AUTH_HEADERS.signature].slice(2), 'hex'), alice.publicKey));
  // Nonces are fresh each time; a given nonce is used as given.
  assert.notEqual(signRequest(alice, REQ, { now: NOW })[AUTH_HEADERS.nonce], headers[AUTH_HEADERS.nonce]);
  assert.equal(signRequest(alice, REQ, { now: NOW, nonce: 'ab'.repeat(8) })[AUTH_HEADERS.nonce], 'ab'.repeat(8));
  // GET with no body, and header names in any case.
  const get = { method: 'GET', path: '/v1/runs/r1' };
  const h = signRequest(bob, get, { now: NOW });
  const upper = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toUpperCase(), v]));
  assert.deepEqual(signer(verify({ ...get, body: Buffer.alloc(0) }, upper)), { ok: true, hotkey: bob.address });
});

test('a request without its headers is unauthorized, naming what is missing', () => {
  const headers = signRequest(alice, REQ, { now: NOW });
  assertRefused(verify(REQ, {}), 'unauthorized', /missing x-tah-hotkey, x-tah-timestamp, x-tah-nonce, x-tah-signature/);
  for (const name of Object.values(AUTH_HEADERS)) {
    const { [name]: _gone, ...rest } = headers;
    assertRefused(verify(REQ, rest), 'unauthorized', new RegExp(`missing ${name}$|missing ${name} `));
    assertRefused(verify(REQ, { ...rest, [name]: '' }), 'unauthorized', new RegExp(`missing ${name}`));
  }
});

test('malformed headers are unauthorized with the header named', () => {
  const h = signRequest(alice, REQ, { now: NOW });
  const cases: [string, string, RegExp][] = [
    [AUTH_HEADERS.hotkey, 'not-an-address', /x-tah-hotkey: not an SS58 address/],
    [AUTH_HEADERS.hotkey, `0x${Buffer.from(alice.publicKey).toString('hex')}`, /x-tah-hotkey/],
    [AUTH_HEADERS.hotkey, BT_ADDRESS.slice(0, -1) + (BT_ADDRESS.endsWith('X') ? 'Y' : 'X'), /x-tah-hotkey: .*(checksum|valid)/],
    // The same key under the Polkadot prefix (0) is not accepted: one address per key.
    [AUTH_HEADERS.hotkey, encodeAddress(alice.publicKey, 0), /x-tah-hotkey: .*prefix 42/],
    [AUTH_HEADERS.timestamp, '1.8e12', /x-tah-timestamp: expected whole milliseconds/],
    [AUTH_HEADERS.timestamp, `${NOW}.5`, /x-tah-timestamp/],
    [AUTH_HEADERS.timestamp, `0${NOW}`, /x-tah-timestamp/],
    [AUTH_HEADERS.timestamp, `-${NOW}`, /x-tah-timestamp/],
    [AUTH_HEADERS.nonce, 'abc', /x-tah-nonce: expected 16 to 64 hex/],
    [AUTH_HEADERS.nonce, 'zz'.repeat(16), /x-tah-nonce/],
    [AUTH_HEADERS.nonce, 'a'.repeat(65), /x-tah-nonce/],
    [AUTH_HEADERS.signature, h[AUTH_HEADERS.signature].slice(2), /x-tah-signature: expected 0x and 128 hex/],
    [AUTH_HEADERS.signature, h[AUTH_HEADERS.signature].slice(0, -2), /x-tah-signature/],
    [AUTH_HEADERS.signature, `${h[AUTH_HEADERS.signature].slice(0, -1)}g`, /x-tah-signature/],
  ];
  for (const [name, value, message] of cases) assertRefused(verify(REQ, { ...h, [name]: value }), 'unauthorized', message);
  assertRefused(verify(REQ, { ...h, [AUTH_HEADERS.nonce]: [h[AUTH_HEADERS.nonce], h[AUTH_HEADERS.nonce]] }), 'unauthorized', /more than once/);
});

test('a forged signature, another key\'s signature, or any changed part of the request is unauthorized', () => {
  const h = signRequest(alice, REQ, { now: NOW });
  const sig = Buffer.from(h[AUTH_HEADERS.signature].slice(2), 'hex');
  sig[10] ^= 1;
  const refusedSignature = /signature does not match/;
  assertRefused(verify(REQ, { ...h, [AUTH_HEADERS.signature]: `0x${sig.toString('hex')}` }), 'unauthorized', refusedSignature);
  assertRefused(verify(REQ, { ...h, [AUTH_HEADERS.signature]: `0x${'00'.repeat(64)}` }), 'unauthorized', refusedSignature);
  // Bob signs the request but claims to be Alice; and Alice's signature presented as Bob's.
  const byBob = signRequest(bob, REQ, { now: NOW });
  assertRefused(verify(REQ, { ...byBob, [AUTH_HEADERS.hotkey]: alice.address }), 'unauthorized', refusedSignature);
  assertRefused(verify(REQ, { ...h, [AUTH_HEADERS.hotkey]: bob.address }), 'unauthorized', refusedSignature);
  // Every signed part.
  assertRefused(verify({ ...REQ, body: Buffer.from('{"stage":2}') }, h), 'unauthorized', refusedSignature);
  assertRefused(verify({ ...REQ, body: Buffer.alloc(0) }, h), 'unauthorized', refusedSignature);
  assertRefused(verify({ ...REQ, path: '/v1/leases/next?x=2' }, h), 'unauthorized', refusedSignature);
  assertRefused(verify({ ...REQ, path: '/v1/leases/next' }, h), 'unauthorized', refusedSignature);
  assertRefused(verify({ ...REQ, path: '/v1/leases/complete?x=1' }, h), 'unauthorized', refusedSignature);
  assertRefused(verify({ ...REQ, method: 'PUT' }, h), 'unauthorized', refusedSignature);
  assertRefused(verify(REQ, { ...h, [AUTH_HEADERS.timestamp]: String(NOW + 1) }), 'unauthorized', refusedSignature);
  assertRefused(verify(REQ, { ...h, [AUTH_HEADERS.nonce]: 'ab'.repeat(16) }), 'unauthorized', refusedSignature);
  // The method's case does not matter (it is signed upper case).
  assert.equal(verify({ ...REQ, method: 'post' }, h).ok, true);
});

test('stale requests are refused both ways, in milliseconds', () => {
  const seen = new NonceCache();
  const at = (offsetMs: number) => signRequest(alice, REQ, { now: NOW + offsetMs });
  assert.equal(verify(REQ, at(-WINDOW), { seen }).ok, true, 'exactly the window old is accepted');
  assert.equal(verify(REQ, at(WINDOW), { seen }).ok, true, 'exactly the window ahead is accepted');
  assertRefused(verify(REQ, at(-WINDOW - 1), { seen }), 'stale_request', /signed 60\.0 s ago, more than the 60\.0 s allowed/);
  assertRefused(verify(REQ, at(WINDOW + 1), { seen }), 'stale_request', /60\.0 s in the future/);
  assertRefused(verify(REQ, at(-3_600_000), { seen }), 'stale_request', /3600 s ago/);
  // A timestamp in seconds (the reference system's mix-up) is 56 years stale, not accepted.
  assertRefused(verify(REQ, at(Math.floor(NOW / 1000) - NOW), { seen }), 'stale_request', /ago/);
  assertRefused(verify(REQ, at(10 * 365 * 86_400_000), { seen }), 'stale_request', /in the future/);
});

test('a replayed request is refused; a forged one does not use up the nonce', () => {
  const seen = new NonceCache();
  const h = signRequest(alice, REQ, { now: NOW });
  // A forgery carrying Alice's nonce first: refused, and the nonce is still hers to use.
  const forged = { ...h, [AUTH_HEADERS.signature]: signRequest(bob, REQ, { now: NOW, nonce: h[AUTH_HEADERS.nonce] })[AUTH_HEADERS.signature] };
  assertRefused(verify(REQ, forged, { seen }), 'unauthorized', /signature does not match/);
  assert.equal(seen.size, 0);
  assert.deepEqual(signer(verify(REQ, h, { seen })), { ok: true, hotkey: alice.address });
  assert.equal(seen.size, 1);
  assertRefused(verify(REQ, h, { seen, now: NOW + 1000 }), 'replayed_request', /nonce was already used/);
  // Nonces are compared without regard to hex case.
  const upper = signRequest(alice, REQ, { now: NOW, nonce: h[AUTH_HEADERS.nonce].toUpperCase() });
  assertRefused(verify(REQ, upper, { seen }), 'replayed_request', /already used/);
  // The same nonce from another hotkey is a different request.
  assert.equal(verify(REQ, signRequest(bob, REQ, { now: NOW, nonce: h[AUTH_HEADERS.nonce] }), { seen }).ok, true);
  // After the window the replay is stale, whether or not the cache still holds the nonce.
  assertRefused(verify(REQ, h, { seen, now: NOW + WINDOW + 1 }), 'stale_request', /ago/);
});

test('an accepted request answers its nonce (lower case) and how long it must be remembered: until its timestamp leaves the window', () => {
  const h = signRequest(alice, REQ, { now: NOW + 7, nonce: 'ABCDEF0123456789ABCDEF0123456789' });
  const r = verify(REQ, h, { now: NOW });
  assert.ok(r.ok);
  assert.equal(r.nonce, 'abcdef0123456789abcdef0123456789');
  // Stamped ahead of the server's clock, it stays replayable until its own time leaves the window.
  assert.equal(r.expiresAt, NOW + 7 + WINDOW + 1);
  // The expiry is the first stale millisecond: a store that has forgotten the nonce by then (a
  // restarted server's cache, a swept record) never meets the request while it is still fresh.
  assert.equal(verify(REQ, h, { now: r.expiresAt - 1 }).ok, true, 'the millisecond before is still inside the window');
  assertRefused(verify(REQ, h, { now: r.expiresAt }), 'stale_request', /ago/);
});

test('the nonce cache is bounded: it forgets expired nonces oldest first and never a live one', () => {
  const seen = new NonceCache({ maxEntries: 3 });
  const n = (i: number) => i.toString(16).padStart(32, '0');
  const ok = (i: number, ts: number, now: number) => verify(REQ, signRequest(alice, REQ, { now: ts, nonce: n(i) }), { seen, now });
  assert.equal(ok(1, NOW, NOW).ok, true);
  assert.equal(ok(2, NOW + 10, NOW + 10).ok, true);
  assert.equal(ok(3, NOW + 20, NOW + 20).ok, true);
  // Full of live nonces: refused, clearly, and nothing was forgotten.
  assertRefused(ok(4, NOW + 30, NOW + 30), 'rate_limited', /holding 3 recent request nonces, its limit: retry/);
  assert.equal(seen.size, 3);
  assertRefused(ok(1, NOW, NOW + 30), 'replayed_request', /already used/);
  // Once the first expires (its timestamp + window), it is forgotten and there is room.
  assert.equal(ok(4, NOW + WINDOW + 1, NOW + WINDOW + 1).ok, true);
  assert.equal(seen.size, 3);
  assertRefused(ok(2, NOW + 10, NOW + WINDOW + 1), 'replayed_request', /already used/);

  // A request timestamped ahead of the clock expires after later arrivals; a full cache sweeps
  // past it instead of refusing while expired entries sit behind it.
  const c = new NonceCache({ maxEntries: 2 });
  assert.equal(c.add('a', n(1), NOW + 2 * WINDOW, NOW), true);
  assert.equal(c.add('a', n(2), NOW + WINDOW, NOW), true);
  assert.equal(c.add('a', n(3), NOW + WINDOW, NOW), false);
  assert.equal(c.add('a', n(3), NOW + 2 * WINDOW, NOW + WINDOW), true);
  assert.equal(c.has('a', n(1)), true);
  assert.equal(c.has('a', n(2)), false);
});

test('a flood against a full cache is refused cheaply and memory stays at the cap', (t) => {
  const cap = 100_000;
  const c = new NonceCache({ maxEntries: cap });
  // A full collection around the fill, for a heap figure that means something.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < cap; i++) assert.ok(c.add(BT_ADDRESS, randomBytes(16).toString('hex'), NOW + WINDOW, NOW));
  gc();
  const bytesPerEntry = (process.memoryUsage().heapUsed - before) / cap;
  const started = performance.now();
  let refused = 0;
  for (let i = 0; i < 100_000; i++) if (!c.add('x', `f${i}`, NOW + WINDOW, NOW + 1)) refused++;
  const perRefusalUs = ((performance.now() - started) * 1000) / 100_000;
  assert.equal(refused, 100_000);
  assert.equal(c.size, cap);
  t.diagnostic(`about ${Math.round(bytesPerEntry)} bytes of heap per remembered nonce (default cap 1,000,000); a refusal when full takes ${perRefusalUs.toFixed(2)} µs`);
  // When they all expire, the next request finds room.
  assert.equal(c.add('x', 'f', NOW + 2 * WINDOW, NOW + WINDOW), true);
  assert.equal(c.size, 1);
});

test('signRequest refuses what would blur the canonical text', () => {
  assert.throws(() => signRequest(alice, { method: 'GET', path: '/v1/x\nPOST' }), /no line breaks/);
  assert.throws(() => signRequest(alice, { method: 'GE T', path: '/v1/x' }), /HTTP method/);
  assert.throws(() => signRequest(alice, { method: 'GET', path: 'v1/x' }), /starts with '\/'/);
  assert.throws(() => signRequest(alice, REQ, { nonce: 'xyz' }), /16 to 64 hex/);
  assert.throws(() => signRequest(alice, REQ, { now: 1.5 }), /whole milliseconds/);
});

test('keys from a mnemonic are the ones btcli and polkadot.js make (known answers)', () => {
  assert.equal(alice.address, BT_ADDRESS);
  assert.equal(`0x${Buffer.from(alice.publicKey).toString('hex')}`, BT_PUBLIC);
  assert.equal(keypairFromMnemonic(DEV_MNEMONIC).address, DEV_ADDRESS);
  // The same derivation as polkadot.js keyring.addFromUri(mnemonic) for sr25519: mini secret, then pair.
  for (let i = 0; i < 5; i++) {
    const m = generateMnemonic();
    assert.equal(m.split(' ').length, 12);
    const theirs = sr25519PairFromSeed(mnemonicToMiniSecret(m));
    const ours = keypairFromMnemonic(m);
    assert.equal(ours.address, encodeAddress(theirs.publicKey, 42));
    assert.deepEqual(ours.secretKey, theirs.secretKey);
    assert.equal(ss58(ours.publicKey), ours.address);
  }
  // Spacing and letter case do not change the key.
  assert.equal(keypairFromMnemonic(`  ${BT_MNEMONIC.toUpperCase().replaceAll(' ', '\n ')} `).address, BT_ADDRESS);
  assert.equal(keypairFromSeed(parseMnemonic(BT_MNEMONIC).seed).address, BT_ADDRESS);
});

test('a wrong mnemonic is one clear line that does not repeat the words', () => {
  const words = BT_MNEMONIC.split(' ');
  assert.throws(() => keypairFromMnemonic(words.slice(0, 11).join(' ')), /^Error: invalid mnemonic: expected 12, 15, 18, 21 or 24 words, got 11$/);
  assert.throws(() => keypairFromMnemonic(''), /got 0$/);
  const typo = [...words];
  typo[4] = 'spatiall';
  assert.throws(() => keypairFromMnemonic(typo.join(' ')), (e: Error) => e.message === 'invalid mnemonic: word 5 is not in the BIP-39 English word list');
  const swapped = [...words];
  [swapped[0], swapped[1]] = [swapped[1], swapped[0]];
  assert.throws(() => keypairFromMnemonic(swapped.join(' ')), /checksum does not match/);
  assert.throws(() => keypairFromSeed(new Uint8Array(31)), /32 bytes/);
});

test('cost of signing and verifying', (t) => {
  const n = 2000;
  const body = Buffer.from(JSON.stringify({ lease_id: 'l'.repeat(40), loss: 1.2345 }));
  const req = { method: 'POST', path: '/v1/leases/complete', body };
  for (let i = 0; i < 100; i++) verify(req, signRequest(alice, req, { now: NOW }));
  const signed: Record<string, string>[] = [];
  let start = performance.now();
  for (let i = 0; i < n; i++) signed.push(signRequest(alice, req, { now: NOW }));
  const signMs = (performance.now() - start) / n;
  const seen = new NonceCache();
  start = performance.now();
  for (const h of signed) assert.equal(verifyRequest({ ...req, headers: h }, { now: NOW, seen }).ok, true);
  const verifyMs = (performance.now() - start) / n;
  // The bare sr25519 check on the same messages, for the overhead of everything else.
  const raw = signed.map((h) => ({
    message: Buffer.from(canonicalRequest({ ...req, timestamp: NOW, nonce: h[AUTH_HEADERS.nonce], hotkey: alice.address })),
    signature: Buffer.from(h[AUTH_HEADERS.signature].slice(2), 'hex'),
  }));
  start = performance.now();
  for (const r of raw) assert.ok(wasmVerify(r.signature, r.message, alice.publicKey));
  const rawMs = (performance.now() - start) / n;
  t.diagnostic(
    `signRequest ${(signMs * 1000).toFixed(0)} µs, verifyRequest ${(verifyMs * 1000).toFixed(0)} µs, bare sr25519Verify ${(rawMs * 1000).toFixed(0)} µs per request (mean of ${n}, ${body.length}-byte body)`,
  );
});

test('signed statements: a verdict verifies with its signer only, and not once changed', async () => {
  await ready();
  const a = keypairFromSeed(new Uint8Array(32).fill(3));
  const b = keypairFromSeed(new Uint8Array(32).fill(4));
  const msg = 'tah-verdict-v1\nrun\n1\nminer\n0\n1\nfail\n0.5\n';
  const sig = signMessage(a, msg);
  assert.match(sig, /^0x[0-9a-f]{128}$/);
  assert.equal(verifyMessage(a.address, msg, sig), true);
  assert.equal(verifyMessage(b.address, msg, sig), false);
  assert.equal(verifyMessage(a.address, msg.replace('fail', 'pass'), sig), false);
  assert.equal(verifyMessage('not an address', msg, sig), false);
  assert.equal(verifyMessage(a.address, msg, '0x1234'), false);
});
