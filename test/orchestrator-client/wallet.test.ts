// Hotkey files: Bittensor's keyfile layout, private on disk, refused clearly when damaged.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { mnemonicToMiniSecret } from '@polkadot/util-crypto';
import { generateMnemonic, keypairFromMnemonic, keypairFromSeed, ready, signRequest, verifyRequest, NonceCache } from '../../orchestrator-client/signing.ts';
import { createWallet, defaultWalletPath, loadWallet, walletAddress } from '../../orchestrator-client/wallet.ts';

// Known answers from Bittensor's wallet library tests (opentensor/btwallet tests/test_keyfile.py):
// this mnemonic's address and public key, and the same key's "privateKey" as btcli stores it.
const BT_MNEMONIC = 'old leopard transfer rib spatial phone calm indicate online fire caution review';
const BT_ADDRESS = '5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX';
const BT_PUBLIC = '0xe4359ad3e2716c539a1d663ebd0a51bdc5c98a12e663bb4c4402db47828c9446';
const BT_PRIVATE = '0x1f1995bdf3a17b60626a26cfe6f564b337d46056b7a1281b64c649d592ccda0a9cffd34d9fb01cae1fba61aeed184c817442a2186d5172416729a4b54dd4b84e';
const BT_SEED = '0xda3cf5b1e9144931a0f0db65664aab662673b099415a7f8121b7245fb0be4143';
const POSIX = process.platform !== 'win32';

let dir = '';
before(async () => {
  await ready();
  dir = await mkdtemp(join(tmpdir(), 'tah-wallet-'));
});
after(() => rm(dir, { recursive: true, force: true }));

let counter = 0;
const fresh = (): string => join(dir, `case-${++counter}`, 'wallets', 'default', 'hotkey.json');
const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

/** A btcli-style hotkey file for the known mnemonic, with some fields changed. */
async function btcliFile(changes: Record<string, unknown> = {}): Promise<string> {
  const path = join(dir, `btcli-${++counter}.json`);
  const fields = { accountId: BT_PUBLIC, publicKey: BT_PUBLIC, privateKey: BT_PRIVATE, secretPhrase: BT_MNEMONIC, secretSeed: BT_SEED, ss58Address: BT_ADDRESS, ...changes };
  await writeFile(path, JSON.stringify(fields), { mode: 0o600 });
  return path;
}

async function refused(path: string, problem: RegExp): Promise<void> {
  await assert.rejects(loadWallet(path), (e: Error) => {
    assert.doesNotMatch(e.message, /\n/);
    assert.ok(e.message.includes(path), `the error names the file: ${e.message}`);
    assert.match(e.message, problem);
    // Never echo the secret.
    assert.ok(!e.message.includes('leopard') && !e.message.includes(BT_PRIVATE.slice(2, 20)), e.message);
    return true;
  });
}

test('create then load gives the same key, in btcli\'s layout, private on disk', async () => {
  const path = fresh();
  const created = await createWallet(path);
  assert.equal(created.generated, true);
  assert.equal(created.mnemonic.split(' ').length, 12);
  assert.equal(created.address, keypairFromMnemonic(created.mnemonic).address);

  const file = JSON.parse(await readFile(path, 'utf8')) as Record<string, string>;
  assert.deepEqual(Object.keys(file).sort(), ['accountId', 'privateKey', 'publicKey', 'secretPhrase', 'secretSeed', 'ss58Address']);
  assert.equal(file.ss58Address, created.address);
  assert.equal(file.publicKey, created.publicKey);
  assert.equal(file.accountId, created.publicKey);
  assert.equal(file.secretPhrase, created.mnemonic);
  assert.equal(file.secretSeed, `0x${Buffer.from(mnemonicToMiniSecret(created.mnemonic)).toString('hex')}`);
  assert.match(file.privateKey, /^0x[0-9a-f]{128}$/);

  const loaded = await loadWallet(path);
  assert.equal(loaded.address, created.address);
  assert.equal(loaded.publicKey, created.publicKey);
  assert.deepEqual(loaded.warnings, []);
  assert.equal(await walletAddress(path), created.address);
  // The loaded key signs requests the server accepts.
  const req = { method: 'POST', path: '/v1/participants/heartbeat', body: '' };
  const headers = signRequest(loaded.keypair, req, { now: 1_000_000 });
  const verified = verifyRequest({ ...req, headers }, { now: 1_000_000, seen: new NonceCache() });
  assert.ok(verified.ok);
  assert.equal(verified.hotkey, created.address);

  if (POSIX) {
    assert.equal(await mode(path), 0o600);
    for (const folder of [join(path, '..'), join(path, '..', '..'), join(path, '..', '..', '..')]) assert.equal(await mode(folder), 0o700, folder);
  }
  // Nothing else is left in the folder (no temporary files).
  assert.deepEqual(await readdir(join(path, '..')), ['hotkey.json']);
});

