// `tah wallet create|show` as a user runs them: real child processes with TAH_HOME in a temp folder.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type TahRun, TAH, assertFailsOnStderr, assertJsonFailure, jsonLines, runTah, show, tempDir } from './run-tah.ts';

// Known answer from Bittensor's wallet library tests (opentensor/btwallet tests/test_keyfile.py).
const BT_MNEMONIC = 'old leopard transfer rib spatial phone calm indicate online fire caution review';
const BT_ADDRESS = '5HDvhV6WDCjCKyrXqGQSDYqQAzkzabNhctmiDYEqgBC66BsX';
const BT_PUBLIC = '0xe4359ad3e2716c539a1d663ebd0a51bdc5c98a12e663bb4c4402db47828c9446';
const SS58 = /^5[1-9A-HJ-NP-Za-km-z]{47}$/;

let dir = '';
let cleanup = async (): Promise<void> => {};
let n = 0;
/** A fresh TAH_HOME for each case; runTah passes process.env on to the child. */
function home(): string {
  const h = join(dir, `home-${++n}`);
  process.env.TAH_HOME = h;
  return h;
}
const defaultFile = (h: string): string => join(h, 'wallets', 'default', 'hotkey.json');
const tah = (args: string[]): Promise<TahRun> => runTah(args, { cwd: dir, timeoutMs: 60_000 });

/** runTah with text on standard input (runTah itself gives the child none). */
function tahWithStdin(args: string[], input: string): Promise<TahRun> {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TAH, ...args], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, wallS: (performance.now() - started) / 1000 }));
    child.stdin.end(input);
  });
}

before(async () => {
  ({ dir, cleanup } = await tempDir('wallet'));
});
after(() => cleanup());

test('wallet create then wallet show give the same address; the mnemonic is shown once', async () => {
  const h = home();
  const created = await tah(['wallet', 'create']);
  assert.equal(created.code, 0, show(created));
  const address = /^address\s+(\S+)$/m.exec(created.stdout)?.[1];
  assert.match(address ?? '', SS58, show(created));
  assert.match(created.stdout, new RegExp(`^file\\s+${defaultFile(h).replace(/[.\\]/g, '\\$&')}$`, 'm'));
  const mnemonic = /^mnemonic\s+(.+)$/m.exec(created.stdout)?.[1];
  assert.equal(mnemonic?.split(' ').length, 12, show(created));
  assert.match(created.stderr, /write it down/);
  if (process.platform !== 'win32') assert.equal((await stat(defaultFile(h))).mode & 0o777, 0o600);

  const shown = await tah(['wallet', 'show']);
  assert.equal(shown.code, 0, show(shown));
  assert.match(shown.stdout, new RegExp(`^address\\s+${address}$`, 'm'));
  assert.match(shown.stdout, /^public key\s+0x[0-9a-f]{64}$/m);
  // Never the secret.
  const secret = JSON.parse(await readFile(defaultFile(h), 'utf8')) as Record<string, string>;
  for (const s of [shown.stdout, shown.stderr]) {
    assert.ok(!s.includes(mnemonic!.split(' ')[0] + ' ' + mnemonic!.split(' ')[1]) && !s.includes(secret.privateKey.slice(2, 30)) && !s.includes(secret.secretSeed.slice(2, 30)));
  }

  const json = await tah(['wallet', 'show', '--json']);
  assert.equal(json.code, 0, show(json));
  const lines = jsonLines(json.stdout);
  assert.equal(lines.length, 1);
  assert.deepEqual(lines[0], { summary: true, ok: true, address, public_key: secret.publicKey, file: defaultFile(h) });
});

test('--json keeps a generated mnemonic out of the output unless --show-mnemonic', async () => {
  home();
  const quiet = await tah(['wallet', 'create', '--json']);
  assert.equal(quiet.code, 0, show(quiet));
  const [summary] = jsonLines(quiet.stdout);
  assert.equal(summary.summary, true);
  assert.equal(summary.ok, true);
  assert.equal(summary.generated, true);
  assert.match(summary.address as string, SS58);
  assert.equal('mnemonic' in summary, false);
  assert.doesNotMatch(quiet.stdout + quiet.stderr, /mnemonic\s+\w+ \w+ \w+/);

  const h = home();
  const loud = await tah(['wallet', 'create', '--json', '--show-mnemonic', '--wallet', join(h, 'k.json')]);
  assert.equal(loud.code, 0, show(loud));
  const [s2] = jsonLines(loud.stdout);
  assert.equal((s2.mnemonic as string).split(' ').length, 12);
  assert.equal(s2.file, join(h, 'k.json'));
});

