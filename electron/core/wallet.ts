// The desktop app's wallet: one sr25519 hotkey (the key that signs the training work), made here or
// imported from its BIP-39 recovery phrase, plus the coldkey address rewards are paid to. The key
// is the same keyfile JSON `tah wallet` writes (orchestrator-client/wallet.ts), kept encrypted at
// rest by a SecretBox (Electron's safeStorage in the app). This file never imports 'electron', so
// it runs, and is tested, in plain Node.
//
// In `dir` (created private, 0700):
//   hotkey.enc   box.encrypt(keyfile JSON), when the OS keeps the encryption key
//   hotkey.json  the plain keyfile JSON, 0600, only on a computer without a keyring and only with
//                the user's consent; `tah wallet show --wallet <dir>/hotkey.json` reads it
//   wallet.json  metadata: payout address, backed-up flag, and the hotkey they belong to
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { checkAddress, decodeAddress } from '@polkadot/util-crypto';
import { z } from 'zod';
import type { WalletInfo } from '../ipc-contract.ts';
import { writeFileAtomic } from '../../orchestrator-client/files.ts';
import { type Keypair, SS58_PREFIX, generateMnemonic, keypairFromSeed, parseMnemonic, ready } from '../../orchestrator-client/signing.ts';
import { keyfileJson, parseKeyfile } from '../../orchestrator-client/wallet.ts';

/** What keeps secrets at rest: Electron's safeStorage in the app; the tests bring their own. */
export interface SecretBox {
  /** 'os': encrypted with a key the OS keeps (Keychain, DPAPI, libsecret/kwallet); 'plaintext': no keyring (Electron's basic_text on Linux). */
  protection(): 'os' | 'plaintext';
  encrypt(plain: string): Buffer;
  decrypt(data: Buffer): string;
}

export interface WalletStoreOptions {
  dir: string;
  box: SecretBox;
  /** The user agreed to keep the key unencrypted (Settings.allowPlaintextKey); asked at each write. */
  allowPlaintext: () => boolean;
}

export const NO_KEYRING_MESSAGE =
  'This computer has no keyring (or it is locked): the key would be stored unencrypted. ' +
  'Allow it in Settings, or install/unlock a keyring such as GNOME Keyring or KWallet.';

/** A key file is a few hundred bytes; anything far larger is not one (and is not read into memory). */
const MAX_KEY_FILE_BYTES = 64 * 1024;

// The hotkey field ties the metadata to one key, so metadata left from another key is never applied
// to this one (e.g. a payout address, after a key file was replaced by hand).
const MetadataSchema = z.object({
  hotkey: z.string(),
  payoutAddress: z.string().nullable(),
  backedUp: z.boolean(),
});
type Metadata = z.infer<typeof MetadataSchema>;

interface StoredKey {
  keypair: Keypair;
  seed: Uint8Array | null;
  phrase: string | null;
  /** The validated keyfile JSON, decrypted. */
  text: string;
  protection: WalletInfo['protection'];
}

const toHex = (b: Uint8Array): string => `0x${Buffer.from(b).toString('hex')}`;
const codeOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;

export class WalletStore {
  private readonly dir: string;
  private readonly box: SecretBox;
  private readonly allowPlaintext: () => boolean;
  private readonly encPath: string;
  private readonly plainPath: string;
  private readonly metaPath: string;
  /** Operations run one at a time, so that two creates, or a create and a setPayout, never interleave. */
  private queue: Promise<unknown> = Promise.resolve();

  /** How a key written now would be kept: by the OS keychain/keyring, or in a file only the user can read. */
  keyStorage(): 'os' | 'plaintext' {
    return this.box.protection();
  }

  constructor(opts: WalletStoreOptions) {
    this.dir = resolve(opts.dir);
    this.box = opts.box;
    this.allowPlaintext = opts.allowPlaintext;
    this.encPath = join(this.dir, 'hotkey.enc');
    this.plainPath = join(this.dir, 'hotkey.json');
    this.metaPath = join(this.dir, 'wallet.json');
  }

  /** The wallet as the app shows it; null when there is none yet. */
  info(): Promise<WalletInfo | null> {
    return this.serial(async () => {
      const key = await this.readKey();
      return key && this.infoOf(key, await this.readMetadata(key.keypair.address));
    });
  }