test('the file is private even under a permissive umask, and an existing folder is left as it is', { skip: !POSIX }, async () => {
  const parent = join(dir, `shared-${++counter}`);
  await mkdir(parent, { mode: 0o755 });
  await chmod(parent, 0o755);
  const old = process.umask(0);
  try {
    const path = join(parent, 'hotkey.json');
    await createWallet(path);
    assert.equal(await mode(path), 0o600);
    assert.equal(await mode(parent), 0o755);
  } finally {
    process.umask(old);
  }
});

test('a given mnemonic gives btcli\'s key and privateKey byte for byte', async () => {
  const path = fresh();
  const created = await createWallet(path, { mnemonic: `  ${BT_MNEMONIC}\n` });
  assert.equal(created.generated, false);
  assert.equal(created.address, BT_ADDRESS);
  assert.equal(created.mnemonic, BT_MNEMONIC);
  const file = JSON.parse(await readFile(path, 'utf8')) as Record<string, string>;
  assert.deepEqual(file, { accountId: BT_PUBLIC, publicKey: BT_PUBLIC, privateKey: BT_PRIVATE, secretPhrase: BT_MNEMONIC, secretSeed: BT_SEED, ss58Address: BT_ADDRESS });
});

test('btcli hotkey files load: full, seed only, private key only, null fields', async () => {
  assert.equal((await loadWallet(await btcliFile())).address, BT_ADDRESS);
  assert.equal((await loadWallet(await btcliFile({ secretPhrase: null }))).address, BT_ADDRESS);
  assert.equal((await loadWallet(await btcliFile({ secretPhrase: null, secretSeed: null }))).address, BT_ADDRESS);
  const onlyPrivate = await loadWallet(await btcliFile({ secretPhrase: null, secretSeed: null, publicKey: null, accountId: null }));
  assert.equal(onlyPrivate.address, BT_ADDRESS);
  // A key loaded from btcli's privateKey signs exactly as the one from the mnemonic.
  const fromMnemonic = keypairFromMnemonic(BT_MNEMONIC);
  assert.deepEqual(onlyPrivate.keypair.secretKey, fromMnemonic.secretKey);
  // Extra keys are ignored, as btcli ignores them.
  assert.equal((await loadWallet(await btcliFile({ note: 'x' }))).address, BT_ADDRESS);
});

test('refuses to overwrite an existing wallet unless asked', async () => {
  const path = fresh();
  const first = await createWallet(path);
  await assert.rejects(createWallet(path), /already exists; not replacing a key \(use --overwrite/);
  await assert.rejects(createWallet(path, { mnemonic: BT_MNEMONIC }), /already exists/);
  assert.equal((await loadWallet(path)).address, first.address, 'the first key is untouched');
  const second = await createWallet(path, { overwrite: true });
  assert.notEqual(second.address, first.address);
  assert.equal((await loadWallet(path)).address, second.address);
  if (POSIX) assert.equal(await mode(path), 0o600);
  assert.deepEqual(await readdir(join(path, '..')), ['hotkey.json']);
});

test('concurrent creates: exactly one wins, the file is whole', async () => {
  const path = fresh();
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => createWallet(path)));
  const won = results.filter((r) => r.status === 'fulfilled');
  assert.equal(won.length, 1);
  assert.equal((await loadWallet(path)).address, (won[0] as PromiseFulfilledResult<{ address: string }>).value.address);
});

