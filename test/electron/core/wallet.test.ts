// The desktop wallet: keys made or imported, encrypted at rest, refused clearly when wrong or damaged.
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type SecretBox, NO_KEYRING_MESSAGE, WalletStore } from '../../../electron/core/wallet.ts';
import { keypairFromSeed, parseMnemonic, ready } from '../../../orchestrator-client/signing.ts';
import { loadWallet } from '../../../orchestrator-client/wallet.ts';

// Known answer from Bittensor's wallet library tests (as in test/orchestrator-client/wallet.test.ts).
const BT_MNEMONIC = 'old leopard transfer rib spatial phone calm indicate online fire caution review';
const BT_ADDRESS = '5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX';
const BT_PUBLIC = '0xe4359ad3e2716c539a1d663ebd0a51bdc5c98a12e663bb4c4402db47828c9446';
const BT_SEED_HEX = 'da3cf5b1e9144931a0f0db65664aab662673b099415a7f8121b7245fb0be4143';
// Another valid Bittensor (SS58 format 42) address, for payouts.
const COLDKEY = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const POSIX = process.platform !== 'win32';

/**
 * Stands in for the OS keychain (Electron's safeStorage), which cannot run here: AES-256-GCM with a
 * random key held in memory, so a box is like one user account's keyring and tampering is detected.
 */
function osBox(): SecretBox {
  const key = randomBytes(32);
  return {
    protection: () => 'os',
    encrypt(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return Buffer.concat([iv, cipher.getAuthTag(), body]);
    },
    decrypt(data) {
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
      decipher.setAuthTag(data.subarray(12, 28));
      return Buffer.concat([decipher.update(data.subarray(28)), decipher.final()]).toString('utf8');
    },
  };
}

/** Linux without a keyring (Electron's basic_text): no real protection, modelled as identity encoding. */
const plainBox: SecretBox = {
  protection: () => 'plaintext',
  encrypt: (plain) => Buffer.from(plain, 'utf8'),
  decrypt: (data) => data.toString('utf8'),
};

let root = '';
before(async () => {
  await ready();
  root = await mkdtemp(join(tmpdir(), 'tah-desktop-wallet-'));
});
after(() => rm(root, { recursive: true, force: true }));

let counter = 0;
const freshDir = (): string => join(root, `case-${++counter}`, 'wallet');
const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;
const files = async (dir: string): Promise<string[]> => (await readdir(dir).catch(() => [])).sort();

function open(dir: string, box: SecretBox = osBox(), allowPlaintext = false): WalletStore {
  return new WalletStore({ dir, box, allowPlaintext: () => allowPlaintext });
}

/** Rejects with one line matching `problem` that does not quote the given secrets. */
async function refused(p: Promise<unknown>, problem: RegExp, secrets: string[] = []): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.match(e.message, problem);
    assert.doesNotMatch(e.message, /\n/);
    for (const s of secrets) assert.ok(!e.message.includes(s), `the message quotes a secret: ${e.message}`);
    return true;
  });
}

test('create: a new 12-word key, encrypted at rest, the same after reopening', async () => {
  const dir = freshDir();
  const box = osBox();
  const store = open(dir, box);
  assert.equal(await store.info(), null);

  const { wallet, mnemonic } = await store.create();
  assert.equal(mnemonic.split(' ').length, 12);
  const { seed } = parseMnemonic(mnemonic);
  assert.equal(wallet.address, keypairFromSeed(seed).address);
  assert.match(wallet.publicKey, /^0x[0-9a-f]{64}$/);
  assert.deepEqual(wallet, { address: wallet.address, publicKey: wallet.publicKey, payoutAddress: null, backedUp: false, protection: 'os' });
  assert.deepEqual(await store.info(), wallet);

  assert.deepEqual(await files(dir), ['hotkey.enc', 'wallet.json']);
  const enc = await readFile(join(dir, 'hotkey.enc'));
  for (const secret of [mnemonic, ...mnemonic.split(' '), Buffer.from(seed).toString('hex')]) {
    assert.ok(!enc.includes(secret), 'a secret is stored in clear');
  }
  assert.ok(!enc.includes(Buffer.from(seed)), 'the raw seed is stored in clear');
  if (POSIX) {
    assert.equal(await mode(dir), 0o700);
    assert.equal(await mode(join(dir, 'hotkey.enc')), 0o600);
  }

  // A new store on the same folder (the app restarted) reads the same key with the same keyring.
  const again = open(dir, box);
  assert.deepEqual(await again.info(), wallet);
  assert.deepEqual(await again.seed(), seed);
  assert.equal(await again.revealMnemonic(), mnemonic);
  assert.deepEqual(await again.confirmBackup(), { ...wallet, backedUp: true });
  assert.equal((await open(dir, box).info())?.backedUp, true);
});