  /** A new key from a new 12-word recovery phrase; the phrase is returned once, to be written down. */
  create(): Promise<{ wallet: WalletInfo; mnemonic: string }> {
    return this.serial(async () => {
      await this.refuseIfExists();
      const { phrase, seed } = parseMnemonic(generateMnemonic(12));
      const wallet = await this.store(phrase, seed, false);
      return { wallet, mnemonic: phrase };
    });
  }

  /** The key of an existing recovery phrase (counted as backed up: the user already has the words). */
  import(mnemonic: string): Promise<WalletInfo> {
    return this.serial(async () => {
      await this.refuseIfExists();
      const { phrase, seed } = checkMnemonic(mnemonic);
      return this.store(phrase, seed, true);
    });
  }

  /** Sets the coldkey address rewards are paid to; null (or an empty field) clears it. */
  setPayout(address: string | null): Promise<WalletInfo> {
    return this.serial(async () => {
      const key = await this.requireKey();
      const trimmed = address?.trim() ?? '';
      const payoutAddress = trimmed === '' ? null : checkPayoutAddress(trimmed, key.keypair.publicKey);
      const metadata = { ...(await this.readMetadata(key.keypair.address)), payoutAddress };
      await this.writeMetadata(metadata);
      return this.infoOf(key, metadata);
    });
  }

  revealMnemonic(): Promise<string> {
    return this.serial(async () => {
      const key = await this.requireKey();
      if (key.phrase === null) throw new Error('This wallet has no recovery phrase stored (its key file holds only the key itself), so there are no words to show.');
      return key.phrase;
    });
  }

  /** The user confirmed they wrote the recovery phrase down. */
  confirmBackup(): Promise<WalletInfo> {
    return this.serial(async () => {
      const key = await this.requireKey();
      const metadata = { ...(await this.readMetadata(key.keypair.address)), backedUp: true };
      await this.writeMetadata(metadata);
      return this.infoOf(key, metadata);
    });
  }

  /**
   * Writes the key as the unencrypted keyfile JSON `tah wallet` and btcli read: private (0600) from
   * its first byte, atomically. An existing file is never replaced, since it may be another key.
   */
  exportKeyfile(path: string): Promise<void> {
    return this.serial(async () => {
      const key = await this.requireKey();
      try {
        await writeFileAtomic(path, key.text, { mode: 0o600, overwrite: false, createParents: 0o700 });
      } catch (e) {
        if (codeOf(e) === 'EEXIST') throw new Error(`${path} already exists: choose another name (an existing file is never replaced, as it may hold another key).`, { cause: e });
        throw fileError(e, `Cannot write ${path}`);
      }
    });
  }

  /** The 32-byte seed, for the training worker. */
  seed(): Promise<Uint8Array> {
    return this.serial(async () => {
      const key = await this.requireKey();
      if (key.seed === null) throw new Error('This wallet\'s key file holds no seed (only a private key); import the wallet from its recovery phrase to train with it.');
      return key.seed;
    });
  }