test('a wrong mnemonic is refused before anything is written', async () => {
  const path = fresh();
  const words = BT_MNEMONIC.split(' ');
  await assert.rejects(createWallet(path, { mnemonic: [...words.slice(0, 11), 'notaword'].join(' ') }), /^Error: invalid mnemonic: word 12 is not in the BIP-39 English word list$/);
  await assert.rejects(createWallet(path, { mnemonic: [words[1], words[0], ...words.slice(2)].join(' ') }), /checksum does not match/);
  await assert.rejects(stat(path), { code: 'ENOENT' });
});

test('corrupt and mismatched files are refused with one clear line', async () => {
  const other = keypairFromSeed(new Uint8Array(32).fill(9));
  const otherPublic = `0x${Buffer.from(other.publicKey).toString('hex')}`;
  const raw = async (text: string): Promise<string> => {
    const p = join(dir, `raw-${++counter}.json`);
    await writeFile(p, text, { mode: 0o600 });
    return p;
  };
  await refused(join(dir, 'missing', 'hotkey.json'), /^no wallet file at .* \(create one with `tah wallet create`/);
  await refused(await raw(''), /not a JSON key file/);
  await refused(await raw('{"accountId": "0x12'), /not a JSON key file/);
  await refused(await raw('[1,2]'), /not a JSON object/);
  await refused(await raw('$NACL\x00\x01garbage'), /encrypted with a password/);
  await refused(await raw('{}'), /holds no secret/);
  await refused(await btcliFile({ secretPhrase: null, secretSeed: null, privateKey: null }), /holds no secret .*public-key-only/);
  await refused(await btcliFile({ publicKey: '0x1234' }), /publicKey: 0x and 64 hex characters/);
  await refused(await btcliFile({ secretSeed: 42 }), /secretSeed: /);
  await refused(await btcliFile({ publicKey: otherPublic }), /publicKey does not match the key's secret/);
  await refused(await btcliFile({ accountId: otherPublic }), /accountId does not match/);
  await refused(await btcliFile({ ss58Address: other.address }), /ss58Address does not match/);
  await refused(await btcliFile({ ss58Address: 'nonsense' }), /ss58Address is not a valid SS58 address/);
  await refused(await btcliFile({ secretSeed: `0x${'11'.repeat(32)}` }), /secretSeed does not belong to secretPhrase/);
  await refused(await btcliFile({ secretPhrase: `${BT_MNEMONIC.split(' ').slice(0, 11).join(' ')} zoo` }), /secretPhrase: invalid mnemonic: the checksum/);
  await refused(await btcliFile({ privateKey: `0x${'22'.repeat(64)}` }), /privateKey does not belong to secretPhrase/);
  const flipped = `${BT_PRIVATE.slice(0, 20)}${BT_PRIVATE[20] === '0' ? '1' : '0'}${BT_PRIVATE.slice(21)}`;
  await refused(await btcliFile({ secretPhrase: null, secretSeed: null, privateKey: flipped }), /privateKey does not belong to the public key/);
  await refused(await btcliFile({ secretPhrase: null, secretSeed: null, privateKey: flipped, publicKey: null, accountId: null }), /privateKey does not belong/);
  await refused(await btcliFile({ secretPhrase: null, secretSeed: null, publicKey: null, accountId: null, ss58Address: null }), /no publicKey or ss58Address/);
  await refused(dir, /is a folder/);
});

test('a key file others can read loads with a warning', { skip: !POSIX }, async () => {
  const path = await btcliFile();
  await chmod(path, 0o644);
  const w = await loadWallet(path);
  assert.equal(w.address, BT_ADDRESS);
  assert.equal(w.warnings.length, 1);
  assert.match(w.warnings[0], /accessible to other users \(mode 0644\): run chmod 600/);
});

test('the default location follows TAH_HOME', () => {
  assert.equal(defaultWalletPath({ TAH_HOME: '/srv/tah' }), join('/srv/tah', 'wallets', 'default', 'hotkey.json'));
  assert.match(defaultWalletPath({}), /[/\\]\.tah[/\\]wallets[/\\]default[/\\]hotkey\.json$/);
  assert.ok(generateMnemonic() !== generateMnemonic());
});