test('import: the Bittensor known answer, counted as backed up', async () => {
  const dir = freshDir();
  const store = open(dir);
  // Extra spaces, capitals and a line break, as a pasted phrase may have them.
  const wallet = await store.import(`  ${BT_MNEMONIC.toUpperCase().replace(' rib ', ' rib\n ')} `);
  assert.deepEqual(wallet, { address: BT_ADDRESS, publicKey: BT_PUBLIC, payoutAddress: null, backedUp: true, protection: 'os' });
  assert.equal(Buffer.from(await store.seed()).toString('hex'), BT_SEED_HEX);
  assert.equal(await store.revealMnemonic(), BT_MNEMONIC);
});

test('a wrong recovery phrase is refused clearly and nothing is written', async () => {
  const dir = freshDir();
  const store = open(dir);
  const words = BT_MNEMONIC.split(' ');
  const cases: [string, RegExp][] = [
    [words.slice(0, 11).join(' '), /^That recovery phrase is not valid: expected 12, 15, 18, 21 or 24 words, got 11\.$/],
    [[...words.slice(0, 11), 'leopardd'].join(' '), /^That recovery phrase is not valid: word 12 is not in the BIP-39 English word list\.$/],
    [[words[1], words[0], ...words.slice(2)].join(' '), /^That recovery phrase is not valid: the checksum does not match \(a word is wrong or out of order\)\.$/],
    ['', /^Enter the recovery phrase: its 12 to 24 words/],
    ['   \n ', /^Enter the recovery phrase/],
  ];
  for (const [phrase, problem] of cases) await refused(store.import(phrase), problem, ['leopard', 'transfer', 'spatial']);
  assert.deepEqual(await files(join(dir, '..')), [], 'not even the folder was made');
  assert.equal(await store.info(), null);
});

test('create or import when a wallet exists is refused, and the key is untouched', async () => {
  const dir = freshDir();
  const store = open(dir);
  const { wallet } = await store.create();
  await refused(store.create(), /already a wallet on this computer .*export or back up this one, then remove it first/);
  await refused(store.import(BT_MNEMONIC), /already a wallet/);
  assert.deepEqual(await store.info(), wallet);
  // Two creates at once on an empty folder: one wins, one is refused.
  const other = open(freshDir());
  const results = await Promise.allSettled([other.create(), other.create()]);
  assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
});

