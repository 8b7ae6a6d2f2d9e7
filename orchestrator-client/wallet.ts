// Hotkey files in Bittensor's unencrypted keyfile layout, so that a hotkey made by `btcli` can sign
// tah's requests and a key made here can be read by `btcli`:
//   {"accountId": "0x<public key>", "publicKey": "0x<public key>", "privateKey": "0x<64-byte secret>",
//    "secretPhrase": "<mnemonic>", "secretSeed": "0x<32-byte seed>", "ss58Address": "5…"}
//
// One trap: "privateKey" holds the secret as substrate/schnorrkel serialises it (SecretKey::to_bytes:
// the scalar, then the nonce), while the polkadot.js sr25519 functions take the scalar multiplied by
// the cofactor 8 (the "Ed25519 byte order"). Both describe the same key; the conversion is below.
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { decodeAddress } from '@polkadot/util-crypto';
import { sr25519Sign, sr25519Verify } from '@polkadot/wasm-crypto';
import { z } from 'zod';
import { writeFileAtomic } from './files.ts';
import { type Keypair, generateMnemonic, keypairFromSeed, parseMnemonic, ready, ss58 } from './signing.ts';

export interface Wallet {
  path: string;
  keypair: Keypair;
  address: string;
  /** 0x-prefixed hex. */
  publicKey: string;
  /** Problems that do not stop the key from being used (e.g. a file other users can read). */
  warnings: string[];
}

export interface CreatedWallet {
  path: string;
  address: string;
  publicKey: string;
  mnemonic: string;
  /** True when the mnemonic was generated here (and so has not been seen by anyone yet). */
  generated: boolean;
}

/** tah's own folder: $TAH_HOME, defaulting to ~/.tah. */
export function tahHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.TAH_HOME && env.TAH_HOME.trim() !== '' ? resolve(env.TAH_HOME) : join(homedir(), '.tah');
}

/** `$TAH_HOME/wallets/default/hotkey.json`. */
export function defaultWalletPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(tahHome(env), 'wallets', 'default', 'hotkey.json');
}

