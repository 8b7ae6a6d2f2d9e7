// `tah wallet create` and `tah wallet show`: the hotkey that signs this computer's requests to the
// orchestrator, kept in Bittensor's keyfile layout (btcli hotkeys work as they are).
import { type Command, Option } from 'commander';
import { resolve } from 'node:path';
import { makeOutput } from '../output.ts';

/** Wraps a command body so that failures take the one-line error path (cli/tah.ts's `guarded`). */
export type Guard = <T extends { json?: boolean }>(body: (opts: T) => Promise<void>) => (opts: T) => Promise<void>;

interface CreateOptions {
  wallet?: string;
  mnemonic?: string;
  mnemonicStdin?: boolean;
  overwrite?: boolean;
  showMnemonic?: boolean;
  json?: boolean;
}

interface ShowOptions {
  wallet?: string;
  json?: boolean;
}

const WALLET_HELP = 'hotkey file (default: ~/.tah/wallets/default/hotkey.json, or under $TAH_HOME)';

// The key code (sr25519 WebAssembly, polkadot libraries) takes a good part of a second to load,
// so it is loaded only when a wallet command runs, not for every `tah` command.
const walletLib = () => import('../../orchestrator-client/wallet.ts');

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Type or paste the mnemonic, then press Enter and Ctrl-D:\n');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function walletCreateCommand(o: CreateOptions): Promise<void> {
  const out = makeOutput(o.json ?? false);
  const { createWallet, defaultWalletPath } = await walletLib();
  const path = o.wallet ? resolve(o.wallet) : defaultWalletPath();
  let mnemonic = o.mnemonic;
  if (o.mnemonicStdin) {
    mnemonic = await readStdin();
    if (mnemonic.trim() === '') throw new Error('--mnemonic-stdin: nothing was read from standard input');
  }
  const w = await createWallet(path, { mnemonic, overwrite: o.overwrite ?? false });
  const showMnemonic = w.generated && (!out.json || (o.showMnemonic ?? false));
  if (w.generated && !out.json) {
    out.note('New mnemonic below, shown this once: write it down and keep it offline. It restores this hotkey, and anyone who has it controls it.');
  }
  out.summary(
    { ok: true, address: w.address, public_key: w.publicKey, file: w.path, generated: w.generated, ...(showMnemonic ? { mnemonic: w.mnemonic } : {}) },
    [`address     ${w.address}`, `file        ${w.path}`, ...(showMnemonic ? [`mnemonic    ${w.mnemonic}`] : [])].join('\n'),
  );
}

export async function walletShowCommand(o: ShowOptions): Promise<void> {
  const out = makeOutput(o.json ?? false);
  const { defaultWalletPath, loadWallet } = await walletLib();
  const w = await loadWallet(o.wallet ? resolve(o.wallet) : defaultWalletPath());
  for (const warning of w.warnings) out.note(`warning: ${warning}`);
  out.summary({ ok: true, address: w.address, public_key: w.publicKey, file: w.path }, [`address     ${w.address}`, `public key  ${w.publicKey}`, `file        ${w.path}`].join('\n'));
}

/** Adds `tah wallet create|show` to the program. */
export function registerWalletCommand(program: Command, guarded: Guard): void {
  const wallet = program.command('wallet').description("the hotkey (sr25519, SS58 address) that signs this computer's requests to the orchestrator");
  wallet
    .command('create')
    .description('make a new hotkey, or restore one from its mnemonic (a btcli hotkey file can also be used as it is)')
    .option('--wallet <file>', WALLET_HELP)
    .addOption(new Option('--mnemonic <words>', 'restore from this BIP-39 mnemonic (other users can see command lines: prefer --mnemonic-stdin)').conflicts('mnemonicStdin'))
    .option('--mnemonic-stdin', 'read the mnemonic to restore from standard input')
    .option('--overwrite', 'replace an existing hotkey file (its key is lost unless its mnemonic is backed up)')
    .option('--show-mnemonic', 'with --json, include a newly generated mnemonic in the output')
    .option('--json', 'print the result as JSON')
    .action(guarded(walletCreateCommand));
  wallet
    .command('show')
    .description("print the hotkey's address, public key and file (never the secret)")
    .option('--wallet <file>', WALLET_HELP)
    .option('--json', 'print the result as JSON')
    .action(guarded(walletShowCommand));
}