test('payout address: valid, malformed, bad checksum, another network, the hotkey itself, cleared', async () => {
  const dir = freshDir();
  const store = open(dir);
  await refused(store.setPayout(COLDKEY), /no wallet yet/);
  const wallet = await store.import(BT_MNEMONIC);

  assert.deepEqual(await store.setPayout(` ${COLDKEY} `), { ...wallet, payoutAddress: COLDKEY });
  assert.equal((await store.info())?.payoutAddress, COLDKEY);

  const wrongChecksum = `${COLDKEY.slice(0, -1)}${COLDKEY.endsWith('u') ? 'v' : 'u'}`;
  await refused(store.setPayout('nonsense'), /^The payout address is not a valid SS58 address \(it should look like 5F…/);
  await refused(store.setPayout('0x1234'), /not a valid SS58 address/);
  await refused(store.setPayout(COLDKEY.slice(0, 20)), /not a valid SS58 address/);
  await refused(store.setPayout(wrongChecksum), /checksum does not match/);
  await refused(store.setPayout('16ADqpMa4yzfmWs3nuTSMhfZ2ckeGtvqhPWCNqECEGDcGgU2'), /another network, not Bittensor/);
  await refused(store.setPayout(BT_ADDRESS), /own hotkey address\. Rewards are paid to your coldkey/);
  // A recovery phrase pasted into the wrong field is not echoed back.
  await refused(store.setPayout(BT_MNEMONIC), /not a valid SS58 address.*Never paste a recovery phrase here/, ['leopard', 'review']);
  assert.equal((await store.info())?.payoutAddress, COLDKEY, 'refusals change nothing');

  assert.equal((await store.setPayout(null)).payoutAddress, null);
  assert.equal((await store.info())?.payoutAddress, null);
  await store.setPayout(COLDKEY);
  assert.equal((await store.setPayout('  ')).payoutAddress, null, 'an empty field clears it');
});

test('no keyring: refused without consent; with it, the plain keyfile tah reads, private', async () => {
  const dir = freshDir();
  await refused(open(dir, plainBox, false).create(), new RegExp(`^${NO_KEYRING_MESSAGE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
  await refused(open(dir, plainBox, false).import(BT_MNEMONIC), /no keyring .*Allow it in Settings, or install\/unlock a keyring such as GNOME Keyring or KWallet/);
  assert.deepEqual(await files(join(dir, '..')), []);

  const store = open(dir, plainBox, true);
  const { wallet, mnemonic } = await store.create();
  assert.equal(wallet.protection, 'plaintext');
  assert.deepEqual(await files(dir), ['hotkey.json', 'wallet.json']);
  const path = join(dir, 'hotkey.json');
  if (POSIX) assert.equal(await mode(path), 0o600);
  const loaded = await loadWallet(path);
  assert.equal(loaded.address, wallet.address);
  assert.deepEqual(loaded.warnings, []);
  assert.equal(JSON.parse(await readFile(path, 'utf8')).secretPhrase, mnemonic);

  // Consent is asked at writing only; the key stays readable, also once a keyring appears.
  assert.deepEqual(await open(dir, plainBox, false).info(), wallet);
  assert.deepEqual(await open(dir, osBox(), false).info(), wallet);
});

test('export: a keyfile tah and btcli read, private, never over an existing file', async () => {
  const dir = freshDir();
  const store = open(dir);
  await refused(store.exportKeyfile(join(root, 'nothing.json')), /no wallet yet/);
  const wallet = await store.import(BT_MNEMONIC);
  const out = join(root, `export-${counter}`, 'sub', 'hotkey.json');
  await store.exportKeyfile(out);
  const loaded = await loadWallet(out);
  assert.equal(loaded.address, wallet.address);
  assert.equal(loaded.address, BT_ADDRESS);
  assert.deepEqual(loaded.warnings, []);
  if (POSIX) assert.equal(await mode(out), 0o600);

  await writeFile(out, 'another key');
  await refused(store.exportKeyfile(out), /already exists: choose another name/);
  assert.equal(await readFile(out, 'utf8'), 'another key');
});

test('damaged or foreign files: clear errors, never a crash, never the secret', async () => {
  const dir = freshDir();
  const box = osBox();
  const store = open(dir, box);
  const { wallet, mnemonic } = await store.create();
  await store.setPayout(COLDKEY);
  // Single words are not checked: BIP-39 words such as "wallet" or "file" occur in plain messages.
  const words = mnemonic.split(' ');
  const secrets = [mnemonic, Buffer.from(parseMnemonic(mnemonic).seed).toString('hex'), ...words.slice(1).map((w, i) => `${words[i]} ${w}`)];
  const enc = join(dir, 'hotkey.enc');
  const original = await readFile(enc);

  // One flipped bit: the authenticated encryption notices.
  const tampered = Buffer.from(original);
  tampered[tampered.length - 1] ^= 1;
  await writeFile(enc, tampered);
  for (const op of [store.info(), store.seed(), store.revealMnemonic(), store.setPayout(null), store.exportKeyfile(join(root, `x-${counter}.json`))]) {
    await refused(op, /^The wallet key .*hotkey\.enc cannot be decrypted: the file is damaged, or it was encrypted by another user account or computer/, secrets);
  }
  // Another user's (or computer's) keyring, and a keyring that is gone now.
  await writeFile(enc, original);
  await refused(open(dir).info(), /cannot be decrypted/, secrets);
  await refused(open(dir, plainBox, true).info(), /encrypted with the system keyring, which is not available now: unlock the keyring/, secrets);
  // Decrypts, but is not a key file: parseKeyfile's checks, without quoting the content.
  await writeFile(enc, box.encrypt(`{"secretPhrase": "${mnemonic}", "secretSeed": "0x${'11'.repeat(32)}"`));
  await refused(store.info(), /^wallet key .*hotkey\.enc: is not a JSON key file/, secrets);
  await writeFile(enc, box.encrypt(JSON.stringify({ secretPhrase: mnemonic, secretSeed: `0x${'11'.repeat(32)}` })));
  await refused(store.info(), /^wallet key .*hotkey\.enc: secretSeed does not belong to secretPhrase$/, secrets);
  await writeFile(enc, Buffer.alloc(0));
  await refused(store.info(), /cannot be decrypted/);

  // A damaged wallet.json alone: the key is fine, the metadata reads as empty.
  await writeFile(enc, original);
  for (const damaged of ['{"hotkey": ', '[]', '{"hotkey": 1}', JSON.stringify({ hotkey: BT_ADDRESS, payoutAddress: COLDKEY, backedUp: true })]) {
    await writeFile(join(dir, 'wallet.json'), damaged);
    assert.deepEqual(await store.info(), { ...wallet, payoutAddress: null, backedUp: false });
  }
  await writeFile(join(dir, 'wallet.json'), JSON.stringify({ hotkey: wallet.address, payoutAddress: 'edited', backedUp: true }));
  assert.deepEqual(await store.info(), { ...wallet, payoutAddress: null, backedUp: true });
  assert.equal((await store.setPayout(COLDKEY)).payoutAddress, COLDKEY, 'and can be written again');

  // Two keys (a hand-made hotkey.json beside hotkey.enc): refused rather than guessed.
  await writeFile(join(dir, 'hotkey.json'), '{}', { mode: 0o600 });
  await refused(store.info(), /holds two keys \(hotkey\.enc and hotkey\.json\)/);
  await rm(join(dir, 'hotkey.json'));
  await mkdir(join(dir, 'hotkey.json'));
  await refused(store.info(), /not a file/);
});