const hex = (bytes: number) => z.string().regex(new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`), `0x and ${bytes * 2} hex characters`);
const field = <T extends z.ZodType>(t: T) => t.nullable().optional();

// btcli reads every value as a string or null; extra keys are ignored, as btcli does.
const KeyfileSchema = z.object({
  accountId: field(hex(32)),
  publicKey: field(hex(32)),
  privateKey: field(hex(64)),
  secretPhrase: field(z.string().max(1000)),
  secretSeed: field(hex(32)),
  ss58Address: field(z.string().max(100)),
});
type Keyfile = z.infer<typeof KeyfileSchema>;

const toHex = (b: Uint8Array): string => `0x${Buffer.from(b).toString('hex')}`;
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.slice(2), 'hex'));
const equal = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

const leToBig = (b: Uint8Array): bigint => b.reduceRight((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
function bigToLe(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

/** polkadot.js secret (scalar × 8, then nonce) → substrate/btcli "privateKey" (scalar, then nonce). */
function secretToSubstrate(secretKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  out.set(bigToLe(leToBig(secretKey.subarray(0, 32)) >> 3n), 0);
  out.set(secretKey.subarray(32), 32);
  return out;
}

/** substrate/btcli "privateKey" → the polkadot.js form; undefined when the scalar is out of range. */
function secretFromSubstrate(privateKey: Uint8Array): Uint8Array | undefined {
  const scalar = leToBig(privateKey.subarray(0, 32));
  if (scalar >> 252n > 1n) return undefined; // a reduced scalar is below 2^253
  const out = new Uint8Array(64);
  out.set(bigToLe(scalar << 3n), 0);
  out.set(privateKey.subarray(32), 32);
  return out;
}

/** Whether the secret signs for the public key (sr25519 has no cheap secret → public step here). */
function signsFor(secretKey: Uint8Array, publicKey: Uint8Array): boolean {
  const probe = Buffer.from('tah wallet key check', 'utf8');
  return sr25519Verify(sr25519Sign(publicKey, secretKey, probe), probe, publicKey);
}

/** The keyfile JSON (Bittensor layout, see the top of this file) of a key made from `phrase`, whose seed is `seed`. */
export function keyfileJson(keypair: Keypair, phrase: string, seed: Uint8Array): string {
  const publicKey = toHex(keypair.publicKey);
  const file: Required<{ [K in keyof Keyfile]: string }> = {
    accountId: publicKey,
    publicKey,
    privateKey: toHex(secretToSubstrate(keypair.secretKey)),
    secretPhrase: phrase,
    secretSeed: toHex(seed),
    ss58Address: keypair.address,
  };
  return JSON.stringify(file);
}

/**
 * Writes a new hotkey file (Bittensor layout) from `mnemonic`, or from a new 12-word mnemonic. An
 * existing file is kept unless `overwrite`; missing folders are created private (0700) and the
 * file is written atomically, private (0600) from its first byte.
 */
export async function createWallet(path: string = defaultWalletPath(), opts: { mnemonic?: string; overwrite?: boolean } = {}): Promise<CreatedWallet> {
  await ready();
  const generated = opts.mnemonic === undefined;
  const { phrase, seed } = parseMnemonic(opts.mnemonic ?? generateMnemonic(12));
  const keypair = keypairFromSeed(seed);
  try {
    await writeFileAtomic(path, keyfileJson(keypair, phrase, seed), { mode: 0o600, overwrite: opts.overwrite ?? false, createParents: 0o700 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new Error(`wallet file ${path} already exists; not replacing a key (use --overwrite to replace it: the old key is lost unless its mnemonic is backed up)`, { cause: e });
    }
    if (code === 'EACCES' || code === 'EPERM') throw new Error(`cannot write wallet file ${path}: permission denied`, { cause: e });
    if (code === 'ENOTDIR') throw new Error(`cannot write wallet file ${path}: a parent is not a folder`, { cause: e });
    if (code === 'EISDIR') throw new Error(`cannot write wallet file ${path}: it is a folder`, { cause: e });
    throw e;
  }
  return { path, address: keypair.address, publicKey: toHex(keypair.publicKey), mnemonic: phrase, generated };
}

/**
 * Reads and checks a hotkey file (the checks are parseKeyfile's). Any problem is one line naming
 * the file.
 */
export async function loadWallet(path: string = defaultWalletPath()): Promise<Wallet> {
  await ready();
  const bad = (problem: string, cause?: unknown): Error => new Error(`wallet file ${path}: ${problem}`, { cause });
  let text: string;
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw bad('is a folder, not a key file');
    if (info.size > 64 * 1024) throw bad(`is ${info.size} bytes, too large for a key file`);
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`no wallet file at ${path} (create one with \`tah wallet create\`, or name one with --wallet)`, { cause: e });
    if (code === 'EACCES' || code === 'EPERM') throw bad('permission denied', e);
    throw e;
  }
  const warnings: string[] = [];
  if (process.platform !== 'win32') {
    const mode = (await stat(path)).mode & 0o777;
    if (mode & 0o077) warnings.push(`wallet file ${path} is accessible to other users (mode ${mode.toString(8).padStart(4, '0')}): run chmod 600 ${path}`);
  }

  const { keypair } = parseKeyfile(text, `wallet file ${path}`);
  return { path, keypair, address: keypair.address, publicKey: toHex(keypair.publicKey), warnings };
}

/**
 * Checks the text of a hotkey file: its key comes from the mnemonic, else the seed, else the
 * private key (the order btcli uses), and every other field present must describe the same key.
 * Any problem is one line starting with `origin` (e.g. "wallet file PATH"). `seed` and `phrase` are
 * null when the file does not hold them. Await ready() from signing.ts first.
 */