test('--mnemonic and --mnemonic-stdin restore the key btcli makes from the same words', async () => {
  home();
  const r = await tah(['wallet', 'create', '--mnemonic', BT_MNEMONIC, '--json']);
  assert.equal(r.code, 0, show(r));
  const [s] = jsonLines(r.stdout);
  assert.equal(s.address, BT_ADDRESS);
  assert.equal(s.public_key, BT_PUBLIC);
  assert.equal(s.generated, false);
  assert.equal('mnemonic' in s, false);

  const h = home();
  const fromStdin = await tahWithStdin(['wallet', 'create', '--mnemonic-stdin'], `${BT_MNEMONIC}\n`);
  assert.equal(fromStdin.code, 0, show(fromStdin));
  assert.match(fromStdin.stdout, new RegExp(`^address\\s+${BT_ADDRESS}$`, 'm'));
  // A restored mnemonic is not printed back.
  assert.doesNotMatch(fromStdin.stdout + fromStdin.stderr, /leopard/);
  const file = JSON.parse(await readFile(defaultFile(h), 'utf8')) as Record<string, string>;
  assert.equal(file.ss58Address, BT_ADDRESS);
  const shown = await tah(['wallet', 'show', '--wallet', defaultFile(h)]);
  assert.match(shown.stdout, new RegExp(`^address\\s+${BT_ADDRESS}$`, 'm'));
});

test('a wrong mnemonic fails with one clear line and writes nothing', async () => {
  const h = home();
  const words = BT_MNEMONIC.split(' ');
  const typo = [...words.slice(0, 3), 'leopardd', ...words.slice(4)].join(' ');
  const r = await tah(['wallet', 'create', '--mnemonic', typo]);
  const line = assertFailsOnStderr(r, /^tah: error: invalid mnemonic: word 4 is not in the BIP-39 English word list$/);
  assert.doesNotMatch(line, /leopard/);
  await assert.rejects(stat(defaultFile(h)), { code: 'ENOENT' });

  const swapped = [words[1], words[0], ...words.slice(2)].join(' ');
  const j = await tah(['wallet', 'create', '--mnemonic', swapped, '--json']);
  assertFailsOnStderr(j, /checksum does not match/);
  assertJsonFailure(j, /checksum does not match/);

  const short = await tahWithStdin(['wallet', 'create', '--mnemonic-stdin'], 'old leopard\n');
  assertFailsOnStderr(short, /expected 12, 15, 18, 21 or 24 words, got 2/);
  const empty = await tahWithStdin(['wallet', 'create', '--mnemonic-stdin'], '');
  assertFailsOnStderr(empty, /nothing was read from standard input/);
  await assert.rejects(stat(defaultFile(h)), { code: 'ENOENT' });
});

test('errors: an existing wallet, no wallet, a damaged wallet, conflicting options', async () => {
  const h = home();
  assert.equal((await tah(['wallet', 'create', '--mnemonic', BT_MNEMONIC])).code, 0);
  const again = await tah(['wallet', 'create', '--json']);
  assertFailsOnStderr(again, /already exists; not replacing a key \(use --overwrite/);
  assertJsonFailure(again, /already exists/);
  const replaced = await tah(['wallet', 'create', '--overwrite', '--json']);
  assert.equal(replaced.code, 0, show(replaced));
  assert.notEqual(jsonLines(replaced.stdout)[0].address, BT_ADDRESS);

  home();
  const none = await tah(['wallet', 'show', '--json']);
  assertFailsOnStderr(none, /no wallet file at .*hotkey\.json \(create one with `tah wallet create`/);
  assertJsonFailure(none, /no wallet file/);

  const damaged = join(h, 'damaged.json');
  const file = JSON.parse(await readFile(defaultFile(h), 'utf8')) as Record<string, string>;
  await writeFile(damaged, JSON.stringify({ ...file, ss58Address: BT_ADDRESS }), { mode: 0o600 });
  assertFailsOnStderr(await tah(['wallet', 'show', '--wallet', damaged]), /wallet file .*damaged\.json: ss58Address does not match/);
  await writeFile(damaged, '{"secretPhrase": "old leop', { mode: 0o600 });
  assertFailsOnStderr(await tah(['wallet', 'show', '--wallet', damaged]), /damaged\.json: is not a JSON key file/);

  const both = await tah(['wallet', 'create', '--mnemonic', BT_MNEMONIC, '--mnemonic-stdin', '--json']);
  assertFailsOnStderr(both, /cannot be used with option '--mnemonic-stdin'/);
  assertJsonFailure(both, /cannot be used with/);
});

test('a wallet file other users can read is used, with a warning', { skip: process.platform === 'win32' }, async () => {
  const h = home();
  assert.equal((await tah(['wallet', 'create', '--mnemonic', BT_MNEMONIC])).code, 0);
  const { chmod } = await import('node:fs/promises');
  await chmod(defaultFile(h), 0o644);
  const r = await tah(['wallet', 'show']);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stderr, /warning: wallet file .* is accessible to other users \(mode 0644\): run chmod 600/);
  const j = await tah(['wallet', 'show', '--json']);
  const lines = jsonLines(j.stdout);
  assert.equal(lines[0].event, 'note');
  assert.equal(lines.at(-1)!.address, BT_ADDRESS);
});

test('tah --help lists the wallet command', async () => {
  const r = await tah(['--help']);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^\s+wallet\b/m);
});