  // ---- inside ----

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      await ready();
      return op();
    });
    this.queue = run.catch(() => {});
    return run;
  }

  private infoOf(key: StoredKey, metadata: Metadata): WalletInfo {
    return {
      address: key.keypair.address,
      publicKey: toHex(key.keypair.publicKey),
      payoutAddress: metadata.payoutAddress,
      backedUp: metadata.backedUp,
      protection: key.protection,
    };
  }

  /** Whether a file is there; a folder in its place or an unreadable folder is an error, not "no". */
  private async exists(path: string): Promise<boolean> {
    try {
      const s = await stat(path);
      if (!s.isFile()) throw new Error(`The wallet folder holds something that is not a file at ${path}; move it away.`);
      return true;
    } catch (e) {
      if (codeOf(e) === 'ENOENT') return false;
      throw fileError(e, `Cannot read the wallet folder ${this.dir}`);
    }
  }

  /** Which key file there is, if any (there is at most one: create/import never write a second). */
  private async locate(): Promise<{ path: string; protection: WalletInfo['protection'] } | null> {
    const [enc, plain] = await Promise.all([this.exists(this.encPath), this.exists(this.plainPath)]);
    if (enc && plain) {
      throw new Error(`The wallet folder ${this.dir} holds two keys (hotkey.enc and hotkey.json), and the app cannot tell which to use: move one of them away.`);
    }
    if (enc) return { path: this.encPath, protection: 'os' };
    if (plain) return { path: this.plainPath, protection: 'plaintext' };
    return null;
  }

  private async refuseIfExists(): Promise<void> {
    const found = await this.locate();
    if (found) {
      throw new Error(`There is already a wallet on this computer (${found.path}). To use another key, export or back up this one, then remove it first: a key that is replaced is lost for good.`);
    }
  }

  private async requireKey(): Promise<StoredKey> {
    const key = await this.readKey();
    if (!key) throw new Error('There is no wallet yet: create one or import one from its recovery phrase first.');
    return key;
  }

  /** The stored key, decrypted and checked; null when there is none. Errors never carry the secret. */
  private async readKey(): Promise<StoredKey | null> {
    const found = await this.locate();
    if (!found) return null;
    let data: Buffer;
    try {
      const s = await stat(found.path);
      if (s.size > MAX_KEY_FILE_BYTES) throw new Error(`The wallet key ${found.path} is ${s.size} bytes, far too large for a key: it is damaged or not a key.`);
      data = await readFile(found.path);
    } catch (e) {
      throw fileError(e, `Cannot read the wallet key ${found.path}`);
    }

    const origin = found.protection === 'plaintext' ? `wallet file ${found.path}` : `wallet key ${found.path}`;
    let text: string;
    try {
      text = found.protection === 'plaintext' ? data.toString('utf8') : this.box.decrypt(data);
    } catch {
      // The box's own error says nothing a user can act on; this does.
      throw this.undecryptable(found.path);
    }
    try {
      return { ...parseKeyfile(text, origin), text, protection: found.protection };
    } catch (e) {
      // Without a keyring now, "decrypting" may give garbage rather than fail (Electron's basic_text).
      if (found.protection === 'os' && this.box.protection() === 'plaintext') throw this.undecryptable(found.path);
      // The message names the problem only; its cause (e.g. a JSON parser's excerpt) may quote the secret.
      // eslint-disable-next-line preserve-caught-error -- the cause is dropped on purpose, see above
      throw new Error((e as Error).message);
    }
  }

  private undecryptable(path: string): Error {
    if (this.box.protection() === 'plaintext') {
      return new Error(`The wallet key ${path} is encrypted with the system keyring, which is not available now: unlock the keyring (e.g. GNOME Keyring or KWallet) and try again.`);
    }
    return new Error(
      `The wallet key ${path} cannot be decrypted: the file is damaged, or it was encrypted by another user account or computer. ` +
        'Move it away and import the wallet again from its recovery phrase.',
    );
  }

  /** The metadata of the key with this address; missing, damaged or another key's metadata reads as empty. */
  private async readMetadata(hotkey: string): Promise<Metadata> {
    const empty: Metadata = { hotkey, payoutAddress: null, backedUp: false };
    let parsed: Metadata;
    try {
      const s = await stat(this.metaPath);
      if (!s.isFile() || s.size > MAX_KEY_FILE_BYTES) return empty;
      parsed = MetadataSchema.parse(JSON.parse(await readFile(this.metaPath, 'utf8')));
    } catch {
      return empty; // Only advice lives here; the key itself is elsewhere and intact.
    }
    if (parsed.hotkey !== hotkey) return empty;
    let payoutAddress = parsed.payoutAddress;
    if (payoutAddress !== null) {
      try {
        checkPayoutAddress(payoutAddress, decodeAddress(hotkey));
      } catch {
        payoutAddress = null; // edited by hand into something rewards could not be paid to
      }
    }
    return { hotkey, payoutAddress, backedUp: parsed.backedUp };
  }

  private async writeMetadata(metadata: Metadata): Promise<void> {
    try {
      await writeFileAtomic(this.metaPath, `${JSON.stringify(metadata, null, 2)}\n`, { mode: 0o600, createParents: 0o700 });
    } catch (e) {
      throw fileError(e, `Cannot save the wallet settings ${this.metaPath}`);
    }
  }

  /** Writes a new key (never over an existing one), then its metadata. Nothing is written on refusal. */
  private async store(phrase: string, seed: Uint8Array, backedUp: boolean): Promise<WalletInfo> {
    const protection = this.box.protection();
    if (protection === 'plaintext' && !this.allowPlaintext()) throw new Error(NO_KEYRING_MESSAGE);
    const keypair = keypairFromSeed(seed);
    const text = keyfileJson(keypair, phrase, seed);

    let path: string;
    let data: Buffer | string;
    if (protection === 'os') {
      path = this.encPath;
      try {
        data = this.box.encrypt(text);
        // A keyring that encrypts but cannot decrypt would lose the key; find out now, not later.
        if (this.box.decrypt(data) !== text) throw new Error('the encrypted key does not decrypt to the same key');
      } catch (e) {
        throw new Error(`Could not encrypt the key with the system keyring: ${(e as Error).message}`, { cause: e });
      }
    } else {
      path = this.plainPath;
      data = text;
    }
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await writeFileAtomic(path, data, { mode: 0o600, overwrite: false });
    } catch (e) {
      if (codeOf(e) === 'EEXIST') await this.refuseIfExists(); // another process was quicker
      throw fileError(e, `Cannot save the wallet key ${path}`);
    }
    const metadata: Metadata = { hotkey: keypair.address, payoutAddress: null, backedUp };
    await this.writeMetadata(metadata);
    return this.infoOf({ keypair, seed, phrase, text, protection }, metadata);
  }
}