export function parseKeyfile(text: string, origin: string): { keypair: Keypair; seed: Uint8Array | null; phrase: string | null } {
  const bad = (problem: string, cause?: unknown): Error => new Error(`${origin}: ${problem}`, { cause });
  const trimmed = text.trim();
  if (trimmed.startsWith('$NACL') || trimmed.startsWith('$BT') || trimmed.startsWith('$ANSIBLE_VAULT')) {
    throw bad('is encrypted with a password; tah reads unencrypted hotkey files (btcli leaves hotkeys unencrypted unless asked)');
  }
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch (e) {
    throw bad('is not a JSON key file (corrupt, or not a key file)', e);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('is not a JSON object with key fields');
  const parsed = KeyfileSchema.safeParse(json);
  if (!parsed.success) {
    throw bad(parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; '));
  }
  const f = parsed.data;

  let keypair: Keypair;
  let seed: Uint8Array | null = null;
  let phrase: string | null = null;
  if (f.secretPhrase || f.secretSeed) {
    if (f.secretPhrase) {
      try {
        ({ phrase, seed } = parseMnemonic(f.secretPhrase));
      } catch (e) {
        throw bad(`secretPhrase: ${(e as Error).message}`, e);
      }
      if (f.secretSeed && !equal(fromHex(f.secretSeed), seed)) throw bad('secretSeed does not belong to secretPhrase');
    } else {
      seed = fromHex(f.secretSeed!);
    }
    keypair = keypairFromSeed(seed);
    if (f.privateKey) {
      const given = fromHex(f.privateKey);
      // btcli writes the substrate form; accept the polkadot.js form of the same key too.
      if (!equal(given, secretToSubstrate(keypair.secretKey)) && !equal(given, keypair.secretKey)) {
        throw bad(`privateKey does not belong to ${f.secretPhrase ? 'secretPhrase' : 'secretSeed'}`);
      }
    }
  } else if (f.privateKey) {
    // No seed: the public key has to come from the file, and the secret must sign for it.
    const claimed = f.publicKey ?? f.accountId;
    let publicKey: Uint8Array | undefined = claimed ? fromHex(claimed) : undefined;
    if (!publicKey && f.ss58Address) publicKey = publicKeyOfAddress(f.ss58Address, bad);
    if (!publicKey) throw bad('has a privateKey but no publicKey or ss58Address to check it against');
    const secretKey = secretFromSubstrate(fromHex(f.privateKey));
    if (!secretKey || !signsFor(secretKey, publicKey)) throw bad('privateKey does not belong to the public key in the file');
    keypair = { publicKey, secretKey, address: ss58(publicKey) };
  } else {
    throw bad('holds no secret (no secretPhrase, secretSeed or privateKey): a public-key-only file cannot sign');
  }

  for (const name of ['publicKey', 'accountId'] as const) {
    const v = f[name];
    if (v && !equal(fromHex(v), keypair.publicKey)) throw bad(`${name} does not match the key's secret (the file is damaged or was edited)`);
  }
  if (f.ss58Address && f.ss58Address !== keypair.address) {
    // A different SS58 prefix for the same key is still the same key.
    const other = publicKeyOfAddress(f.ss58Address, bad);
    if (!equal(other, keypair.publicKey)) throw bad(`ss58Address does not match the key's secret (the file is damaged or was edited)`);
  }
  return { keypair, seed, phrase };
}

/** The 32-byte public key of an SS58 address (any prefix), or the file's error. */
function publicKeyOfAddress(address: string, bad: (problem: string) => Error): Uint8Array {
  // decodeAddress also takes hex and other account sizes; only a base58 address of a 32-byte key counts.
  if (/^[1-9A-HJ-NP-Za-km-z]+$/.test(address)) {
    try {
      const key = decodeAddress(address);
      if (key.length === 32) return key;
    } catch {
      // reported below
    }
  }
  throw bad('ss58Address is not a valid SS58 address');
}

/** The SS58 address of the hotkey in a wallet file (checked as loadWallet checks it). */
export async function walletAddress(path: string = defaultWalletPath()): Promise<string> {
  return (await loadWallet(path)).address;
}