/** parseMnemonic with its messages worded for the person typing the words. */
function checkMnemonic(mnemonic: string): { phrase: string; seed: Uint8Array } {
  if (mnemonic.trim() === '') throw new Error('Enter the recovery phrase: its 12 to 24 words, separated by spaces.');
  try {
    return parseMnemonic(mnemonic);
  } catch (e) {
    // parseMnemonic names a wrong word by its position only, never the word.
    const detail = (e as Error).message.replace(/^invalid mnemonic: /, '');
    throw new Error(`That recovery phrase is not valid: ${detail}.`, { cause: e });
  }
}

const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/;
const LOOKS_LIKE = 'it should look like 5F…: one word of 48 letters and digits';

/** The payout address, checked: an SS58 address (Bittensor's format) of a 32-byte key, checksum and all, that is not the hotkey. */
function checkPayoutAddress(address: string, hotkeyPublic: Uint8Array): string {
  // The input is never quoted back: a recovery phrase pasted into the wrong field must not end up in an error message or a log.
  if (/\s/.test(address)) throw new Error(`The payout address is not a valid SS58 address (${LOOKS_LIKE}, with no spaces). Never paste a recovery phrase here.`);
  let key: Uint8Array;
  try {
    // decodeAddress also takes hex, so only base58 text counts; the checksum is checked separately below.
    if (!BASE58.test(address)) throw new Error('not base58');
    key = decodeAddress(address, true);
    if (key.length !== 32) throw new Error('not the address of a 32-byte key');
  } catch {
    throw new Error(`The payout address is not a valid SS58 address (${LOOKS_LIKE}).`);
  }
  const [ok, problem] = checkAddress(address, SS58_PREFIX);
  if (!ok) {
    if (problem?.includes('checksum')) {
      throw new Error('The payout address is not a valid SS58 address: its checksum does not match, so a character is wrong or missing. Copy and paste it rather than typing it.');
    }
    throw new Error('The payout address is for another network, not Bittensor: a Bittensor address starts with 5 (SS58 format 42).');
  }
  if (Buffer.from(key).equals(Buffer.from(hotkeyPublic))) {
    throw new Error(
      "That is this app's own hotkey address. Rewards are paid to your coldkey: the address of a wallet you keep elsewhere " +
        '(made with btcli or a Bittensor wallet app). The hotkey only signs the training work, and its key lives on this computer.',
    );
  }
  return address;
}

/** A file-system error as one plain line (the path, not the raw errno text). */
function fileError(e: unknown, what: string): Error {
  switch (codeOf(e)) {
    case 'EACCES':
    case 'EPERM':
      return new Error(`${what}: permission denied.`, { cause: e });
    case 'ENOSPC':
      return new Error(`${what}: the disk is full.`, { cause: e });
    case 'ENOTDIR':
      return new Error(`${what}: a folder in the path is a file.`, { cause: e });
    case 'EISDIR':
      return new Error(`${what}: it is a folder.`, { cause: e });
    case 'EROFS':
      return new Error(`${what}: the disk is read-only.`, { cause: e });
    default:
      // Errors made here are already plain; others keep their message.
      return e instanceof Error ? e : new Error(`${what}: ${String(e)}`);
  }
}
